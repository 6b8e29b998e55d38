"""Shared helpers for the staff tests: accounts, signing in, paid payments to work on, the reconciliation CSV."""
import csv
import io
import uuid
from decimal import Decimal

from sqlalchemy import select
from werkzeug.security import generate_password_hash

from finepay import audit
from finepay.audit import AuditEntry
from finepay.extensions import db
from payments import services as payment_services
from payments.reconciliation.export import BOM, CSV_HEADER
from staff import sessions
from staff.auth import SESSION_KEY
from staff.models import CLERK, SUPERVISOR, StaffUser
from tests.payments.helpers import PLATE, VIN, overdue_violation, payment_row

PASSWORD = "correct horse battery staple"
# A cheap hash for fixture accounts (scrypt costs ~0.1 s a check); the service itself always uses scrypt.
_FAST_HASH = generate_password_hash(PASSWORD, method="pbkdf2:sha256:1000")


def make_user(username="clerk", role=CLERK, active=True):
    """A staff account whose password is PASSWORD."""
    user = StaffUser(username=username, role=role, password_hash=_FAST_HASH, active=active)
    db.session.add(user)
    db.session.commit()
    return user


def make_supervisor(username="boss"):
    """A supervisor account."""
    return make_user(username, SUPERVISOR)


def sign_in_as(client, user):
    """Put a signed-in session for ``user`` in the client's cookie (no password round trip)."""
    token = sessions.start_session(user, "127.0.0.1", "test client")
    with client.session_transaction() as session:
        session["_user_id"] = user.get_id()
        session["_fresh"] = True
        session[SESSION_KEY] = token
    return client


def sign_in(client, username, password=PASSWORD, next_url=None, environ_base=None):
    """POST the sign-in form; returns the response."""
    data = {"username": username, "password": password}
    if next_url is not None:
        data["next"] = next_url
    return client.post("/staff/login", data=data, environ_base=environ_base or {})


def paid_payment(fine=20000, **violation_fields):
    """A violation paid through the real payment service (sandbox gateway); returns (payment, violation)."""
    violation = overdue_violation(fine=fine, **violation_fields)
    payment = payment_services.start_payment(
        plate=violation_fields.get("plate", PLATE), vin_last6=violation_fields.get("vin_last6", VIN),
        violation_ids=[violation.id], idempotency_key=f"test-{uuid.uuid4().hex}",
    )
    payment = payment_services.confirm_payment(payment.id, "pm_card_visa")
    assert payment.status == "succeeded"
    return payment_row(payment.id), violation


def audit_actions(**filters):
    """Audit entries' actions in order, optionally filtered by column values (counted refusals written out)."""
    audit.flush_refusals(include_current=True)
    db.session.expire_all()
    query = select(AuditEntry)
    for name, value in filters.items():
        query = query.where(getattr(AuditEntry, name) == value)
    return [e.action for e in db.session.execute(query.order_by(AuditEntry.id)).scalars()]


def last_audit(action):
    """The latest audit entry with this action (counted refusals written out)."""
    audit.flush_refusals(include_current=True)
    db.session.expire_all()
    return db.session.execute(
        select(AuditEntry).where(AuditEntry.action == action).order_by(AuditEntry.id.desc()).limit(1)
    ).scalar_one_or_none()


def csv_rows(text):
    """The reconciliation CSV's lines as dicts by column code (CSV_HEADER), past its BOM and headings.

    Values as a spreadsheet shows them: without the tab that keeps a long number as text.
    """
    assert text.startswith(BOM)
    return [dict(zip(CSV_HEADER, (value.removeprefix("\t") for value in row), strict=True))
            for row in list(csv.reader(io.StringIO(text[1:])))[1:]]


def fen(yuan):
    """A CSV amount ("200.00") back in minor units (20000)."""
    return int(Decimal(yuan) * 100)
