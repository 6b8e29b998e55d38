"""Card-present payments on the sandbox's simulated reader, and the kiosk reset that cancels them."""
from datetime import timedelta

import pytest
from sqlalchemy import select, update

from finepay.dbtypes import utcnow
from finepay.errors import ApiError
from finepay.extensions import db
from kiosk.models import KioskVisit
from payments import reader as card_present
from payments import states
from payments.gateways import GatewayError, gateway_named
from payments.gateways.sandbox import SandboxIntent, SandboxReaderAction
from payments.models import Payment
from payments.services import sync_payments
from tests.kiosk.helpers import PLATE, VIN, enrol, pay, prove, simulate, start_visit, vehicle
from violations.models import Violation


@pytest.fixture
def kiosk(client):
    """An enrolled kiosk."""
    return enrol(client)


@pytest.fixture
def at_reader(kiosk, client):
    """A visit whose payment waits on the reader: (headers, violation ids)."""
    ids = vehicle()
    headers = start_visit(client)
    prove(client, headers)
    assert pay(client, headers, ids).status_code == 201
    return headers, ids


def the_payment():
    db.session.expire_all()
    return db.session.execute(select(Payment)).scalar_one()


def the_action():
    db.session.expire_all()
    return db.session.execute(select(SandboxReaderAction).order_by(SandboxReaderAction.id.desc())).scalars().first()


def the_intent():
    return db.session.get(SandboxIntent, the_payment().gateway_intent_id)


def test_the_sandbox_gateway_can_take_card_present_payments(app):
    assert gateway_named("sandbox").supports_card_present


def test_while_the_reader_waits_the_payment_is_processing(at_reader, client):
    headers, _ids = at_reader

    poll = client.get("/kiosk/api/payment", headers=headers).get_json()

    assert poll["screen"] == "reader" and poll["state"] == "processing"
    assert the_payment().status == states.PROCESSING
    assert the_action().status == "waiting" and the_intent().status == "processing"
    assert "Sandbox card reader simulation" in poll["html"]


def test_approve_pays_the_violations_once(at_reader, client):
    headers, ids = at_reader

    result = simulate(client, headers, "approve").get_json()

    payment = the_payment()
    assert result["state"] == "succeeded" and payment.status == states.SUCCEEDED
    assert payment.amount_received == payment.amount and payment.receipt_number
    assert {db.session.get(Violation, i).status for i in ids} == {"paid"}
    assert the_action().status == "succeeded"


@pytest.mark.parametrize(("outcome", "code", "words"), [
    ("decline", "card_declined", "Your card was declined"),
    ("card_removed", "card_removed", "The card was removed"),
    ("timeout", "reader_timeout", "No card was presented in time"),
])
def test_a_failed_attempt_charges_nothing_and_can_be_retried(at_reader, client, outcome, code, words):
    headers, ids = at_reader

    result = simulate(client, headers, outcome).get_json()

    payment = the_payment()
    assert result["screen"] == "result" and result["state"] == "failed" and words in result["html"]
    assert payment.status == states.FAILED and payment.failure_code == code and payment.amount_received == 0
    assert the_intent().amount_received == 0
    retry = client.post("/kiosk/api/payment/retry", json={}, headers=headers).get_json()
    assert retry["screen"] == "reader"
    assert simulate(client, headers, "approve").get_json()["state"] == "succeeded"
    assert the_payment().confirm_attempts == 2
    assert {db.session.get(Violation, i).status for i in ids} == {"paid"}


def test_a_reader_left_waiting_times_out_by_itself(at_reader, client):
    headers, _ids = at_reader
    db.session.execute(update(SandboxReaderAction).values(started_at=utcnow() - timedelta(minutes=3)))
    db.session.commit()

    poll = client.get("/kiosk/api/payment", headers=headers).get_json()

    assert poll["state"] == "failed" and the_payment().failure_code == "reader_timeout"


def test_sync_settles_an_abandoned_reader_payment(at_reader):
    db.session.execute(update(SandboxReaderAction).values(started_at=utcnow() - timedelta(minutes=3)))
    db.session.commit()

    sync_payments()

    assert the_payment().status == states.FAILED  # no longer "processing": the violations can be paid again


def test_while_the_reader_waits_no_other_payment_can_take_the_violations(at_reader, client, app):
    _headers, ids = at_reader

    web = app.test_client().post("/api/v1/payments", headers={"Idempotency-Key": "web-attempt-1"},
                                 json={"plate": PLATE, "vin_last6": VIN, "violation_ids": ids})

    assert web.status_code == 409 and web.get_json()["code"] == "payment_in_progress"


