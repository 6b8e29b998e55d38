"""The kiosk's JSON endpoints: the flow, its tagging, its order, and everything malformed."""
import re
from datetime import timedelta

import pytest
from sqlalchemy import select

from finepay.app import create_app
from finepay.dbtypes import utcnow
from finepay.extensions import db
from kiosk.models import KioskVisit
from payments.gateways import gateway_named
from payments.models import Payment
from tests.conftest import in_both_languages, translated
from tests.kiosk.helpers import PLATE, SESSION, VIN, enrol, pay, prove, review, simulate, start_visit, vehicle
from violations.models import Violation


@pytest.fixture
def kiosk(client):
    """An enrolled kiosk."""
    return enrol(client)


def test_a_kiosk_payment_is_tagged_with_the_channel_and_the_terminal(kiosk, client):
    ids = vehicle()
    headers = start_visit(client)
    assert prove(client, headers).status_code == 200

    reader = pay(client, headers, ids)
    result = simulate(client, headers, "approve")

    assert reader.status_code == 201 and reader.get_json()["screen"] == "reader"
    assert result.get_json()["screen"] == "result" and result.get_json()["state"] == "succeeded"
    payment = db.session.execute(select(Payment)).scalar_one()
    assert (payment.channel, payment.terminal_id, payment.status) == ("kiosk", kiosk.terminal_id, "succeeded")
    receipt = client.get("/kiosk/api/receipt", headers=headers).get_json()
    assert payment.receipt_number in receipt["html"] and "<svg" in receipt["html"]
    api = client.get(f"/api/v1/receipts/{payment.receipt_number}").get_json()
    assert api["channel"] == "kiosk"


@in_both_languages
def test_a_driver_pays_at_a_kiosk_in_the_kiosks_language(app, kiosk, client):
    ids = vehicle()
    headers = start_visit(client)

    plate = client.get("/kiosk/api/screens/plate", headers=headers).get_json()
    vin = client.post("/kiosk/api/plate", json={"plate": PLATE}, headers=headers).get_json()
    listing = client.post("/kiosk/api/lookup", json={"vin_last6": VIN}, headers=headers).get_json()
    review_screen = client.post("/kiosk/api/review", json={"violation_ids": ids}, headers=headers).get_json()
    reader = pay(client, headers, ids).get_json()
    result = simulate(client, headers, "approve").get_json()
    receipt = client.get("/kiosk/api/receipt", headers=headers).get_json()

    assert translated(app, "Enter your plate number") in plate["html"]
    assert translated(app, "Enter the last 6 characters of the VIN") in vin["html"]
    assert translated(app, "Step %(step)d of %(steps)d", step=3, steps=5) in listing["html"]
    assert translated(app, "Check and pay") in review_screen["html"]
    assert translated(app, "Waiting for your card…") in reader["html"]
    assert result["state"] == "succeeded" and translated(app, "Payment approved") in result["html"]
    assert translated(app, "Your receipt is printing") in receipt["html"]


@in_both_languages
def test_the_step_counter_counts_every_step_from_the_plate_to_paying(app, kiosk, client):
    ids = vehicle()
    headers = start_visit(client)

    screens = [
        client.get("/kiosk/api/screens/plate", headers=headers),
        client.post("/kiosk/api/plate", json={"plate": PLATE}, headers=headers),
        client.post("/kiosk/api/lookup", json={"vin_last6": VIN}, headers=headers),
        client.post("/kiosk/api/review", json={"violation_ids": ids}, headers=headers),
        pay(client, headers, ids),
    ]
    result = simulate(client, headers, "approve").get_json()

    counters = [re.search(r'<p class="kstep">([^<]*)</p>', screen.get_json()["html"]).group(1) for screen in screens]
    assert counters == [translated(app, "Step %(step)d of %(steps)d", step=n, steps=5) for n in range(1, 6)]
    assert [screen.get_json()["screen"] for screen in screens] == ["plate", "vin", "violations", "review", "reader"]
    assert 'class="kstep"' not in result["html"]  # the outcome comes after the steps


