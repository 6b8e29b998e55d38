"""The payments HTTP API with the sandbox gateway, on SQLite and PostgreSQL."""
from datetime import datetime, timedelta

import pytest
from sqlalchemy import func, select

from finepay.dbtypes import utcnow
from finepay.extensions import db
from payments import states
from payments.gateways import gateway_named
from payments.models import PaymentItem
from tests.factories import make_violation
from tests.payments.helpers import (
    OTHER_PLATE,
    OTHER_VIN,
    PLATE,
    VIN,
    audit_entries,
    captures,
    confirm,
    create,
    create_ok,
    end_session_after_each_request,
    expected_late_fee,
    fresh_violation,
    lookup,
    new_key,
    overdue_violation,
    payment_row,
    sandbox_intents,
    set_payment,
)
from violations.models import Violation


@pytest.fixture(autouse=True)
def _sessions_end_with_each_request(app):
    end_session_after_each_request(app)

# --- creating -----------------------------------------------------------------


def test_create_prices_the_violations_on_the_server(client, app):
    late = overdue_violation(fine=20000)
    on_time = fresh_violation(fine=5000)
    before = utcnow()

    response = create(client, [late.id, on_time.id])

    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    assert body["id"].startswith("pay_")
    assert body["status"] == "created"
    assert body["currency"] == "CNY"
    assert body["gateway"] == "sandbox"
    assert body["channel"] == "web"
    late_fee = expected_late_fee(late)
    assert late_fee == 3000  # 5 days x 3 % of 200.00
    items = {item["violation_id"]: item for item in body["items"]}
    assert items[late.id]["fine"] == 20000 and items[late.id]["late_fee"] == late_fee
    assert items[on_time.id]["fine"] == 5000 and items[on_time.id]["late_fee"] == 0
    assert body["amount"] == 20000 + late_fee + 5000
    assert body["amount"] == sum(i["fine"] + i["late_fee"] for i in body["items"])
    assert isinstance(body["amount"], int)
    expires_at = datetime.fromisoformat(body["expires_at"])
    ttl = timedelta(minutes=app.config["QUOTE_TTL_MINUTES"])
    assert before + ttl - timedelta(seconds=5) <= expires_at <= utcnow() + ttl + timedelta(seconds=5)
    assert body["next_action_url"] is None and body["receipt_number"] is None
    # The gateway heard of it once.
    assert [i.payment_id for i in sandbox_intents()] == [body["id"]]
    assert sandbox_intents()[0].amount == body["amount"]


def test_create_normalises_plate_and_vin(client):
    violation = fresh_violation()

    response = create(client, [violation.id], plate="蒙b·12345", vin="a12345")

    assert response.status_code == 201, response.get_json()
    assert payment_row(response.get_json()["id"]).plate == PLATE


def test_same_key_and_body_returns_the_same_payment(client):
    violation = overdue_violation()
    key = new_key()

    first = create(client, [violation.id], key=key)
    second = create(client, [violation.id], key=key)

    assert first.status_code == 201 and second.status_code == 201
    assert second.get_json()["id"] == first.get_json()["id"]
    assert second.get_json()["amount"] == first.get_json()["amount"]
    assert len(sandbox_intents()) == 1
    assert payment_row(first.get_json()["id"]).status == "created"


def test_same_key_with_ids_in_another_order_is_the_same_request(client):
    a, b = fresh_violation(), fresh_violation()
    key = new_key()

    first = create(client, [a.id, b.id], key=key)
    second = create(client, [b.id, a.id], key=key)

    assert second.status_code == 201
    assert second.get_json()["id"] == first.get_json()["id"]


def test_same_key_with_a_different_body_is_409(client):
    a, b = fresh_violation(), fresh_violation()
    key = new_key()
    first = create(client, [a.id], key=key)
    assert first.status_code == 201

    response = create(client, [a.id, b.id], key=key)

    assert response.status_code == 409
    assert response.get_json()["code"] == "idempotency_key_reused"
    assert payment_row(first.get_json()["id"]).status == "created"  # the first payment is untouched


