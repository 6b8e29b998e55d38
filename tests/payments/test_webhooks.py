"""POST /webhooks/<gateway> with the sandbox's signed events, on SQLite and PostgreSQL."""
import json
from datetime import timedelta

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.exc import OperationalError

from finepay.dbtypes import utcnow
from finepay.extensions import db
from payments import services
from payments.gateways import CardTerminal, gateway_named
from payments.gateways.sandbox import SandboxReaderAction
from payments.models import WebhookEvent
from tests.payments.helpers import (
    capture_at_sandbox,
    captures,
    confirm,
    create_ok,
    end_session_after_each_request,
    lookup,
    overdue_violation,
    payment_row,
    post_event,
    signed_event,
    stale_timestamp,
)


@pytest.fixture(autouse=True)
def _sessions_end_with_each_request(app):
    end_session_after_each_request(app)


@pytest.fixture
def captured(client):
    """A payment whose intent succeeded at the sandbox; FinePay has not heard yet."""
    violation = overdue_violation()
    payment = create_ok(client, [violation.id])
    intent_id = payment_row(payment["id"]).gateway_intent_id
    capture_at_sandbox(intent_id)
    return {"violation": violation, "payment_id": payment["id"], "intent_id": intent_id}


def event(captured, event_id="evt_1", type_="payment_intent.succeeded", **extra):
    return {"id": event_id, "type": type_, "intent_id": captured["intent_id"],
            "payment_id": captured["payment_id"], **extra}


def events_stored():
    return db.session.execute(select(func.count()).select_from(WebhookEvent)).scalar_one()


def test_succeeded_event_settles_the_payment(client, captured):
    assert payment_row(captured["payment_id"]).status == "created"

    response = post_event(client, event(captured))

    assert response.status_code == 200
    assert response.get_json() == {"received": True, "outcome": "applied"}
    stored = payment_row(captured["payment_id"])
    assert stored.status == "succeeded"
    assert stored.receipt_number
    line = lookup(client)[captured["violation"].id]
    assert line["status"] == "paid"
    assert line["receipt_number"] == stored.receipt_number
    assert events_stored() == 1


def test_the_same_event_again_is_a_duplicate(client, captured):
    first = post_event(client, event(captured))
    receipt = payment_row(captured["payment_id"]).receipt_number

    again = post_event(client, event(captured))

    assert first.get_json()["outcome"] == "applied"
    assert again.status_code == 200
    assert again.get_json()["outcome"] == "duplicate"
    assert events_stored() == 1
    assert payment_row(captured["payment_id"]).receipt_number == receipt
    assert len(captures()) == 1


def test_the_event_only_prompts_a_fresh_look_at_the_gateway(client):
    """A forged-looking claim of success is not believed: the gateway's own state decides."""
    violation = overdue_violation()
    payment = create_ok(client, [violation.id])
    intent_id = payment_row(payment["id"]).gateway_intent_id

    response = post_event(client, {"id": "evt_claim", "type": "payment_intent.succeeded", "intent_id": intent_id,
                                   "payment_id": payment["id"]})

    assert response.status_code == 200
    assert payment_row(payment["id"]).status == "created"
    assert lookup(client)[violation.id]["status"] == "unpaid"


@pytest.mark.parametrize("header", [
    "t=1,v1=deadbeef", "", "garbage", "v1=abc", "t=notanumber,v1=abc",
])
def test_bad_signature_is_400_and_changes_nothing(client, captured, header):
    body = json.dumps(event(captured)).encode()
    headers = {"Content-Type": "application/json"}
    if header:
        headers["X-Sandbox-Signature"] = header

    response = client.post("/webhooks/sandbox", data=body, headers=headers)

    assert response.status_code == 400
    assert response.is_json
    assert response.get_json()["code"] == "bad_signature"
    assert payment_row(captured["payment_id"]).status == "created"
    assert events_stored() == 0


def test_signature_of_another_body_is_400(client, captured):
    body, headers = signed_event(event(captured))
    tampered = body.replace(b"evt_1", b"evt_2")

    response = client.post("/webhooks/sandbox", data=tampered, headers=headers)

    assert response.status_code == 400
    assert response.get_json()["code"] == "bad_signature"
    assert payment_row(captured["payment_id"]).status == "created"


def test_stale_timestamp_is_400(client, captured):
    response = post_event(client, event(captured), timestamp=stale_timestamp())

    assert response.status_code == 400
    assert response.get_json()["code"] == "bad_signature"
    assert payment_row(captured["payment_id"]).status == "created"
    assert events_stored() == 0


@pytest.mark.parametrize("body", [b"not json", b"[]", b'{"type": "x"}', b'{"id": "evt_9"}'])
def test_signed_but_malformed_body_is_400(client, body):
    response = post_event(client, body)

    assert response.status_code == 400
    assert response.get_json()["code"] == "bad_signature"


