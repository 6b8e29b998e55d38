"""Scan to pay at a kiosk: the QR code of the order at the chosen gateway, the wait, and closing it on the way out."""
import re
from datetime import timedelta

import pytest
from flask_babel import gettext
from flask_babel import lazy_gettext as _l
from markupsafe import escape
from sqlalchemy import select

from finepay.dbtypes import utcnow
from finepay.extensions import db
from finepay.formatting import format_money
from kiosk.models import KioskVisit
from payments.gateways import CANCELED, SUCCEEDED, GatewayError, NextAction, gateway_named
from payments.models import Payment
from payments.services import refresh_payment
from tests.conftest import both_languages, in_app_language, translated
from tests.kiosk import scan_gateway
from tests.kiosk.helpers import enrol, pay, prove, review, start_visit, vehicle


@pytest.fixture(autouse=True)
def installed(tmp_path, monkeypatch):
    """The test rail, installed as a distribution with an entry point."""
    return scan_gateway.install(tmp_path, monkeypatch)


@pytest.fixture
def app_config(installed):
    """A kiosk with the card sandbox's reader and, beside it, the test rail paid by scanning a QR code with a phone."""
    return installed


@pytest.fixture
def kiosk(client):
    """An enrolled kiosk."""
    return enrol(client)


@pytest.fixture
def rail():
    """The scan rail, as the kiosk's payments reach it."""
    return gateway_named(scan_gateway.NAME)


@pytest.fixture
def scanning(kiosk, client):
    """A driver at the code to scan: (visit headers, the scan screen's JSON, the payment)."""
    ids = vehicle()
    headers = start_visit(client)
    assert prove(client, headers).status_code == 200
    response = pay_by_scan(client, headers, ids)
    assert response.status_code == 201, response.get_json()
    return headers, response.get_json(), db.session.execute(select(Payment)).scalar_one()


def pay_by_scan(client, headers, ids, gateway=scan_gateway.NAME):
    """Review, then "scan to pay" with ``gateway``."""
    key = review(client, headers, ids)
    return client.post("/kiosk/api/payments", json={"violation_ids": ids, "idempotency_key": key, "gateway": gateway},
                       headers=headers)


def the_visit():
    return db.session.execute(select(KioskVisit)).scalar_one()


def money(app, amount):
    """An amount as the kiosk's screens show it."""
    with in_app_language(app):
        return format_money(amount)


def fresh(payment):
    db.session.expire_all()
    return db.session.get(Payment, payment.id)


def test_the_review_screen_offers_scan_to_pay_with_each_gateway_that_serves_a_kiosk(app, kiosk, client):
    ids = vehicle()
    headers = start_visit(client)
    prove(client, headers)

    body = client.post("/kiosk/api/review", json={"violation_ids": ids}, headers=headers).get_json()

    total = re.search(r'id="review-total">([^<]+)<', body["html"]).group(1)
    assert f'data-gateway="{scan_gateway.NAME}"' in body["html"]
    assert f"Pay {total} with Scan pay (test)" in body["html"]


def test_the_scan_screen_shows_the_code_the_amount_and_the_way_of_paying(app, scanning, rail):
    _headers, body, payment = scanning

    assert body["screen"] == "scan" and body["state"] == "created"
    assert "<svg" in body["html"]
    assert f"Scan with Scan pay (test) to pay {money(app, payment.amount)}" in body["html"]
    assert (payment.channel, payment.gateway) == ("kiosk", scan_gateway.NAME)
    assert rail.retrieve_intent(payment.gateway_intent_id).status == "requires_payment_method"


def test_the_kiosk_waits_for_the_phone_then_shows_the_result_and_the_receipt(scanning, client, rail):
    headers, _body, payment = scanning

    waiting = client.get("/kiosk/api/payment", headers=headers).get_json()
    rail.pay(payment.gateway_intent_id)
    paid = client.get("/kiosk/api/payment", headers=headers).get_json()
    receipt = client.get("/kiosk/api/receipt", headers=headers).get_json()

    assert (waiting["screen"], waiting["state"]) == ("scan", "created")
    assert (paid["screen"], paid["state"]) == ("result", "succeeded")
    assert fresh(payment).receipt_number in receipt["html"]


def test_cancel_closes_the_order_at_its_gateway_and_frees_the_violations(scanning, client, rail):
    headers, _body, payment = scanning

    body = client.post("/kiosk/api/payment/cancel", json={}, headers=headers).get_json()

    assert body["screen"] == "violations" and "The payment was cancelled. Nothing was charged." in body["html"]
    assert fresh(payment).status == "canceled"
    assert rail.retrieve_intent(payment.gateway_intent_id).status == CANCELED
    assert the_visit().payment_id is None


def test_an_idle_reset_mid_scan_closes_the_order_at_its_gateway_before_the_visit_ends(scanning, client, rail):
    headers, _body, payment = scanning

    body = client.post("/kiosk/api/session/end", json={"reason": "idle"}, headers=headers).get_json()

    assert body == {"status": "ended"}
    assert fresh(payment).status == "canceled"
    assert rail.retrieve_intent(payment.gateway_intent_id).status == CANCELED
    visit = the_visit()
    assert visit.ended_at is not None and visit.plate is None
    with pytest.raises(GatewayError, match="canceled"):  # too late for the phone: the order is closed
        rail.pay(payment.gateway_intent_id)


