"""Staff sign-in plumbing: Flask-Login's user loader, roles, idle expiry and safe redirects."""
import time
from functools import wraps
from urllib.parse import urlsplit

from flask import abort, current_app, flash, redirect, request, session, url_for
from flask_babel import gettext as _
from flask_login import current_user, logout_user

from finepay.extensions import db, login_manager
from staff.models import StaffUser
from staff.services import record_sign_out

SEEN_KEY = "staff_seen"  # epoch seconds of the last request, for idle expiry
# Rewriting the session cookie on every click is noise: refresh the timestamp at most this often.
SEEN_RESOLUTION = 15


@login_manager.user_loader
def load_user(token):
    """The signed-in user for a session, or None when the account is gone, inactive or re-keyed."""
    user_id, _sep, fingerprint = str(token).partition(".")
    if not user_id.isdigit():
        return None
    user = db.session.get(StaffUser, int(user_id))
    if user is None or not user.active or user.get_id() != f"{user_id}.{fingerprint}":
        return None
    return user


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


def mark_seen():
    """Start the idle clock (at sign-in)."""
    session[SEEN_KEY] = int(time.time())


def enforce_idle_expiry():
    """Sign out a session idle for longer than STAFF_SESSION_MINUTES; returns a redirect then."""
    if not current_user.is_authenticated:
        return None
    now = int(time.time())
    seen = session.get(SEEN_KEY)
    limit = current_app.config["STAFF_SESSION_MINUTES"] * 60
    if not isinstance(seen, int) or now - seen > limit:
        record_sign_out(current_user, reason="idle")
        logout_user()
        session.clear()
        flash(_("You were signed out after %(minutes)d minutes without activity.",
                minutes=current_app.config["STAFF_SESSION_MINUTES"]), "info")
        return to_sign_in()
    if now - seen >= SEEN_RESOLUTION:
        session[SEEN_KEY] = now
    return None
