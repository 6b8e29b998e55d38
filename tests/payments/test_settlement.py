"""Settlement at the service level: double captures, sync, the sync CLI and refunds, on SQLite and PostgreSQL."""
import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from finepay.audit import AuditEntry
from finepay.dbtypes import utcnow
from finepay.errors import ApiError
from finepay.extensions import db
from payments import services
from payments.gateways import GatewayError, gateway_named
from payments.models import Refund
from tests.payments.helpers import (
    audit_entries,
    cancel_directly,
    capture_at_sandbox,
    captures,
    confirm,
    create,
    create_ok,
    end_session_after_each_request,
    fresh_violation,
    lookup,
    overdue_violation,
    payment_row,
    sandbox_intents,
    sandbox_refunds,
    set_payment,
)
from violations.models import Violation

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _sessions_end_with_each_request(app):
    end_session_after_each_request(app)


def violation_row(violation_id):
    db.session.expire_all()
    return db.session.get(Violation, violation_id)


def refunds_of(payment_id):
    db.session.expire_all()
    return db.session.execute(select(Refund).where(Refund.payment_id == payment_id)).scalars().all()


def transactions():
    now = utcnow()
    return gateway_named("sandbox").list_transactions(now - timedelta(hours=1), now + timedelta(hours=1))


def two_captures_for_one_violation(client, violation):
    """Two payments for the same violation, both captured at the gateway, FinePay told of neither."""
    first = create_ok(client, [violation.id])
    cancel_directly(first["id"])  # its hold is gone, as if it had been closed
    second = create_ok(client, [violation.id])
    intents = {}
    for payment in (first, second):
        intent = capture_at_sandbox(payment_row(payment["id"]).gateway_intent_id)
        assert intent.status == "succeeded"
        intents[payment["id"]] = intent
    return first, second, intents


# --- a gateway that captured twice ----------------------------------------------


@pytest.mark.parametrize("order", ["first_then_second", "second_then_first"])
def test_double_capture_settles_once_and_refunds_the_surplus(client, order):
    violation = overdue_violation(fine=20000)
    first, second, intents = two_captures_for_one_violation(client, violation)
    winner, loser = (first, second) if order == "first_then_second" else (second, first)

    services.apply_intent(winner["id"], intents[winner["id"]])
    services.apply_intent(loser["id"], intents[loser["id"]])

    paid = violation_row(violation.id)
    won, lost = payment_row(winner["id"]), payment_row(loser["id"])
    assert paid.status == "paid"
    assert paid.receipt_number == won.receipt_number
    assert won.status == "succeeded"
    assert [item.settled for item in won.items] == [True]
    assert won.refunds == []
    assert lost.status == "refunded"
    assert [item.settled for item in lost.items] == [False]
    assert lost.amount_received == lost.amount == 23000

    (refund,) = refunds_of(loser["id"])
    assert refund.automatic is True
    assert refund.status == "succeeded"
    assert refund.amount == lost.amount_received
    assert refund.actor == "system"
    assert refund.gateway_refund_id
    (gateway_refund,) = sandbox_refunds(lost.gateway_intent_id)
    assert gateway_refund.id == refund.gateway_refund_id
    assert gateway_refund.amount == lost.amount
    assert sandbox_refunds(won.gateway_intent_id) == []

    # The ledger the reconciliation reads: two charges, one refund of the surplus.
    kinds = sorted((t.kind, t.payment_id) for t in transactions())
    assert kinds == sorted([("charge", first["id"]), ("charge", second["id"]), ("refund", loser["id"])])
    actions = [e.action for e in audit_entries(loser["id"])]
    assert "refund.created" in actions and "refund.succeeded" in actions
    assert actions[-1] == "payment.refunded"

    # Hearing about it again changes nothing and refunds nothing more.
    services.apply_intent(loser["id"], gateway_named("sandbox").retrieve_intent(lost.gateway_intent_id))
    services.apply_intent(winner["id"], gateway_named("sandbox").retrieve_intent(won.gateway_intent_id))
    assert len(sandbox_refunds()) == 1
    assert len(refunds_of(loser["id"])) == 1
    assert payment_row(loser["id"]).status == "refunded"
    assert violation_row(violation.id).receipt_number == won.receipt_number


def test_double_capture_shows_on_the_losers_receipt_as_refunded(client):
    violation = overdue_violation()
    first, second, intents = two_captures_for_one_violation(client, violation)
    services.apply_intent(first["id"], intents[first["id"]])
    services.apply_intent(second["id"], intents[second["id"]])

    receipt = client.get(f"/api/v1/receipts/{payment_row(second['id']).receipt_number}").get_json()

    assert receipt["refunded_amount"] == receipt["amount"]
    assert [item["settled"] for item in receipt["items"]] == [False]
    assert receipt["refunds"][0]["automatic"] is True