def test_missing_idempotency_key_is_422(client):
    violation = fresh_violation()

    response = create(client, [violation.id], key=False)

    assert response.status_code == 422
    body = response.get_json()
    assert body["code"] == "invalid_input"
    assert "Idempotency-Key" in body["errors"]
    assert sandbox_intents() == []


@pytest.mark.parametrize("key", ["k" * 300, "short", "has space in it", "ключ-ключ-ключ", ""])
def test_bad_idempotency_key_is_422(client, key):
    violation = fresh_violation()

    response = create(client, [violation.id], key=key or "x" * 101)

    assert response.status_code == 422
    assert response.get_json()["code"] == "invalid_input"
    assert sandbox_intents() == []


def test_amount_in_the_body_is_refused_and_never_used(client):
    violation = fresh_violation(fine=20000)

    response = create(client, [violation.id], amount=1)

    assert response.status_code == 422
    body = response.get_json()
    assert body["code"] == "invalid_input"
    assert "amount" in body["errors"]
    assert sandbox_intents() == []
    # And a clean request is priced by the server.
    assert create_ok(client, [violation.id])["amount"] == 20000


@pytest.mark.parametrize("ids", [
    [], [1, 1], ["1"], [1.5], [True], [False], [None], "1", 1, None, [0], [-1], [2**63], [[1]], [{"id": 1}],
])
def test_malformed_violation_ids_are_422(client, ids):
    fresh_violation()  # id 1 exists

    response = create(client, ids)

    assert response.status_code == 422, response.get_json()
    body = response.get_json()
    assert body["code"] == "invalid_input"
    assert "violation_ids" in body["errors"]
    assert sandbox_intents() == []


def test_duplicate_ids_are_422_even_when_valid(client):
    violation = fresh_violation()

    response = create(client, [violation.id, violation.id])

    assert response.status_code == 422
    assert "violation_ids" in response.get_json()["errors"]


@pytest.mark.parametrize("missing", ["plate", "vin_last6", "violation_ids"])
def test_missing_fields_are_422(client, missing):
    violation = fresh_violation()
    body = {"plate": PLATE, "vin_last6": VIN, "violation_ids": [violation.id]}
    del body[missing]

    response = client.post("/api/v1/payments", json=body, headers={"Idempotency-Key": new_key()})

    assert response.status_code == 422
    assert missing in response.get_json()["errors"]


def test_not_json_is_a_clean_4xx(client):
    response = client.post("/api/v1/payments", data="{not json", headers={
        "Idempotency-Key": new_key(), "Content-Type": "application/json"})

    assert response.status_code in (400, 422)
    assert response.get_json()["code"]


def test_unknown_and_someone_elses_violation_look_the_same(client):
    mine = fresh_violation()
    theirs = fresh_violation(plate=OTHER_PLATE, vin_last6=OTHER_VIN)
    unknown_id = theirs.id + 1000

    unknown = create(client, [mine.id, unknown_id])
    foreign = create(client, [mine.id, theirs.id])

    assert unknown.status_code == foreign.status_code == 422
    assert unknown.get_json()["code"] == foreign.get_json()["code"] == "unknown_violation"
    # One body, naming no id: listing the ids not found would tell a right VIN code (only the
    # foreign ids listed) from a wrong one (all of them).
    assert unknown.get_json() == foreign.get_json()
    assert str(unknown_id) not in unknown.get_data(as_text=True)
    assert str(theirs.id) not in foreign.get_data(as_text=True)
    assert sandbox_intents() == []
    # Nothing was held: both violations can still be paid by their owners.
    assert create(client, [mine.id]).status_code == 201
    assert create(client, [theirs.id], plate=OTHER_PLATE, vin=OTHER_VIN).status_code == 201


def test_wrong_vin_for_the_plate_is_unknown_violation(client):
    violation = fresh_violation()

    response = create(client, [violation.id], vin="Z99999")

    assert response.status_code == 422
    assert response.get_json()["code"] == "unknown_violation"
    # Same plate + VIN of another car with the same plate: also unknown.
    other_car = fresh_violation(vin_last6="Z99999")
    assert create(client, [other_car.id]).get_json()["code"] == "unknown_violation"