def test_a_reset_during_a_reader_payment_cancels_it_at_the_gateway_first(at_reader, client, app):
    headers, ids = at_reader

    response = client.post("/kiosk/api/session/end", json={"reason": "idle"}, headers=headers)

    assert response.status_code == 200
    assert the_action().status == "canceled"
    assert the_intent().status == "canceled"
    assert the_payment().status == states.CANCELED
    visit = db.session.execute(select(KioskVisit)).scalar_one()
    assert visit.ended_at and visit.plate is None and visit.vin_last6 is None
    # The violations are free again, and the cancelled reader cannot take money any more.
    assert simulate(client, headers, "approve").status_code == 409
    web = app.test_client().post("/api/v1/payments", headers={"Idempotency-Key": "web-after-reset"},
                                 json={"plate": PLATE, "vin_last6": VIN, "violation_ids": ids})
    assert web.status_code == 201


def test_a_card_approved_just_before_the_reset_is_settled_not_lost(at_reader, client, kiosk):
    headers, ids = at_reader
    gateway_named("sandbox").simulate_reader(card_present_terminal(kiosk), "approve")  # the page never polled

    client.post("/kiosk/api/session/end", json={"reason": "idle"}, headers=headers)

    assert the_payment().status == states.SUCCEEDED
    assert {db.session.get(Violation, i).status for i in ids} == {"paid"}


def card_present_terminal(kiosk):
    return kiosk.terminal.card_terminal()


def test_cancel_on_the_reader_screen_goes_back_to_the_list_and_frees_the_violations(at_reader, client):
    headers, ids = at_reader

    answer = client.post("/kiosk/api/payment/cancel", json={}, headers=headers).get_json()

    assert answer["screen"] == "violations" and "Nothing was charged" in answer["html"]
    assert the_payment().status == states.CANCELED and the_action().status == "canceled"
    again = pay(client, headers, ids)
    assert again.status_code == 201 and again.get_json()["screen"] == "reader"


def test_a_new_visit_on_the_same_kiosk_cancels_the_one_left_at_the_reader(at_reader, client):
    start_visit(client)

    assert the_payment().status == states.CANCELED and the_action().status == "canceled"


def test_the_simulation_controls_need_a_waiting_reader(kiosk, client):
    vehicle()
    headers = start_visit(client)
    prove(client, headers)

    response = simulate(client, headers, "approve")

    assert response.status_code == 409


def test_a_reader_that_does_not_answer_is_a_503_and_leaves_the_payment_as_it_was(kiosk, client, monkeypatch):
    ids = vehicle()
    headers = start_visit(client)
    prove(client, headers)

    def offline(*args, **kwargs):
        raise GatewayError("reader offline", code="reader_unavailable", retryable=True, status=503)

    monkeypatch.setattr(gateway_named("sandbox"), "start_reader_payment", offline)
    response = pay(client, headers, ids)

    assert response.status_code == 503 and response.get_json()["code"] == "reader_unavailable"
    assert the_payment().status == states.CREATED
    monkeypatch.undo()
    assert client.post("/kiosk/api/payment/retry", json={}, headers=headers).get_json()["screen"] == "reader"


def test_a_reader_start_whose_outcome_is_unknown_stays_processing(kiosk, client, monkeypatch):
    ids = vehicle()
    headers = start_visit(client)
    prove(client, headers)

    def lost(*args, **kwargs):
        raise GatewayError("timeout", code="timeout", outcome_unknown=True, retryable=True, status=504)

    monkeypatch.setattr(gateway_named("sandbox"), "start_reader_payment", lost)
    response = pay(client, headers, ids)

    assert response.status_code == 503 and response.get_json()["code"] == "gateway_timeout"
    assert "Do not pay again" in response.get_json()["message"]
    assert the_payment().status == states.PROCESSING  # sync finds out


def test_the_reader_service_refuses_a_closed_payment(at_reader, client, kiosk):
    headers, _ids = at_reader
    client.post("/kiosk/api/payment/cancel", json={}, headers=headers)

    with pytest.raises(ApiError) as raised:
        card_present.collect_on_reader(the_payment().id, card_present_terminal(kiosk))

    assert raised.value.code == "payment_closed"


def test_trying_again_after_the_quote_expired_says_so(at_reader, client):
    headers, _ids = at_reader
    simulate(client, headers, "decline")
    payment = the_payment()
    payment.expires_at = utcnow() - timedelta(seconds=1)
    db.session.commit()

    answer = client.post("/kiosk/api/payment/retry", json={}, headers=headers)

    assert answer.status_code == 200
    assert answer.get_json()["screen"] == "result" and "This price has expired" in answer.get_json()["html"]
    assert the_payment().status == states.EXPIRED
