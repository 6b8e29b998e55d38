"""Kiosk terminals: enrolment, credentials, revocation, heartbeats.

A terminal proves itself with a long random credential kept in an HttpOnly
cookie; the server stores only its SHA-256. Enrolment codes are one-time,
expire after 15 minutes and are also stored only as hashes. Every enrolment,
revocation and refused credential is audited. The staff console calls
enrol_terminal, revoke_terminal and list_terminals; the CLI is a thin shell
around them.
"""
import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import current_app, has_request_context, url_for
from flask_babel import gettext as _
from sqlalchemy import select, update

from finepay import audit
from finepay.dbtypes import utcnow
from finepay.errors import ApiError
from finepay.extensions import db
from kiosk import visits
from kiosk.models import Terminal

ENROLMENT_TTL = timedelta(minutes=15)
COOKIE_NAME = "finepay_kiosk"
COOKIE_PATH = "/kiosk"
# A terminal that sent no heartbeat for this long is shown as offline.
ONLINE_WINDOW = timedelta(seconds=90)
NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,59}")
READER_ID_PATTERN = re.compile(r"[A-Za-z0-9_.:\-]{1,100}")
# token_urlsafe(24) and (32): what a well-formed code or credential looks like.
CODE_PATTERN = re.compile(r"[A-Za-z0-9_\-]{32}")
CREDENTIAL_PATTERN = re.compile(r"[A-Za-z0-9_\-]{43}")

# Terminal states, as list_terminals reports them.
AWAITING_ENROLMENT = "awaiting enrolment"
ENROLMENT_EXPIRED = "enrolment expired"
ACTIVE = "active"
REVOKED = "revoked"
CREDENTIAL_EXPIRED = "credential expired"


def _hash(secret):
    return hashlib.sha256(secret.encode()).hexdigest()


def credential_expires_at(terminal):
    """When this terminal's credential stops working (None before enrolment)."""
    if terminal.enrolled_at is None:
        return None
    return terminal.enrolled_at + timedelta(days=current_app.config["KIOSK_CREDENTIAL_DAYS"])


# --- enrolment -----------------------------------------------------------------

@dataclass(frozen=True)
class Enrolment:
    """A one-time enrolment: open ``url`` on the kiosk before ``expires_at``."""

    terminal_id: int
    name: str
    code: str
    path: str
    url: str  # absolute when a request or a base URL says where FinePay runs; else the path
    expires_at: datetime


def _find(name):
    return db.session.execute(select(Terminal).where(Terminal.name == name)).scalar_one_or_none()


def enrol_terminal(name, actor, *, reader_id=None, base_url=None):
    """Register a terminal (or re-enrol an existing one) and return its one-time Enrolment, valid 15 minutes.

    Re-enrolling replaces the credential when the new code is used (the old one
    keeps working until then) and switches a revoked terminal back on.
    """
    if not isinstance(name, str) or not NAME_PATTERN.fullmatch(name):
        raise ApiError(_("A terminal name is 1 to 60 letters, digits, '-', '_' or '.', starting with a letter "
                         "or digit."), code="invalid_name", status=422)
    if reader_id is not None and not READER_ID_PATTERN.fullmatch(reader_id):
        raise ApiError(_("A reader id is up to 100 letters, digits and - _ . :"), code="invalid_reader", status=422)
    terminal = _find(name)
    if terminal is None:
        terminal = Terminal(name=name, created_by=str(actor)[:100])
        db.session.add(terminal)
    code = secrets.token_urlsafe(24)
    terminal.enrolment_code_hash = _hash(code)
    terminal.enrolment_expires_at = utcnow() + ENROLMENT_TTL
    if reader_id is not None:
        terminal.reader_id = reader_id
    db.session.flush()
    audit.record("kiosk.enrolment_issued", "terminal", terminal.id, actor=str(actor), name=name,
                 expires_at=terminal.enrolment_expires_at.isoformat(), reader_id=terminal.reader_id,
                 re_enrolment=terminal.enrolled_at is not None)
    db.session.commit()
    path = f"{COOKIE_PATH}/enrol/{code}"
    if base_url:
        url = base_url.rstrip("/") + path
    elif has_request_context():
        url = url_for("kiosk.enrol", code=code, _external=True)
    else:
        url = path
    return Enrolment(terminal.id, name, code, path, url, terminal.enrolment_expires_at)


def _terminal_for_code(code, lock=False):
    if not isinstance(code, str) or not CODE_PATTERN.fullmatch(code):
        return None
    query = select(Terminal).where(Terminal.enrolment_code_hash == _hash(code))
    return db.session.execute(query.with_for_update() if lock else query).scalar_one_or_none()


def _refuse_enrolment(terminal, reason):
    audit.record_refusal("kiosk.enrolment_refused", "terminal", terminal.id if terminal else "-", actor="kiosk",
                         reason=reason)
    db.session.commit()
    if reason == "expired":
        raise ApiError(_("This enrolment link has expired. Ask for a new one."), code="enrolment_expired",
                       status=410)
    raise ApiError(_("This enrolment link is not valid: it was already used, or it is mistyped."),
                   code="enrolment_invalid", status=404)


def check_enrolment(code):
    """The terminal a still-valid enrolment code is for (the code is not used up); refuses otherwise."""
    terminal = _terminal_for_code(code)
    if terminal is None:
        _refuse_enrolment(None, "unknown")
    if utcnow() >= terminal.enrolment_expires_at:
        _refuse_enrolment(terminal, "expired")
    return terminal