def test_paid_violation_is_409_already_paid(client):
    paid = make_violation(status="paid", receipt_number="FP-AAAA-BBBB-CCCC-DDDD")

    response = create(client, [paid.id])

    assert response.status_code == 409
    body = response.get_json()
    assert body["code"] == "already_paid"
    assert str(paid.id) in body["errors"]["violation_ids"]


def test_void_violation_is_409(client):
    void = make_violation(status="void")

    response = create(client, [void.id])

    assert response.status_code == 409
    assert response.get_json()["code"] == "not_payable"


def test_not_payable_online_is_422(client):
    in_person = fresh_violation(payable_online=False)
    online = fresh_violation()

    response = create(client, [online.id, in_person.id])

    assert response.status_code == 422
    body = response.get_json()
    assert body["code"] == "not_payable_online"
    assert list(body["errors"]["violation_ids"]) == [str(in_person.id)]
    assert sandbox_intents() == []


# --- confirming ---------------------------------------------------------------


def test_confirm_with_a_good_card_settles_the_violations(client):
    late = overdue_violation(fine=20000)
    on_time = fresh_violation(fine=5000)
    payment = create_ok(client, [late.id, on_time.id])

    response = confirm(client, payment["id"])

    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["status"] == "succeeded"
    receipt = body["receipt_number"]
    assert receipt and receipt.startswith("FP-")
    assert body["paid_at"]
    assert body["failure_code"] is None and body["failure_message"] is None
    assert body["client_secret"] is None
    assert all(item["settled"] for item in body["items"])

    lines = lookup(client)
    for violation in (late, on_time):
        assert lines[violation.id]["status"] == "paid"
        assert lines[violation.id]["receipt_number"] == receipt
        assert lines[violation.id]["amount_due"] == 0
    assert lines[late.id]["late_fee"] == expected_late_fee(late) == 3000
    late_fees = {item["violation_id"]: item["late_fee"] for item in body["items"]}
    db.session.expire_all()
    for violation in (late, on_time):
        stored = db.session.get(Violation, violation.id)
        assert stored.late_fee_paid == late_fees[violation.id]
        assert stored.paid_at is not None
    assert len(captures()) == 1
    assert captures()[0].amount_received == body["amount"]


def test_double_click_gives_the_same_receipt_and_one_capture(client):
    violation = overdue_violation()
    payment = create_ok(client, [violation.id])

    first = confirm(client, payment["id"])
    second = confirm(client, payment["id"])

    assert first.status_code == second.status_code == 200
    assert first.get_json()["status"] == second.get_json()["status"] == "succeeded"
    assert first.get_json()["receipt_number"] == second.get_json()["receipt_number"]
    assert len(captures()) == 1
    now = utcnow()
    charges = [t for t in gateway_named("sandbox").list_transactions(now - timedelta(hours=1), now + timedelta(hours=1))
               if t.kind == "charge"]
    assert len(charges) == 1
    assert charges[0].payment_id == payment["id"]
    assert charges[0].amount == payment["amount"]


def test_repeating_the_create_after_success_returns_the_paid_payment(client):
    violation = fresh_violation()
    key = new_key()
    payment = create_ok(client, [violation.id], key=key)
    assert confirm(client, payment["id"]).get_json()["status"] == "succeeded"

    again = create(client, [violation.id], key=key)

    assert again.status_code == 201  # the stored answer for that key, not a second payment
    assert again.get_json()["id"] == payment["id"]
    assert again.get_json()["status"] == "succeeded"
    assert len(sandbox_intents()) == 1
    # A new key for the same violation is refused: it is paid.
    assert create(client, [violation.id]).get_json()["code"] == "already_paid"