@in_both_languages
def test_a_declined_card_at_a_kiosk_is_explained_in_the_kiosks_language(app, kiosk, client):
    ids = vehicle()
    headers = start_visit(client)
    assert prove(client, headers).status_code == 200
    pay(client, headers, ids)

    result = simulate(client, headers, "decline").get_json()

    message = "Your card was declined. You can try again with another card, or ask your bank why."
    assert translated(app, message) in result["html"]


def test_the_screens_follow_the_flow(kiosk, client):
    ids = vehicle()
    headers = start_visit(client)

    vin = client.post("/kiosk/api/plate", json={"plate": "蒙b·12345"}, headers=headers).get_json()
    listing = client.post("/kiosk/api/lookup", json={"vin_last6": "a12345"}, headers=headers).get_json()
    back = client.get("/kiosk/api/screens/plate", headers=headers).get_json()

    assert vin["screen"] == "vin" and PLATE in vin["html"]
    assert listing["screen"] == "violations"
    assert sorted(int(i) for i in re.findall(r'data-id="(\d+)"', listing["html"])) == sorted(ids)
    assert back["screen"] == "plate" and f'value="{PLATE}"' in back["html"]
    kept = client.get(f"/kiosk/api/screens/violations?selected={ids[0]}", headers=headers).get_json()["html"]
    assert kept.count('aria-checked="true"') == 1


def test_a_wrong_vin_and_an_unknown_plate_get_the_same_answer(kiosk, client):
    vehicle()
    headers = start_visit(client)

    wrong_vin = prove(client, headers, vin="B99999")
    unknown_plate = prove(client, headers, plate="京A99999")

    assert wrong_vin.status_code == unknown_plate.status_code == 404
    assert wrong_vin.get_data() == unknown_plate.get_data()


def test_a_double_tap_on_pay_is_one_payment_on_the_reader(kiosk, client):
    ids = vehicle()
    headers = start_visit(client)
    prove(client, headers)
    key = review(client, headers, ids)

    first = pay(client, headers, ids, key)
    second = pay(client, headers, ids, key)

    assert first.status_code == second.status_code == 201
    payments = db.session.execute(select(Payment)).scalars().all()
    assert len(payments) == 1 and payments[0].confirm_attempts == 1


def test_the_heartbeat_records_when_the_kiosk_was_last_alive(kiosk, client):
    before = utcnow()

    response = client.post("/kiosk/api/heartbeat", json={})

    assert response.status_code == 200
    db.session.expire_all()
    assert kiosk.terminal.last_heartbeat_at >= before


def test_ending_a_visit_wipes_the_plate_and_vin_from_the_server(kiosk, client):
    vehicle()
    headers = start_visit(client)
    prove(client, headers)

    response = client.post("/kiosk/api/session/end", json={"reason": "start_over"}, headers=headers)

    assert response.status_code == 200
    visit = db.session.execute(select(KioskVisit)).scalar_one()
    assert visit.ended_at is not None and visit.plate is None and visit.vin_last6 is None
    after = client.post("/kiosk/api/plate", json={"plate": PLATE}, headers=headers)
    assert after.status_code == 409 and after.get_json()["code"] == "session_ended"
    assert client.post("/kiosk/api/session/end", json={"reason": "idle"}, headers=headers).status_code == 200


def test_loading_the_kiosk_page_ends_a_visit_left_open(kiosk, client):
    headers = start_visit(client)
    prove(client, headers)

    client.get("/kiosk")

    assert client.get("/kiosk/api/screens/plate", headers=headers).status_code == 409
    assert db.session.execute(select(KioskVisit.plate)).scalar() is None


