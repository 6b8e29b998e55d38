"""Staff sign-in plumbing: Flask-Login's user loader over server-side sessions, roles and safe redirects."""
from functools import wraps
from urllib.parse import urlsplit

from flask import abort, current_app, flash, g, redirect, request, session, url_for
from flask_babel import gettext as _
from flask_babel import ngettext
from flask_login import current_user, login_user, logout_user

from finepay.extensions import login_manager
from staff import services, sessions

SESSION_KEY = "staff_session"  # the session's random token; its hash names the staff_sessions row
# What Flask-Login and this module keep in the cookie for a signed-in user.
SIGNED_IN_KEYS = ("_user_id", "_fresh", "_id", "_remember", "_remember_seconds", SESSION_KEY)


@login_manager.user_loader
def load_user(user_id):
    """The signed-in user, only while the server-side session the cookie names is live.

    The only way in: Flask-Login calls it for the session cookie and for a
    remember-me cookie alike (none is issued), and neither carries a live
    session token unless the sign-in form put it there.
    """
    check = sessions.check_session(session.get(SESSION_KEY), user_id)
    if check.user is None:
        for key in SIGNED_IN_KEYS:
            session.pop(key, None)
        if check.ended == sessions.IDLE:
            minutes = current_app.config["STAFF_SESSION_MINUTES"]
            flash(_("You were signed out after %(minutes)d minutes without activity.", minutes=minutes), "info")
        elif check.ended == sessions.EXPIRED:
            hours = current_app.config["STAFF_SESSION_MAX_HOURS"]
            flash(ngettext("You were signed out because you had been signed in for %(num)d hour. Sign in again "
                           "to continue.", "You were signed out because you had been signed in for %(num)d hours. "
                           "Sign in again to continue.", hours), "info")
        return None
    g.staff_session_id = check.session.id
    return check.user


def current_session_id():
    """The id of the server-side session this request was made in (None when not signed in)."""
    return g.get("staff_session_id") if current_user.is_authenticated else None


def begin_session(user):
    """Sign ``user`` in on this browser: a fresh cookie naming a new server-side session."""
    if current_user.is_authenticated:  # signing in over a live session replaces it
        sessions.end_session(current_user, current_session_id(), sessions.SIGNED_IN_AGAIN,
                             actor=services.actor(current_user))
    session.clear()  # nothing from before sign-in carries over
    token = sessions.start_session(user, request.remote_addr, request.headers.get("User-Agent"))
    login_user(user)
    session[SESSION_KEY] = token


def sign_out(actor):
    """Sign out: every session of the signed-in user ends on the server, so no copy of any cookie works again.

    Signing out ends them all, not only this browser's: a console left signed in on another desk is the
    case a sign-out has to cover.
    """
    sessions.end_all_sessions(current_user, sessions.SIGNED_OUT, actor=actor)
    logout_user()
    session.clear()


@login_manager.unauthorized_handler
def to_sign_in():
    """Anonymous visitors go to the sign-in page, and come back to the page they asked for."""
    target = request.full_path.rstrip("?") if request.method == "GET" else None
    return redirect(url_for("staff.login", next=target))


def safe_next(target):
    """``target`` if it is a staff page on this site, else None: no open redirect through ``next``."""
    if not target or len(target) > 2000 or "\\" in target or any(ord(c) < 32 for c in target):
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not (parts.path == "/staff" or parts.path.startswith("/staff/")):
        return None
    if parts.path.startswith(("/staff/login", "/staff/logout")):
        return None
    return target


def supervisor_required(view):
    """Only supervisors may use this view (clerks get 403)."""

    @wraps(view)
    def wrapper(*args, **kwargs):
        if not current_user.is_authenticated:
            return current_app.login_manager.unauthorized()
        if not current_user.is_supervisor:
            abort(403)
        return view(*args, **kwargs)

    return wrapper