def test_unknown_event_type_is_200_ignored(client):
    response = post_event(client, {"id": "evt_unknown", "type": "customer.created"})

    assert response.status_code == 200
    assert response.get_json()["outcome"] == "ignored"


def test_unknown_event_type_about_an_intent_is_ignored(client, captured):
    response = post_event(client, event(captured, event_id="evt_odd", type_="customer.subscription.updated"))

    assert response.status_code == 200
    assert response.get_json()["outcome"] == "ignored"
    assert payment_row(captured["payment_id"]).status == "created"


def test_event_for_an_intent_we_do_not_know_is_ignored(client):
    response = post_event(client, {"id": "evt_x", "type": "payment_intent.succeeded", "intent_id": "si_unknown"})

    assert response.status_code == 200
    assert response.get_json()["outcome"] == "ignored"


def test_out_of_order_failure_after_success_changes_nothing(client):
    violation = overdue_violation()
    payment = create_ok(client, [violation.id])
    paid = confirm(client, payment["id"]).get_json()
    assert paid["status"] == "succeeded"
    intent_id = payment_row(payment["id"]).gateway_intent_id

    response = post_event(client, {"id": "evt_late_failure", "type": "payment_intent.payment_failed",
                                   "intent_id": intent_id, "payment_id": payment["id"]})

    assert response.status_code == 200
    stored = payment_row(payment["id"])
    assert stored.status == "succeeded"
    assert stored.receipt_number == paid["receipt_number"]
    assert stored.failure_code is None
    assert lookup(client)[violation.id]["status"] == "paid"


def test_failure_event_for_a_declined_card_marks_it_failed(client):
    violation = overdue_violation()
    payment = create_ok(client, [violation.id])
    intent_id = payment_row(payment["id"]).gateway_intent_id
    capture_at_sandbox(intent_id, method="pm_card_chargeDeclinedInsufficientFunds")

    response = post_event(client, {"id": "evt_fail", "type": "payment_intent.payment_failed",
                                   "intent_id": intent_id, "payment_id": payment["id"]})

    assert response.get_json()["outcome"] == "applied"
    stored = payment_row(payment["id"])
    assert stored.status == "failed"
    assert stored.failure_code == "insufficient_funds"


def test_stripe_webhook_is_404_when_the_sandbox_is_configured(client, captured):
    body, headers = signed_event(event(captured))

    response = client.post("/webhooks/stripe", data=body, headers={**headers, "Stripe-Signature": "t=1,v1=x"})

    assert response.status_code == 404
    assert response.is_json
    assert response.get_json()["code"] == "not_found"
    assert payment_row(captured["payment_id"]).status == "created"
    assert events_stored() == 0


@pytest.mark.parametrize("method", ["get", "put", "delete"])
def test_webhook_only_accepts_post(client, method):
    response = getattr(client, method)("/webhooks/sandbox")

    assert response.status_code == 405
    assert response.is_json


def test_an_event_whose_handling_failed_is_applied_when_the_gateway_retries(client, captured, monkeypatch):
    """The gateway redelivers after a non-2xx answer; the retry must not be mistaken for a duplicate."""
    real_apply = services.apply_intent
    calls = []

    def database_dropped(payment_id, intent):
        calls.append(payment_id)
        if len(calls) == 1:
            raise OperationalError("SELECT 1", {}, Exception("server closed the connection unexpectedly"))
        return real_apply(payment_id, intent)

    monkeypatch.setattr(services, "apply_intent", database_dropped)
    failed = post_event(client, event(captured))
    assert failed.status_code == 503
    assert payment_row(captured["payment_id"]).status == "created"

    retried = post_event(client, event(captured))

    assert retried.status_code == 200
    assert retried.get_json()["outcome"] == "applied"
    assert payment_row(captured["payment_id"]).status == "succeeded"


@pytest.mark.parametrize("app_config", [{"SQLITE_BUSY_TIMEOUT_SECONDS": 3}])
def test_an_event_whose_fresh_look_changes_the_sandbox_is_applied_without_waiting_on_itself(client, app_config):
    """The sandbox keeps its ledger in FinePay's database: FinePay must hold no write lock while it asks.

    A kiosk's reader left waiting past its timeout gives up when the intent is
    next read, which writes to the sandbox's tables.
    """
    violation = overdue_violation()
    payment = create_ok(client, [violation.id])
    intent_id = payment_row(payment["id"]).gateway_intent_id
    gateway_named("sandbox").start_reader_payment(intent_id, terminal=CardTerminal(id=1, name="hall-1"),
                                                  idempotency_key="test:reader")
    db.session.execute(update(SandboxReaderAction).values(started_at=utcnow() - timedelta(minutes=5)))
    db.session.commit()

    response = post_event(client, {"id": "evt_reader", "type": "payment_intent.payment_failed",
                                   "intent_id": intent_id, "payment_id": payment["id"]})

    assert response.status_code == 200, response.get_json()
    assert events_stored() == 1
    assert payment_row(payment["id"]).failure_code == "reader_timeout"