def test_declined_card_then_another_card(client):
    violation = overdue_violation()
    payment = create_ok(client, [violation.id])

    declined = confirm(client, payment["id"], "pm_card_chargeDeclined")

    assert declined.status_code == 200
    body = declined.get_json()
    assert body["status"] == "failed"
    assert body["failure_code"] == "card_declined"
    message = body["failure_message"]
    assert message and "declined" in message.lower()
    assert "sandbox" not in message and "pm_card" not in message  # the driver's words, not the gateway's
    assert body["receipt_number"] is None
    assert lookup(client)[violation.id]["status"] == "unpaid"
    assert captures() == []

    retried = confirm(client, payment["id"], "pm_card_visa")

    assert retried.status_code == 200
    body = retried.get_json()
    assert body["status"] == "succeeded"
    assert body["failure_code"] is None and body["failure_message"] is None
    assert body["receipt_number"]
    assert lookup(client)[violation.id]["status"] == "paid"
    assert len(captures()) == 1


def test_three_d_secure_approved(client):
    violation = overdue_violation()
    payment = create_ok(client, [violation.id])

    response = confirm(client, payment["id"], "pm_card_threeDSecure2Required")

    assert response.status_code == 200
    body = response.get_json()
    assert body["status"] == "requires_action"
    intent = payment_row(payment["id"]).gateway_intent_id
    assert body["next_action_url"] and intent in body["next_action_url"]
    assert lookup(client)[violation.id]["status"] == "unpaid"

    gateway_named("sandbox").authenticate(intent, approve=True)
    refreshed = client.get(f"/api/v1/payments/{payment['id']}")

    assert refreshed.status_code == 200
    body = refreshed.get_json()
    assert body["status"] == "succeeded"
    assert body["receipt_number"]
    assert body["next_action_url"] is None
    assert lookup(client)[violation.id]["receipt_number"] == body["receipt_number"]
    assert len(captures()) == 1


def test_three_d_secure_refused(client):
    violation = overdue_violation()
    payment = create_ok(client, [violation.id])
    assert confirm(client, payment["id"], "pm_card_threeDSecure2Required").get_json()["status"] == "requires_action"

    gateway_named("sandbox").authenticate(payment_row(payment["id"]).gateway_intent_id, approve=False)
    refreshed = client.get(f"/api/v1/payments/{payment['id']}")

    body = refreshed.get_json()
    assert body["status"] == "failed"
    assert body["failure_code"] == "authentication_failed"
    assert body["failure_message"]
    assert body["next_action_url"] is None
    assert captures() == []
    # The driver may try again with another card.
    assert confirm(client, payment["id"]).get_json()["status"] == "succeeded"


def test_unknown_payment_method_is_422_and_the_payment_stays_usable(client):
    violation = fresh_violation()
    payment = create_ok(client, [violation.id])

    response = confirm(client, payment["id"], "pm_bogus")

    assert response.status_code == 422
    assert response.get_json()["code"] == "invalid_payment_method"
    assert payment_row(payment["id"]).status == "created"
    assert captures() == []
    assert confirm(client, payment["id"]).get_json()["status"] == "succeeded"


@pytest.mark.parametrize("body", [{}, {"payment_method": ""}, {"payment_method": "4242 4242 4242 4242"},
                                  {"payment_method": 42}, {"payment_method": "pm_card_visa", "amount": 1}])
def test_malformed_confirm_body_is_422(client, body):
    violation = fresh_violation()
    payment = create_ok(client, [violation.id])

    response = client.post(f"/api/v1/payments/{payment['id']}/confirm", json=body)

    assert response.status_code == 422
    assert payment_row(payment["id"]).status == "created"


@pytest.mark.parametrize("payment_id", ["pay_000000000000000000000000", "nope", "x" * 200])
def test_confirm_unknown_payment_is_404(client, payment_id):
    response = confirm(client, payment_id)

    assert response.status_code == 404
    assert response.get_json()["code"] == "not_found"


@pytest.mark.parametrize("payment_id", ["pay_000000000000000000000000", "x" * 200])
def test_get_unknown_payment_is_404(client, payment_id):
    response = client.get(f"/api/v1/payments/{payment_id}")

    assert response.status_code == 404
    assert response.get_json()["code"] == "not_found"