@pytest.mark.parametrize("reason", ["idle", "start_over"])
def test_a_reset_whose_close_finds_the_order_paid_shows_the_receipt_instead(scanning, client, rail, reason):
    headers, _body, payment = scanning
    rail.pay(payment.gateway_intent_id)  # the phone paid; FinePay has not heard yet

    body = client.post("/kiosk/api/session/end", json={"reason": reason}, headers=headers).get_json()

    payment = fresh(payment)
    assert payment.status == "succeeded" and rail.retrieve_intent(payment.gateway_intent_id).status == SUCCEEDED
    assert body["screen"] == "receipt" and payment.receipt_number in body["html"]
    assert the_visit().ended_at is None  # the driver still has the receipt to take
    finished = client.post("/kiosk/api/session/end", json={"reason": "finished"}, headers=headers).get_json()
    assert finished == {"status": "ended"} and the_visit().ended_at is not None


def test_a_kiosk_that_goes_silent_mid_scan_has_the_order_closed_by_the_server(scanning, client, rail):
    _headers, _body, payment = scanning
    the_visit().last_activity_at = utcnow() - timedelta(minutes=10)
    db.session.commit()

    client.post("/kiosk/api/heartbeat", json={})  # any kiosk's heartbeat sweeps the silent visits

    assert fresh(payment).status == "canceled"
    assert rail.retrieve_intent(payment.gateway_intent_id).status == CANCELED
    assert the_visit().ended_at is not None


@pytest.mark.parametrize(("paying", "answer"), [(True, "receipt"), (False, None)])
def test_a_reset_after_a_notification_settled_the_order_shows_the_receipt_only_if_the_driver_was_waiting(
        scanning, client, rail, paying, answer):
    headers, _body, payment = scanning
    rail.pay(payment.gateway_intent_id)
    refresh_payment(payment.id)  # the rail's notification settles it before the page asks

    body = client.post("/kiosk/api/session/end", json={"reason": "idle", "paying": paying},
                       headers=headers).get_json()

    assert fresh(payment).status == "succeeded"
    assert body.get("screen") == answer  # the result screen already showed it: then the reset goes ahead
    assert (the_visit().ended_at is None) is paying


def test_a_code_whose_quote_ran_out_is_closed_at_its_gateway_and_the_kiosk_says_so(app, scanning, client, rail):
    headers, _body, payment = scanning
    fresh(payment).expires_at = utcnow() - timedelta(seconds=1)
    db.session.commit()

    body = client.get("/kiosk/api/payment", headers=headers).get_json()

    assert (body["screen"], body["state"]) == ("result", "expired")
    assert translated(app, "This price has expired") in body["html"]
    assert rail.retrieve_intent(payment.gateway_intent_id).status == CANCELED


def test_a_phone_payment_that_fails_says_so_and_leads_back_to_the_violations(scanning, client, rail):
    headers, _body, payment = scanning
    rail.confirm_intent(payment.gateway_intent_id, payment_method="pm_card_chargeDeclinedInsufficientFunds",
                        idempotency_key="phone-1")

    failed = client.get("/kiosk/api/payment", headers=headers).get_json()
    retry = client.post("/kiosk/api/payment/retry", json={}, headers=headers)
    back = client.post("/kiosk/api/payment/cancel", json={}, headers=headers).get_json()

    assert (failed["screen"], failed["state"]) == ("result", "failed")
    assert escape("There was not enough money on the phone's account for this amount.") in failed["html"]
    assert 'data-action="retry-payment"' not in failed["html"]
    assert retry.status_code == 409 and retry.get_json()["code"] == "out_of_order"
    assert back["screen"] == "violations" and fresh(payment).status == "canceled"


def test_a_rail_that_asks_for_anything_but_a_scan_gets_its_order_closed_again(kiosk, client, rail, monkeypatch):
    monkeypatch.setattr(rail, "next_action", lambda payment, payer: NextAction.redirect("https://pay.example/x"))
    ids = vehicle()
    headers = start_visit(client)
    prove(client, headers)

    response = pay_by_scan(client, headers, ids)

    payment = db.session.execute(select(Payment)).scalar_one()
    assert response.status_code == 503 and response.get_json()["code"] == "scan_unavailable"
    assert payment.status == "canceled" and rail.retrieve_intent(payment.gateway_intent_id).status == CANCELED
    assert the_visit().payment_id is None