def test_a_visit_the_kiosk_abandoned_is_ended_by_the_server(kiosk, client):
    vehicle()
    headers = start_visit(client)
    prove(client, headers)
    visit = db.session.execute(select(KioskVisit)).scalar_one()
    visit.last_activity_at = utcnow() - timedelta(minutes=10)
    db.session.commit()

    response = client.get("/kiosk/api/screens/violations", headers=headers)

    assert response.status_code == 409
    db.session.expire_all()
    assert visit.ended_at is not None and visit.plate is None


def test_another_terminals_visit_is_not_reachable(kiosk, client, app):
    headers = start_visit(client)
    other = enrol(app.test_client(), "hall-2")

    response = other.client.post("/kiosk/api/plate", json={"plate": PLATE}, headers=headers)

    assert response.status_code == 409 and response.get_json()["code"] == "session_ended"


def test_steps_out_of_order_are_refused(kiosk, client):
    ids = vehicle()
    headers = start_visit(client)

    lookup = client.post("/kiosk/api/lookup", json={"vin_last6": VIN}, headers=headers)
    early_review = client.post("/kiosk/api/review", json={"violation_ids": ids}, headers=headers)
    no_payment = client.get("/kiosk/api/payment", headers=headers)
    no_receipt = client.get("/kiosk/api/receipt", headers=headers)

    assert [r.status_code for r in (lookup, early_review, no_payment, no_receipt)] == [409] * 4
    assert {r.get_json()["code"] for r in (lookup, early_review, no_payment, no_receipt)} == {"out_of_order"}


def test_only_this_vehicles_payable_violations_can_be_reviewed(kiosk, client):
    ids = vehicle()
    theirs = vehicle(plate="京A00001", vin="B22222")
    in_person = vehicle(fines=(50000,))[0]
    db.session.get(Violation, in_person).payable_online = False
    db.session.commit()
    headers = start_visit(client)
    prove(client, headers)

    for wrong in (theirs, [in_person], [*ids, 999999]):
        response = client.post("/kiosk/api/review", json={"violation_ids": wrong}, headers=headers)
        assert response.status_code == 422 and response.get_json()["code"] == "not_payable"


MALFORMED = [
    ("/kiosk/api/sessions", {"plate": PLATE}),
    ("/kiosk/api/sessions", []),
    ("/kiosk/api/plate", {}),
    ("/kiosk/api/plate", {"plate": "x" * 500}),
    ("/kiosk/api/plate", {"plate": 12345}),
    ("/kiosk/api/plate", {"plate": "<script>"}),
    ("/kiosk/api/plate", {"plate": PLATE, "vin_last6": VIN}),
    ("/kiosk/api/lookup", {"vin_last6": "IOQIOQ"}),
    ("/kiosk/api/lookup", {"vin_last6": None}),
    ("/kiosk/api/review", {"violation_ids": []}),
    ("/kiosk/api/review", {"violation_ids": ["1"]}),
    ("/kiosk/api/review", {"violation_ids": [1, 1]}),
    ("/kiosk/api/review", {"violation_ids": list(range(1, 60))}),
    ("/kiosk/api/review", {"violation_ids": [2**63]}),
    ("/kiosk/api/payments", {"violation_ids": [1]}),
    ("/kiosk/api/payments", {"violation_ids": [1], "idempotency_key": "not-a-key"}),
    ("/kiosk/api/payments", {"violation_ids": [1], "idempotency_key": "a" * 32, "amount": 1}),
    ("/kiosk/api/payment/retry", {"force": True}),
    ("/kiosk/api/sandbox/reader", {"outcome": "steal"}),
    ("/kiosk/api/session/end", {"reason": "because"}),
    ("/kiosk/api/heartbeat", {"status": "ok"}),
]


@pytest.mark.parametrize(("path", "body"), MALFORMED)
def test_malformed_input_is_a_4xx_json_error(kiosk, client, path, body):
    headers = start_visit(client)
    prove(client, headers)

    response = client.post(path, json=body, headers=headers)

    assert response.status_code == 422, response.get_json()
    assert response.get_json()["code"] == "invalid_input"