def test_get_returns_the_payment(client):
    violation = fresh_violation()
    payment = create_ok(client, [violation.id])

    response = client.get(f"/api/v1/payments/{payment['id']}")

    assert response.status_code == 200
    assert response.get_json()["id"] == payment["id"]
    assert response.get_json()["status"] == "created"
    assert response.headers["Cache-Control"] == "no-store"


# --- one open payment per violation -------------------------------------------


def test_a_new_payment_cancels_an_unconfirmed_older_one(client):
    violation = overdue_violation()
    older = create_ok(client, [violation.id])
    older_intent = payment_row(older["id"]).gateway_intent_id

    newer = create(client, [violation.id])

    assert newer.status_code == 201, newer.get_json()
    assert newer.get_json()["id"] != older["id"]
    assert client.get(f"/api/v1/payments/{older['id']}").get_json()["status"] == "canceled"
    assert sandbox_intents(id=older_intent)[0].status == "canceled"
    # The older tab cannot pay any more; the newer one can.
    closed = confirm(client, older["id"])
    assert closed.status_code == 409
    assert closed.get_json()["code"] == "payment_closed"
    assert confirm(client, newer.get_json()["id"]).get_json()["status"] == "succeeded"
    assert len(captures()) == 1


def test_a_new_payment_cancels_a_declined_older_one(client):
    violation = fresh_violation()
    older = create_ok(client, [violation.id])
    assert confirm(client, older["id"], "pm_card_chargeDeclined").get_json()["status"] == "failed"

    newer = create(client, [violation.id])

    assert newer.status_code == 201
    assert payment_row(older["id"]).status == "canceled"


def test_a_new_payment_while_the_older_is_processing_is_409(client):
    violation = fresh_violation()
    other = fresh_violation()
    older = create_ok(client, [violation.id])
    set_payment(older["id"], status=states.PROCESSING)

    response = create(client, [other.id, violation.id])

    assert response.status_code == 409
    body = response.get_json()
    assert body["code"] == "payment_in_progress"
    assert body["errors"]["payment_id"] == older["id"]
    assert payment_row(older["id"]).status == states.PROCESSING
    # Nothing of the refused request is left behind: the other violation is free.
    assert create(client, [other.id]).status_code == 201


def test_one_open_payment_per_violation_in_the_database(client):
    violation = fresh_violation()
    for _ in range(3):
        create_ok(client, [violation.id])

    held = db.session.execute(
        select(func.count()).select_from(PaymentItem).where(PaymentItem.violation_id == violation.id,
                                                           PaymentItem.holds.is_(True))
    ).scalar_one()
    assert held == 1


def test_expired_quote_cannot_be_paid(client):
    violation = overdue_violation()
    payment = create_ok(client, [violation.id])
    set_payment(payment["id"], expires_at=utcnow() - timedelta(minutes=1))

    response = confirm(client, payment["id"])

    assert response.status_code == 409
    assert response.get_json()["code"] == "quote_expired"
    stored = payment_row(payment["id"])
    assert stored.status == "expired"
    assert all(item.holds is None for item in stored.items)
    assert sandbox_intents(id=stored.gateway_intent_id)[0].status == "canceled"
    assert captures() == []
    assert lookup(client)[violation.id]["status"] == "unpaid"
    # The violation is free again: a new quote can be paid.
    fresh = create_ok(client, [violation.id])
    assert confirm(client, fresh["id"]).get_json()["status"] == "succeeded"
    # Asking again for the expired one stays a clean 409.
    assert confirm(client, payment["id"]).status_code == 409


# --- receipts -----------------------------------------------------------------


