"""Shared helpers for the payments tests (sandbox gateway, HTTP API and service level)."""
import json
import time
import uuid
from datetime import timedelta

from flask import current_app
from sqlalchemy import select, update

from finepay.audit import AuditEntry
from finepay.extensions import db
from payments.gateways import configured_gateways
from payments.gateways.sandbox import SandboxIntent, SandboxRefund
from payments.models import Payment, PaymentItem
from tests.factories import make_violation
from violations.fees import business_today, current_policy

PLATE = "蒙B12345"
VIN = "A12345"
OTHER_PLATE = "京A00001"
OTHER_VIN = "B22222"
OVERDUE_DAYS = 5  # the default violation is this many days past its due date


def new_key():
    """A fresh Idempotency-Key."""
    return str(uuid.uuid4())


def today():
    """Today in the business time zone."""
    return business_today(current_app.config["BUSINESS_TIMEZONE"])


def overdue_violation(**fields):
    """An unpaid violation OVERDUE_DAYS past its due date (so it carries a late fee)."""
    grace = current_app.config["LATE_FEE_GRACE_DAYS"]
    fields.setdefault("decision_date", today() - timedelta(days=grace + OVERDUE_DAYS))
    return make_violation(**fields)


def fresh_violation(**fields):
    """An unpaid violation decided today (no late fee)."""
    fields.setdefault("decision_date", today())
    return make_violation(**fields)


def expected_late_fee(violation):
    """The late fee the server should charge today for this violation."""
    return current_policy().late_fee(violation.fine, violation.decision_date, today())


def create(client, violation_ids, key=None, plate=PLATE, vin=VIN, **extra):
    """POST /api/v1/payments; returns the response."""
    ids = list(violation_ids) if isinstance(violation_ids, tuple | list) else violation_ids
    body = {"plate": plate, "vin_last6": vin, "violation_ids": ids, **extra}
    headers = {} if key is False else {"Idempotency-Key": key or new_key()}
    return client.post("/api/v1/payments", json=body, headers=headers)


def create_ok(client, violation_ids, **kwargs):
    """Create a payment and return its JSON body, failing loudly unless 201."""
    response = create(client, violation_ids, **kwargs)
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def confirm(client, payment_id, method="pm_card_visa"):
    """POST /api/v1/payments/<id>/confirm; returns the response."""
    return client.post(f"/api/v1/payments/{payment_id}/confirm", json={"payment_method": method})


def lookup(client, plate=PLATE, vin=VIN):
    """A fresh lookup's violations by id."""
    response = client.post("/api/v1/lookups", json={"plate": plate, "vin_last6": vin})
    assert response.status_code == 200, response.get_json()
    return {v["id"]: v for v in response.get_json()["violations"]}


def payment_row(payment_id):
    """The payment as stored now (not a cached copy)."""
    db.session.expire_all()
    return db.session.get(Payment, payment_id)


def set_payment(payment_id, **values):
    """Change a payment's columns directly in the database."""
    db.session.execute(update(Payment).where(Payment.id == payment_id).values(**values))
    db.session.commit()
    db.session.expire_all()


def cancel_directly(payment_id):
    """Mark a payment canceled and release its holds, bypassing the service (and the gateway)."""
    db.session.execute(update(PaymentItem).where(PaymentItem.payment_id == payment_id).values(holds=None))
    set_payment(payment_id, status="canceled")


def sandbox_intents(**filters):
    """The sandbox's intents, optionally filtered by column values."""
    db.session.expire_all()
    query = select(SandboxIntent)
    for name, value in filters.items():
        query = query.where(getattr(SandboxIntent, name) == value)
    return db.session.execute(query).scalars().all()


def sandbox_refunds(intent_id=None):
    """The sandbox's refunds, optionally for one intent."""
    query = select(SandboxRefund)
    if intent_id is not None:
        query = query.where(SandboxRefund.intent_id == intent_id)
    return db.session.execute(query).scalars().all()


def captures():
    """Sandbox charges (captured intents)."""
    return sandbox_intents(status="succeeded")


def audit_entries(payment_id):
    """The payment's audit entries in order."""
    return db.session.execute(
        select(AuditEntry).where(AuditEntry.subject_type == "payment", AuditEntry.subject_id == payment_id)
        .order_by(AuditEntry.id)
    ).scalars().all()


def capture_at_sandbox(intent_id, method="pm_card_visa"):
    """Confirm an intent at the sandbox directly, behind FinePay's back."""
    return configured_gateways()[0].confirm_intent(intent_id, payment_method=method,
                                                   idempotency_key=f"test:{intent_id}:{new_key()}")


def signed_event(payload, timestamp=None):
    """(body bytes, headers) for a sandbox webhook."""
    body = json.dumps(payload).encode() if isinstance(payload, dict) else payload
    signature = configured_gateways()[0].sign_event(body, timestamp=timestamp)
    return body, {"X-Sandbox-Signature": signature, "Content-Type": "application/json"}


def post_event(client, payload, timestamp=None, path="/webhooks/sandbox"):
    """POST a signed sandbox event."""
    body, headers = signed_event(payload, timestamp)
    return client.post(path, data=body, headers=headers)


def stale_timestamp():
    """A timestamp outside the 5-minute webhook tolerance."""
    return time.time() - 600


def end_session_after_each_request(app):
    """Make every test-client request end its database session, as it does in production.

    The ``app`` fixture keeps an app context pushed, so a request reuses it and
    Flask-SQLAlchemy's per-context teardown never runs: whatever a failed
    request left uncommitted would otherwise linger in the test's session and
    be committed by the next call. Production discards it; so do we.
    """
    @app.teardown_request
    def _discard_uncommitted(_exc):
        db.session.rollback()