def test_partly_paid_elsewhere_refunds_only_that_part(client):
    shared = overdue_violation(fine=20000)  # 200.00 + 30.00 late fee
    other = fresh_violation(fine=5000)
    both = create_ok(client, [shared.id, other.id])
    cancel_directly(both["id"])
    alone = create_ok(client, [shared.id])
    assert confirm(client, alone["id"]).get_json()["status"] == "succeeded"

    intent = capture_at_sandbox(payment_row(both["id"]).gateway_intent_id)
    services.apply_intent(both["id"], intent)

    stored = payment_row(both["id"])
    assert stored.status == "succeeded"  # it still paid the other violation
    assert {item.violation_id: item.settled for item in stored.items} == {shared.id: False, other.id: True}
    (refund,) = refunds_of(both["id"])
    assert refund.automatic and refund.status == "succeeded"
    assert refund.amount == 23000
    # Allocated to the line it did not settle; the violation it did settle stays paid.
    assert [(line.item.violation_id, line.amount) for line in refund.lines] == [(shared.id, 23000)]
    assert violation_row(other.id).status == "paid"
    assert violation_row(other.id).receipt_number == stored.receipt_number
    assert violation_row(shared.id).receipt_number == payment_row(alone["id"]).receipt_number
    assert sum(r.amount for r in sandbox_refunds()) == 23000


def test_a_new_payment_that_finds_the_older_captured_settles_it(client):
    """The driver approved 3-D Secure but FinePay had not heard yet when a new payment started."""
    violation = overdue_violation()
    older = create_ok(client, [violation.id])
    assert confirm(client, older["id"], "pm_card_threeDSecure2Required").get_json()["status"] == "requires_action"
    gateway_named("sandbox").authenticate(payment_row(older["id"]).gateway_intent_id, approve=True)

    response = create(client, [violation.id])

    assert response.status_code == 409
    assert response.get_json()["code"] == "already_paid"
    # "Already paid" must be true: the older payment is settled and the lookup says so.
    stored = payment_row(older["id"])
    assert stored.status == "succeeded"
    assert lookup(client)[violation.id]["status"] == "paid"
    assert lookup(client)[violation.id]["receipt_number"] == stored.receipt_number
    assert len(captures()) == 1


# --- sync -----------------------------------------------------------------------


def test_sync_settles_what_the_gateway_knows_and_expires_stale_quotes(client):
    unheard = overdue_violation()
    stale = fresh_violation()
    current = fresh_violation()
    lost = create_ok(client, [unheard.id])
    old = create_ok(client, [stale.id])
    live = create_ok(client, [current.id])
    # The confirm reached the gateway and succeeded; FinePay never heard the answer.
    set_payment(lost["id"], status="processing")
    capture_at_sandbox(payment_row(lost["id"]).gateway_intent_id)
    set_payment(old["id"], expires_at=utcnow() - timedelta(minutes=5))

    counts = services.sync_payments()

    assert counts["checked"] == 3
    assert counts["changed"] == 2
    assert counts["expired"] == 1
    assert counts["errors"] == 0
    settled = payment_row(lost["id"])
    assert settled.status == "succeeded" and settled.receipt_number
    assert violation_row(unheard.id).status == "paid"
    assert violation_row(unheard.id).receipt_number == settled.receipt_number
    expired = payment_row(old["id"])
    assert expired.status == "expired"
    assert all(item.holds is None for item in expired.items)
    assert sandbox_intents(id=expired.gateway_intent_id)[0].status == "canceled"
    assert violation_row(stale.id).status == "unpaid"
    assert payment_row(live["id"]).status == "created"
    assert len(captures()) == 1

    # Running it again finds nothing new.
    again = services.sync_payments()
    assert again["changed"] == 0 and again["expired"] == 0


def test_sync_fails_a_confirm_that_never_reached_the_gateway(client):
    violation = fresh_violation()
    payment = create_ok(client, [violation.id])
    set_payment(payment["id"], status="processing", updated_at=utcnow() - timedelta(minutes=5))

    services.sync_payments()

    stored = payment_row(payment["id"])
    assert stored.status == "failed"
    assert stored.failure_code == "not_completed"
    # The driver can simply try again.
    assert confirm(client, payment["id"]).get_json()["status"] == "succeeded"


def test_sync_does_not_fail_a_confirm_still_in_flight(client):
    violation = fresh_violation()
    payment = create_ok(client, [violation.id])
    set_payment(payment["id"], status="processing")

    services.sync_payments()

    assert payment_row(payment["id"]).status == "processing"


def test_sync_settles_a_late_capture_on_a_canceled_payment_and_refunds_if_needed(client):
    violation = overdue_violation()
    first, second, _intents = two_captures_for_one_violation(client, violation)
    set_payment(second["id"], status="processing")

    counts = services.sync_payments()

    assert counts["errors"] == 0
    statuses = {payment_row(p["id"]).status for p in (first, second)}
    assert statuses == {"succeeded", "refunded"}
    assert violation_row(violation.id).status == "paid"
    assert len(sandbox_refunds()) == 1