def test_receipt_by_number(client):
    late = overdue_violation(fine=20000)
    on_time = fresh_violation(fine=5000)
    payment = create_ok(client, [late.id, on_time.id])
    number = confirm(client, payment["id"]).get_json()["receipt_number"]

    response = client.get(f"/api/v1/receipts/{number}")

    assert response.status_code == 200
    receipt = response.get_json()
    assert receipt["receipt_number"] == number
    assert receipt["plate"] == PLATE
    assert receipt["channel"] == "web"
    assert receipt["amount"] == payment["amount"]
    assert receipt["currency"] == "CNY"
    assert receipt["paid_at"]
    assert receipt["payment_id"] == payment["id"]
    items = {item["violation_id"]: item for item in receipt["items"]}
    assert set(items) == {late.id, on_time.id}
    assert items[late.id]["notice_number"] == late.notice_number
    assert items[late.id]["late_fee"] == 3000
    assert all(item["settled"] for item in receipt["items"])
    assert receipt["refunded_amount"] == 0
    assert response.headers["Cache-Control"] == "no-store"
    # Case does not matter when a driver types it in.
    assert client.get(f"/api/v1/receipts/{number.lower()}").status_code == 200


@pytest.mark.parametrize("number", ["FP-0000-0000-0000-0000", "nope", "X" * 100])
def test_unknown_receipt_is_404(client, number):
    response = client.get(f"/api/v1/receipts/{number}")

    assert response.status_code == 404
    assert response.get_json()["code"] == "not_found"


def test_an_unpaid_payment_has_no_receipt(client):
    violation = fresh_violation()
    create_ok(client, [violation.id])

    assert client.get("/api/v1/receipts/None").status_code == 404


# --- audit and contract ---------------------------------------------------------


def test_every_transition_is_audited(client):
    violation = overdue_violation()
    payment = create_ok(client, [violation.id])
    confirm(client, payment["id"], "pm_card_chargeDeclined")
    confirm(client, payment["id"], "pm_card_threeDSecure2Required")
    gateway_named("sandbox").authenticate(payment_row(payment["id"]).gateway_intent_id, approve=True)
    assert client.get(f"/api/v1/payments/{payment['id']}").get_json()["status"] == "succeeded"

    entries = audit_entries(payment["id"])
    actions = [e.action for e in entries]
    assert actions[0] == "payment.created"
    assert "payment.intent_created" in actions
    transitions = [e for e in entries if e.action.removeprefix("payment.") in states.STATUSES]
    assert [e.action for e in transitions] == [
        "payment.created",
        "payment.processing", "payment.failed",
        "payment.processing", "payment.requires_action",
        "payment.succeeded",
    ]
    # Each entry names the state it left, and the chain has no gap.
    for before, after in zip(transitions, transitions[1:], strict=False):
        assert after.details["previous"] == before.action.removeprefix("payment.")
        assert states.can_transition(after.details["previous"], after.action.removeprefix("payment."))
    assert transitions[2].details["failure_code"] == "card_declined"
    assert transitions[-1].details["receipt"] == payment_row(payment["id"]).receipt_number
    assert entries[0].details["amount"] == payment["amount"]
    assert all(e.subject_type == "payment" for e in entries)


def test_cancel_and_expiry_are_audited(client):
    violation = fresh_violation()
    older = create_ok(client, [violation.id])
    newer = create_ok(client, [violation.id])
    set_payment(newer["id"], expires_at=utcnow() - timedelta(seconds=1))
    confirm(client, newer["id"])

    assert audit_entries(older["id"])[-1].action == "payment.canceled"
    assert audit_entries(older["id"])[-1].details["previous"] == "created"
    assert audit_entries(newer["id"])[-1].action == "payment.expired"


def test_openapi_lists_the_payment_paths(client):
    response = client.get("/api/openapi.json")

    assert response.status_code == 200
    paths = response.get_json()["paths"]
    assert "post" in paths["/api/v1/payments"]
    assert "get" in paths["/api/v1/payments/{payment_id}"]
    assert "post" in paths["/api/v1/payments/{payment_id}/confirm"]
    assert "get" in paths["/api/v1/receipts/{receipt_number}"]
    create_op = paths["/api/v1/payments"]["post"]
    assert any(p["in"] == "header" and p["name"] == "Idempotency-Key" for p in create_op.get("parameters", []))
    assert {"201", "409", "422"} <= set(create_op["responses"])
