"""Server-side staff sessions: started at sign-in, checked on every console request, ended for good.

The session cookie only carries a random token; what a session may do is
decided here, from the ``staff_sessions`` row its hash names. So a copy of the
cookie is worth nothing once the row is ended (sign-out, an account change,
idle or absolute expiry), however often that copy was renewed.

A table of our own rather than Flask-Session: ending every session of one
person needs sessions indexed by user, and an absolute lifetime needs the
sign-in time, neither of which a server-side session store keeps; the rest of
the cookie (flash messages, the driver's and kiosk's pages) stays as it is.
"""
import hashlib
import secrets
from dataclasses import dataclass
from datetime import timedelta

from flask import current_app
from sqlalchemy import select, update

from finepay import audit
from finepay.dbtypes import utcnow
from finepay.extensions import db
from staff.models import StaffSession, StaffUser

# Why a session ended (staff_sessions.revoked_reason and the audit entry's reason).
SIGNED_OUT, ENDED_BY_USER = "signed out", "ended by its user"
SIGNED_IN_AGAIN, IDLE, EXPIRED = "signed in again", "idle", "expired"
PASSWORD_CHANGED, ROLE_CHANGED, ACCOUNT_DISABLED = "password changed", "role changed", "account disabled"
BY_ADMINISTRATOR = "ended by an administrator"
# Keeping the idle clock costs a write; one a minute per session is plenty for a limit counted in minutes.
SEEN_RESOLUTION = timedelta(minutes=1)
TOKEN_MAX_LENGTH = 100


def hash_token(raw):
    """Tokens are 256 random bits, so SHA-256 is enough: the table alone cannot be replayed as cookies."""
    return hashlib.sha256(raw.encode()).hexdigest()


def idle_limit():
    """How long a session may go without a request (STAFF_SESSION_MINUTES)."""
    return timedelta(minutes=current_app.config["STAFF_SESSION_MINUTES"])


def absolute_limit():
    """How long a session may last from sign-in, however busy (STAFF_SESSION_MAX_HOURS)."""
    return timedelta(hours=current_app.config["STAFF_SESSION_MAX_HOURS"])


def start_session(user, remote_addr=None, user_agent=None, now=None):
    """Record a new session for ``user`` (just signed in) and return its token, for the cookie only."""
    now = now or utcnow()
    raw = secrets.token_urlsafe(32)
    db.session.add(StaffSession(
        token_hash=hash_token(raw), user_id=user.id, created_at=now, last_seen_at=now,
        remote_addr=(remote_addr or "")[:64] or None, user_agent=(user_agent or "")[:200] or None,
    ))
    db.session.commit()
    return raw


@dataclass
class SessionCheck:
    """What a cookie's token is worth: the live session and its user, or why it just ended (if it did)."""

    session: StaffSession | None = None
    user: StaffUser | None = None
    ended: str | None = None


def check_session(raw, user_id, now=None):
    """The live session a cookie's token names, ending it here if it has been idle or open too long.

    One indexed read per request; a write at most once a minute (the idle
    clock) or when the session ends.
    """
    if not isinstance(raw, str) or not raw or len(raw) > TOKEN_MAX_LENGTH:
        return SessionCheck()
    row = db.session.execute(
        select(StaffSession, StaffUser).join(StaffUser, StaffUser.id == StaffSession.user_id)
        .where(StaffSession.token_hash == hash_token(raw))
    ).first()
    if row is None:
        return SessionCheck()
    live, user = row
    if live.revoked_at is not None or str(user.id) != str(user_id) or not user.active:
        return SessionCheck()
    now = now or utcnow()
    reason = EXPIRED if now - live.created_at >= absolute_limit() else (
        IDLE if now - live.last_seen_at > idle_limit() else None)
    if reason:
        end_sessions(user, reason, actor="system", only=live.id, now=now)
        db.session.commit()
        return SessionCheck(ended=reason)
    if now - live.last_seen_at >= SEEN_RESOLUTION:
        db.session.execute(
            update(StaffSession).where(StaffSession.id == live.id, StaffSession.revoked_at.is_(None))
            .values(last_seen_at=now).execution_options(synchronize_session=False)
        )
        db.session.commit()
    return SessionCheck(session=live, user=user)


def end_sessions(user, reason, *, actor, only=None, keep=None, now=None):
    """End ``user``'s live sessions (one if ``only``, all but ``keep`` otherwise); returns how many ended.

    Part of the caller's transaction, with one audit entry saying why: an
    account change and the end of its sessions commit together.
    """
    query = update(StaffSession).where(StaffSession.user_id == user.id, StaffSession.revoked_at.is_(None))
    if only is not None:
        query = query.where(StaffSession.id == only)
    if keep is not None:
        query = query.where(StaffSession.id != keep)
    ended = db.session.execute(
        query.values(revoked_at=now or utcnow(), revoked_reason=reason).execution_options(synchronize_session=False)
    ).rowcount
    if ended:
        audit.record("staff.signed_out", "staff_user", user.username, actor=actor, reason=reason, sessions=ended)
    return ended


def end_session(user, session_id, reason, *, actor):
    """End one of ``user``'s sessions (sign-out, or ending it from the list); False if it was not live."""
    if not isinstance(session_id, int) or not 0 < session_id < 2**63:  # never "all of them" by accident
        return False
    ended = end_sessions(user, reason, actor=actor, only=session_id)
    db.session.commit()
    return bool(ended)


def end_all_sessions(user, reason, *, actor):
    """End every session of ``user`` (signing out); returns how many ended."""
    ended = end_sessions(user, reason, actor=actor)
    db.session.commit()
    return ended


def live_sessions(user, now=None):
    """``user``'s sessions that are still live, most recently used first."""
    now = now or utcnow()
    return db.session.execute(
        select(StaffSession).where(StaffSession.user_id == user.id, StaffSession.revoked_at.is_(None),
                                   StaffSession.created_at > now - absolute_limit(),
                                   StaffSession.last_seen_at >= now - idle_limit())
        .order_by(StaffSession.last_seen_at.desc(), StaffSession.id.desc())
    ).scalars().all()