@pytest.mark.parametrize(("data", "content_type", "status"), [
    ("plate=蒙B12345", "application/x-www-form-urlencoded", 415),
    ('{"plate": "蒙B12345"}', "text/plain", 415),
    ('{"plate": ', "application/json", 400),
    ("[1, 2]", "application/json", 422),
])
def test_a_body_that_is_not_json_is_refused(kiosk, client, data, content_type, status):
    headers = start_visit(client)

    response = client.post("/kiosk/api/plate", data=data.encode(), content_type=content_type, headers=headers)

    assert response.status_code == status
    assert response.is_json


def test_a_bad_query_and_an_unknown_endpoint_are_json(kiosk, client):
    headers = start_visit(client)
    prove(client, headers)

    assert client.get("/kiosk/api/screens/violations?selected=abc", headers=headers).status_code == 422
    missing = client.get("/kiosk/api/nothing-here", headers=headers)
    assert missing.status_code == 404 and missing.is_json
    wrong_method = client.get("/kiosk/api/plate", headers=headers)
    assert wrong_method.status_code == 405 and wrong_method.is_json


def test_a_missing_or_made_up_visit_is_refused(kiosk, client):
    for headers in ({}, {SESSION: "x" * 43}, {SESSION: "short"}):
        response = client.post("/kiosk/api/plate", json={"plate": PLATE}, headers=headers)
        assert response.status_code == 409 and response.get_json()["code"] == "session_ended"


@pytest.fixture
def no_card_present(app, monkeypatch):
    """A gateway without the card-present capability."""
    monkeypatch.setattr(gateway_named("sandbox"), "supports_card_present", False)


def test_without_a_card_reader_capability_the_kiosk_says_card_payments_are_unavailable(
        kiosk, client, no_card_present):
    ids = vehicle()
    headers = start_visit(client)
    prove(client, headers)

    page = client.get("/kiosk").get_data(as_text=True)
    headers = start_visit(client)
    prove(client, headers)
    screen = client.post("/kiosk/api/review", json={"violation_ids": ids}, headers=headers).get_json()["html"]
    attempt = pay(client, headers, ids, key="a" * 32)

    assert "Card payments are not available at this kiosk" in page
    assert 'id="card-payments-unavailable"' in screen and 'data-action="pay"' not in screen
    assert attempt.status_code == 503 and attempt.get_json()["code"] == "card_present_unavailable"
    assert db.session.execute(select(Payment)).first() is None


def test_kiosk_lookups_are_rate_limited_per_terminal(app, client):
    app.config["LOOKUP_RATE_LIMIT"] = "3/minute"
    enrol(client)
    vehicle()
    headers = start_visit(client)
    client.post("/kiosk/api/plate", json={"plate": PLATE}, headers=headers)

    answers = [client.post("/kiosk/api/lookup", json={"vin_last6": VIN}, headers=headers).status_code
               for _ in range(4)]

    assert answers == [200, 200, 200, 429]


def test_with_the_database_down_the_kiosk_page_is_calm_and_retries():
    app = create_app({"SQLALCHEMY_DATABASE_URI": "postgresql+psycopg://nobody@127.0.0.1:1/none?connect_timeout=1",
                      "DEFAULT_LOCALE": "en"})
    client = app.test_client()
    client.set_cookie("finepay_kiosk", "c" * 43, path="/kiosk")

    page = client.get("/kiosk")
    api = client.post("/kiosk/api/sessions", json={})

    assert page.status_code == 503 and page.mimetype == "text/html"
    assert 'http-equiv="refresh"' in page.get_data(as_text=True)
    assert "Other ways to pay" in page.get_data(as_text=True)
    assert api.status_code == 503 and api.get_json()["code"] == "unavailable"