def redeem_enrolment(code):
    """Use an enrolment code, once: returns (terminal, credential) — the credential goes in the kiosk's cookie."""
    terminal = check_enrolment(code)
    credential = secrets.token_urlsafe(32)
    now = utcnow()
    # Compare-and-set on the code's hash: of two browsers racing with one code, one wins.
    won = db.session.execute(
        update(Terminal)
        .where(Terminal.id == terminal.id, Terminal.enrolment_code_hash == _hash(code))
        .values(credential_hash=_hash(credential), enrolment_code_hash=None, enrolment_expires_at=None,
                enrolled_at=now, revoked_at=None)
        .execution_options(synchronize_session=False)
    ).rowcount
    if not won:
        db.session.rollback()
        _refuse_enrolment(terminal, "already used")
    audit.record("kiosk.enrolled", "terminal", terminal.id, actor="kiosk", name=terminal.name,
                 was_revoked=terminal.revoked_at is not None)
    db.session.commit()
    db.session.refresh(terminal)
    return terminal, credential


# --- credentials ---------------------------------------------------------------

class TerminalRefused(ApiError):
    """A request from a browser that is not (or no longer) an enrolled kiosk."""

    def __init__(self, reason, status=401):
        messages = {
            "missing": _("This screen is not an enrolled FinePay kiosk."),
            "invalid": _("This screen's kiosk credential is not recognised."),
            "expired": _("This kiosk's credential has expired. It needs to be enrolled again."),
            "revoked": _("This kiosk has been switched off by an administrator."),
        }
        super().__init__(messages[reason], code=f"terminal_{reason}", status=status)
        self.reason = reason


def authenticate(credential):
    """The active terminal holding this credential; raises TerminalRefused (audited) otherwise."""
    terminal, reason = None, None
    if not credential:
        reason = "missing"
    elif not isinstance(credential, str) or not CREDENTIAL_PATTERN.fullmatch(credential):
        reason = "invalid"
    else:
        terminal = db.session.execute(
            select(Terminal).where(Terminal.credential_hash == _hash(credential))
        ).scalar_one_or_none()
        if terminal is None:
            reason = "invalid"
        elif terminal.revoked_at is not None:
            reason = "revoked"
        elif utcnow() >= credential_expires_at(terminal):
            reason = "expired"
    if reason is None:
        return terminal
    # Counted per source and minute, not one entry each: anyone can send these (see audit.record_refusal).
    audit.record_refusal("kiosk.credential_refused", "terminal", terminal.id if terminal else "-", actor="kiosk",
                         reason=reason)
    db.session.commit()
    raise TerminalRefused(reason, status=403 if reason == "revoked" else 401)


def record_heartbeat(terminal):
    """The kiosk is alive: remember when we last heard from it."""
    terminal.last_heartbeat_at = utcnow()
    db.session.commit()


# --- revocation and listing ------------------------------------------------------

def revoke_terminal(name, actor):
    """Switch a terminal off: its credential and any enrolment code stop working at once, its visit ends."""
    terminal = _find(name) if isinstance(name, str) else None
    if terminal is None:
        raise ApiError(_("No terminal has this name."), code="not_found", status=404)
    if terminal.revoked_at is None:
        terminal.revoked_at = utcnow()
    terminal.enrolment_code_hash = None
    terminal.enrolment_expires_at = None
    audit.record("kiosk.revoked", "terminal", terminal.id, actor=str(actor), name=terminal.name)
    db.session.commit()
    visits.end_open_visits(terminal, reason="terminal revoked")
    return terminal


@dataclass(frozen=True)
class TerminalSummary:
    """One terminal as staff see it."""

    id: int
    name: str
    status: str  # ACTIVE, AWAITING_ENROLMENT, ENROLMENT_EXPIRED, REVOKED or CREDENTIAL_EXPIRED
    online: bool  # a heartbeat in the last 90 seconds
    last_heartbeat_at: datetime | None
    enrolled_at: datetime | None
    credential_expires_at: datetime | None
    revoked_at: datetime | None
    reader_id: str | None
    created_by: str
    created_at: datetime


def terminal_status(terminal, now=None):
    """Where a terminal stands: active, awaiting enrolment, revoked..."""
    now = now or utcnow()
    if terminal.revoked_at is not None:
        return REVOKED
    if terminal.credential_hash is None:
        if terminal.enrolment_expires_at is not None and now < terminal.enrolment_expires_at:
            return AWAITING_ENROLMENT
        return ENROLMENT_EXPIRED
    if now >= credential_expires_at(terminal):
        return CREDENTIAL_EXPIRED
    return ACTIVE


def terminal_names():
    """{terminal id: name} of every terminal ever enrolled (revoked ones too: old payments name them)."""
    return dict(db.session.execute(select(Terminal.id, Terminal.name)).all())


def list_terminals():
    """Every terminal, by name, with its status and last heartbeat."""
    now = utcnow()
    terminals = db.session.execute(select(Terminal).order_by(Terminal.name)).scalars().all()
    return [
        TerminalSummary(
            id=t.id, name=t.name, status=terminal_status(t, now),
            online=t.revoked_at is None and t.last_heartbeat_at is not None
            and now - t.last_heartbeat_at <= ONLINE_WINDOW,
            last_heartbeat_at=t.last_heartbeat_at, enrolled_at=t.enrolled_at,
            credential_expires_at=credential_expires_at(t), revoked_at=t.revoked_at, reader_id=t.reader_id,
            created_by=t.created_by, created_at=t.created_at,
        )
        for t in terminals
    ]