def test_payments_sync_cli(runner, client):
    violation = fresh_violation()
    payment = create_ok(client, [violation.id])
    set_payment(payment["id"], status="processing")
    capture_at_sandbox(payment_row(payment["id"]).gateway_intent_id)

    result = runner.invoke(args=["payments", "sync"])

    assert result.exit_code == 0, result.output
    assert "1 changed" in result.output
    assert payment_row(payment["id"]).status == "succeeded"


def test_payments_sync_cli_through_flask_and_wsgi(client, database_url, tmp_path):
    violation = fresh_violation()
    payment = create_ok(client, [violation.id])
    set_payment(payment["id"], expires_at=utcnow() - timedelta(minutes=1))
    db.session.remove()

    env = {**os.environ, "DATABASE_URL": database_url, "FINEPAY_INSTANCE_PATH": str(tmp_path),
           "PAYMENT_GATEWAY": "sandbox", "FINEPAY_ENV": "development"}
    result = subprocess.run(
        [sys.executable, "-m", "flask", "--app", "wsgi", "payments", "sync"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60, check=False,
    )

    assert result.returncode == 0, result.stderr
    assert "1 expired" in result.stdout
    assert payment_row(payment["id"]).status == "expired"


# --- refunds --------------------------------------------------------------------


def paid_payment(client, **fields):
    violation = overdue_violation(**fields)
    payment = create_ok(client, [violation.id])
    assert confirm(client, payment["id"]).get_json()["status"] == "succeeded"
    return violation, payment


def test_refund_twice_with_the_same_key_refunds_once(client):
    _violation, payment = paid_payment(client)

    first = services.refund_payment(payment["id"], 1000, reason="clerk error", actor="clerk:1",
                                    idempotency_key="refund-key-1")
    second = services.refund_payment(payment["id"], 1000, reason="clerk error", actor="clerk:1",
                                     idempotency_key="refund-key-1")

    assert first.id == second.id
    assert first.status == "succeeded"
    assert len(refunds_of(payment["id"])) == 1
    intent = payment_row(payment["id"]).gateway_intent_id
    assert [r.amount for r in sandbox_refunds(intent)] == [1000]
    assert payment_row(payment["id"]).status == "succeeded"  # partly refunded
    assert payment_row(payment["id"]).refunded_amount == 1000


def test_refunds_with_new_keys_add_up_and_a_full_refund_closes_the_payment(client):
    violation, payment = paid_payment(client)

    services.refund_payment(payment["id"], 1000, reason="part", actor="clerk:1")
    services.refund_payment(payment["id"], payment["amount"] - 1000, reason="rest", actor="clerk:1")

    stored = payment_row(payment["id"])
    assert stored.status == "refunded"
    assert stored.refunded_amount == payment["amount"]
    assert sum(r.amount for r in sandbox_refunds(stored.gateway_intent_id)) == payment["amount"]
    # Released: the fine is owed again.
    assert violation_row(violation.id).status == "unpaid"
    assert violation_row(violation.id).receipt_number is None
    actions = [e.action for e in db.session.execute(
        select(AuditEntry).where(AuditEntry.subject_type == "violation",
                                 AuditEntry.subject_id == str(violation.id))).scalars()]
    assert "violation.unpaid" in actions


@pytest.mark.parametrize("amount", [0, -1, 10**9])
def test_refund_outside_what_was_received_is_refused(app, client, amount):
    _violation, payment = paid_payment(client)

    with app.test_request_context(), pytest.raises(ApiError) as error:
        services.refund_payment(payment["id"], amount, reason="x", actor="clerk:1")

    assert error.value.code == "invalid_refund"
    db.session.rollback()
    assert refunds_of(payment["id"]) == []
    assert sandbox_refunds() == []


def test_a_refund_the_gateway_could_not_take_stays_pending_and_sync_retries_it(client, monkeypatch):
    _violation, payment = paid_payment(client)
    gateway = gateway_named("sandbox")
    real_refund = gateway.refund

    def unavailable(*args, **kwargs):
        raise GatewayError("down", code="gateway_unavailable", retryable=True, status=503)

    monkeypatch.setattr(gateway, "refund", unavailable)
    refund = services.refund_payment(payment["id"], 500, reason="goodwill", actor="clerk:1")
    assert refund.status == "pending"
    assert sandbox_refunds() == []

    monkeypatch.setattr(gateway, "refund", real_refund)
    counts = services.sync_payments()

    assert counts["refunds_retried"] == 1
    (stored,) = refunds_of(payment["id"])
    assert stored.status == "succeeded"
    assert [r.amount for r in sandbox_refunds()] == [500]
    assert services.sync_payments()["refunds_retried"] == 0


def test_service_errors_outside_a_request_are_api_errors(app):
    """sync and the CLI run without a request: an ApiError must still be an ApiError, not a crash."""
    with pytest.raises(ApiError) as error:
        services.get_payment("pay_000000000000000000000000")

    assert error.value.status == 404
    assert error.value.message