def test_a_rail_that_cannot_place_the_order_leaves_it_open_to_try_again(kiosk, client, rail, monkeypatch):
    def down(payment, payer):
        raise GatewayError("connection refused", code="gateway_unavailable", retryable=True, status=503)

    ids = vehicle()
    headers = start_visit(client)
    prove(client, headers)
    key = review(client, headers, ids)
    with monkeypatch.context() as patched:
        patched.setattr(rail, "next_action", down)
        failed = client.post("/kiosk/api/payments", json={"violation_ids": ids, "idempotency_key": key,
                                                          "gateway": scan_gateway.NAME}, headers=headers)
    again = client.post("/kiosk/api/payments", json={"violation_ids": ids, "idempotency_key": key,
                                                     "gateway": scan_gateway.NAME}, headers=headers)

    assert failed.status_code == 503 and failed.get_json()["code"] == "gateway_unavailable"
    assert again.status_code == 201 and again.get_json()["screen"] == "scan"  # the kiosk's retry: the same payment
    assert len(db.session.execute(select(Payment)).scalars().all()) == 1


def test_a_gateway_not_offered_at_the_kiosk_is_refused(kiosk, client):
    ids = vehicle()
    headers = start_visit(client)
    prove(client, headers)

    response = pay_by_scan(client, headers, ids, gateway="sandbox")

    assert response.status_code == 422 and response.get_json()["code"] == "invalid_input"
    assert response.get_json()["errors"] == {"gateway": ["This way of paying is not available here."]}
    assert db.session.execute(select(Payment)).first() is None


def test_the_card_reader_and_scan_to_pay_are_offered_side_by_side(kiosk, client):
    ids = vehicle()
    headers = start_visit(client)
    prove(client, headers)

    html = client.post("/kiosk/api/review", json={"violation_ids": ids}, headers=headers).get_json()["html"]
    card = pay(client, headers, ids)

    assert html.count('data-action="pay"') == 2 and html.count("data-gateway=") == 1
    assert card.status_code == 201 and card.get_json()["screen"] == "reader"
    assert db.session.execute(select(Payment)).scalar_one().gateway == "sandbox"


@pytest.mark.parametrize("app_config", [{"PAYMENT_GATEWAYS": scan_gateway.NAME}])
def test_without_a_card_reader_only_scan_to_pay_is_offered(kiosk, client):
    ids = vehicle()
    welcome = client.get("/kiosk").get_data(as_text=True)
    headers = start_visit(client)
    prove(client, headers)

    html = client.post("/kiosk/api/review", json={"violation_ids": ids}, headers=headers).get_json()["html"]
    card = pay(client, headers, ids)

    assert "You can pay by scanning a code with Scan pay (test) on your phone." in welcome
    assert html.count('data-action="pay"') == 1 and f'data-gateway="{scan_gateway.NAME}" data-submit' in html
    assert card.status_code == 503 and card.get_json()["code"] == "card_present_unavailable"


@both_languages(PAYMENT_GATEWAYS=f"sandbox,{scan_gateway.NAME}")
def test_scan_to_pay_speaks_the_kiosks_language(app, kiosk, client):
    ids = vehicle()
    welcome = client.get("/kiosk").get_data(as_text=True)  # loading the kiosk ends any visit: before this one
    headers = start_visit(client)
    prove(client, headers)

    review_screen = client.post("/kiosk/api/review", json={"violation_ids": ids}, headers=headers).get_json()
    body = pay_by_scan(client, headers, ids).get_json()

    assert translated(app, "A bank card, or a phone with %(methods)s", methods="Scan pay (test)") in welcome
    assert translated(app, "Scan to pay with your phone") in review_screen["html"]
    assert translated(app, "Waiting for your payment on the phone…") in body["html"]
    assert translated(app, "Point the phone's camera at the code on this screen.") in body["html"]
    assert translated(app, "Cancel and pay another way") in body["html"]


@both_languages(PAYMENT_GATEWAYS=f"sandbox,{scan_gateway.NAME}")
def test_the_scan_to_pay_screen_is_counted_as_the_last_step(app, kiosk, client):
    ids = vehicle()
    headers = start_visit(client)
    prove(client, headers)
    review_screen = client.post("/kiosk/api/review", json={"violation_ids": ids}, headers=headers).get_json()

    body = pay_by_scan(client, headers, ids).get_json()

    assert translated(app, "Step %(step)d of %(steps)d", step=4, steps=5) in review_screen["html"]
    assert translated(app, "Step %(step)d of %(steps)d", step=5, steps=5) in body["html"]


@both_languages(PAYMENT_GATEWAYS=f"sandbox,{scan_gateway.NAME}")
def test_the_scan_steps_name_the_app_to_open_not_the_way_of_paying(app, kiosk, client, monkeypatch):
    """A rail whose codes are scanned in another app (微信支付 in 微信) says to open that app."""
    monkeypatch.setattr(scan_gateway.ScanGateway, "app_label", _l("WeChat"))
    ids = vehicle()
    headers = start_visit(client)
    prove(client, headers)

    html = pay_by_scan(client, headers, ids).get_json()["html"]

    with in_app_language(app):
        step = gettext("Open %(app)s on your phone and choose Scan.", app=gettext("WeChat"))
        wrong = gettext("Open %(app)s on your phone and choose Scan.", app=gettext("Scan pay (test)"))
    assert str(escape(step)) in html
    assert str(escape(wrong)) not in html
