"""Several gateways at once: the driver's choice by where they pay, switching ways with one capture at most,
and every later step (refunds, sync, notifications, expiry) at the gateway that took the payment.

Two scripted gateways ("wallet", then "card") are installed through entry points; both keep their
intents in the sandbox's ledger, so each test watches which one FinePay asked (spy).
"""
import re
from datetime import timedelta

import pytest
from sqlalchemy import update

from finepay.audit import AuditEntry
from finepay.dbtypes import utcnow
from finepay.extensions import db
from payments import services
from payments.gateways import (
    GatewayError,
    GatewayEvent,
    GatewayRefund,
    NextAction,
    configured_gateways,
    gateway_for,
    gateway_named,
)
from payments.gateways.sandbox import SandboxIntent
from payments.models import Payment, Refund
from tests.conftest import translated
from tests.payments import scripted_gateway
from tests.payments.helpers import (
    confirm,
    end_session_after_each_request,
    fresh_violation,
    new_key,
    payment_row,
    sandbox_refunds,
    signed_event,
)

WECHAT_BROWSER = "Mozilla/5.0 (iPhone) AppleWebKit/605.1.15 Mobile MicroMessenger/8.0.47"
DESKTOP = "Mozilla/5.0 (Windows NT 10.0; Win64; x64)"


@pytest.fixture
def app_config(tmp_path, monkeypatch):
    """Two gateways: "wallet" first (as WeChat Pay would be), then "card"."""
    return scripted_gateway.install(tmp_path, monkeypatch, names=("wallet", "card"))


@pytest.fixture(autouse=True)
def _labelled(app, monkeypatch):
    """Each gateway with a label of its own; the wallet serves only its own app's browser (as WeChat JSAPI)."""
    end_session_after_each_request(app)
    monkeypatch.setattr(gateway_named("wallet"), "label", "Wallet")
    monkeypatch.setattr(gateway_named("wallet"), "serves", lambda payer: "MicroMessenger" in payer.user_agent)
    monkeypatch.setattr(gateway_named("card"), "label", "Card")


def spy(monkeypatch, gateway, operation, calls):
    """Record (gateway name, operation, first argument or kwargs) in ``calls`` when ``operation`` is called."""
    real = getattr(gateway, operation)

    def recorded(*args, **kwargs):
        calls.append((gateway.name, operation, args[0] if args else kwargs))
        return real(*args, **kwargs)

    monkeypatch.setattr(gateway, operation, recorded)


def spy_all(monkeypatch, operation):
    """Spy ``operation`` on both gateways; returns the list of calls."""
    calls = []
    for gateway in configured_gateways():
        spy(monkeypatch, gateway, operation, calls)
    return calls


def create_from(client, violation, user_agent, **body):
    """POST /api/v1/payments for one violation from a browser with this User-Agent."""
    response = client.post("/api/v1/payments", headers={"Idempotency-Key": new_key(), "User-Agent": user_agent},
                           json={"plate": violation.plate, "vin_last6": violation.vin_last6,
                                 "violation_ids": [violation.id], **body})
    return response


def pay_at_gateway(payment_id):
    """The payer pays the payment's order at its gateway (a phone scanning the code): FinePay has not heard."""
    payment = payment_row(payment_id)
    gateway_for(payment).confirm_intent(payment.gateway_intent_id, payment_method="pm_card_visa",
                                        idempotency_key=f"test:{payment.gateway_intent_id}")


# --- the registry ----------------------------------------------------------------------------------

def test_the_gateways_are_configured_in_order_and_found_by_name(app):
    assert [gateway.name for gateway in configured_gateways()] == ["wallet", "card"]
    assert app.config["PAYMENT_GATEWAYS"] == ("wallet", "card")
    assert gateway_named("card") is configured_gateways()[1]
    with pytest.raises(GatewayError) as unknown:
        gateway_named("sandbox")
    assert unknown.value.code == "unknown_gateway"


def test_create_intent_is_given_the_quotes_expiry(client, monkeypatch):
    calls = spy_all(monkeypatch, "create_intent")

    payment = create_from(client, fresh_violation(), DESKTOP).get_json()

    (call,) = calls
    assert call[0] == "card"
    assert call[2]["expires_at"] == payment_row(payment["id"]).expires_at


# --- the choice -------------------------------------------------------------------------------------

def test_the_default_way_is_the_first_gateway_that_serves_the_payer(client):
    in_app = create_from(client, fresh_violation(), WECHAT_BROWSER)
    on_a_computer = create_from(client, fresh_violation(), DESKTOP)

    assert in_app.status_code == on_a_computer.status_code == 201
    assert in_app.get_json()["gateway"] == "wallet"
    assert on_a_computer.get_json()["gateway"] == "card"


def test_a_chosen_gateway_is_the_payments_gateway(client):
    response = create_from(client, fresh_violation(), WECHAT_BROWSER, gateway="card")

    assert response.status_code == 201
    assert payment_row(response.get_json()["id"]).gateway == "card"


@pytest.mark.parametrize(("name", "user_agent"), [("sandbox", WECHAT_BROWSER), ("wallet", DESKTOP)])
def test_a_gateway_not_configured_or_not_serving_the_payer_is_a_422(client, name, user_agent):
    response = create_from(client, fresh_violation(), user_agent, gateway=name)

    assert response.status_code == 422
    assert "gateway" in response.get_json()["errors"]
    assert db.session.query(Payment).count() == 0


def test_a_payer_no_gateway_serves_is_told_there_is_no_way_to_pay_here(client, monkeypatch):
    monkeypatch.setattr(gateway_named("card"), "serves", lambda payer: False)
    violation = fresh_violation()

    response = create_from(client, violation, DESKTOP)
    page = review_page(client, violation, DESKTOP)

    assert (response.status_code, response.get_json()["code"]) == (422, "no_gateway")
    assert 'id="no-way"' in page and 'name="gateway"' not in page


def review_page(client, violation, user_agent):
    """The review page for one violation, as a browser with this User-Agent sees it."""
    results = client.post("/lookup", data={"plate": violation.plate, "proof": "vin",
                                           "vin_last6": violation.vin_last6}).get_data(as_text=True)
    (vehicle,) = re.findall(r'name="vehicle" value="([^"]*)"', results)
    return client.post("/pay/review", data={"vehicle": vehicle, "violation_id": [violation.id]},
                       headers={"User-Agent": user_agent}).get_data(as_text=True)


def test_the_review_page_offers_each_way_that_fits_where_it_runs(app, client):
    violation = fresh_violation()

    in_app = review_page(client, violation, WECHAT_BROWSER)
    on_a_computer = review_page(client, violation, DESKTOP)

    assert re.findall(r'name="gateway" value="(\w+)"[^>]*>([^<]+)</button>', in_app) == [("wallet", "Wallet"),
                                                                                      ("card", "Card")]
    assert 'id="ways-heading"' in in_app
    assert re.findall(r'name="gateway" value="(\w+)"', on_a_computer) == ["card"]  # one way: the usual button
    assert 'id="ways-heading"' not in on_a_computer


def test_the_way_pressed_on_the_review_page_is_the_payments_gateway(client):
    violation = fresh_violation()
    page = review_page(client, violation, WECHAT_BROWSER)
    form = {"vehicle": re.findall(r'name="vehicle" value="([^"]*)"', page)[0], "violation_id": [violation.id],
            "idempotency_key": re.findall(r'name="idempotency_key" value="([^"]*)"', page)[0], "gateway": "card"}

    response = client.post("/pay", data=form, headers={"User-Agent": WECHAT_BROWSER})

    assert response.status_code == 303
    payment_id = response.headers["Location"].rsplit("/", 1)[1]
    assert payment_row(payment_id).gateway == "card"


# --- switching ways ---------------------------------------------------------------------------------

def test_the_pay_page_offers_the_other_ways_that_fit(client):
    at_wallet = create_from(client, fresh_violation(), WECHAT_BROWSER).get_json()
    at_card = create_from(client, fresh_violation(), DESKTOP).get_json()

    page = client.get(f"/pay/{at_wallet['id']}", headers={"User-Agent": WECHAT_BROWSER}).get_data(as_text=True)
    on_a_computer = client.get(f"/pay/{at_card['id']}", headers={"User-Agent": DESKTOP}).get_data(as_text=True)

    another_way = page.split('id="pay-another-way"')[1].split("</form>")[0]
    assert re.findall(r'name="gateway" value="(\w+)"[^>]*>([^<]+)</button>', another_way) == [("card", "Card")]
    assert f'action="/pay/{at_wallet["id"]}/switch"' in page
    assert 'id="pay-another-way"' not in on_a_computer  # the wallet does not serve a computer


def test_switching_closes_the_older_order_at_its_gateway_before_the_new_one_opens(client, monkeypatch):
    violation = fresh_violation()
    older = create_from(client, violation, WECHAT_BROWSER).get_json()
    calls = []
    for operation in ("cancel_intent", "create_intent"):
        for gateway in configured_gateways():
            spy(monkeypatch, gateway, operation, calls)

    response = client.post(f"/pay/{older['id']}/switch", data={"gateway": "card"},
                           headers={"User-Agent": WECHAT_BROWSER})
    again = client.post(f"/pay/{older['id']}/switch", data={"gateway": "card"},
                        headers={"User-Agent": WECHAT_BROWSER})

    assert response.status_code == 303
    newer_id = response.headers["Location"].rsplit("/", 1)[1]
    assert again.headers["Location"] == response.headers["Location"]  # a double click: the same new payment
    assert [(name, operation) for name, operation, _arg in calls] == [("wallet", "cancel_intent"),
                                                                      ("card", "create_intent")]
    assert calls[0][2] == payment_row(older["id"]).gateway_intent_id
    assert payment_row(older["id"]).status == "canceled"
    newer = payment_row(newer_id)
    assert (newer.gateway, newer.status) == ("card", "created")
    assert [item.violation_id for item in newer.items] == [violation.id]


def test_switching_after_the_older_order_was_paid_is_409_and_the_older_one_settles(client):
    violation = fresh_violation()
    older = create_from(client, violation, WECHAT_BROWSER).get_json()
    pay_at_gateway(older["id"])

    response = client.post(f"/pay/{older['id']}/switch", data={"gateway": "card"},
                           headers={"User-Agent": WECHAT_BROWSER})

    assert response.status_code == 409
    assert payment_row(older["id"]).status == "succeeded"
    db.session.refresh(violation)
    assert violation.status == "paid"
    assert db.session.query(Payment).count() == 1


def test_a_gateway_not_serving_the_payer_cannot_be_switched_to(client):
    older = create_from(client, fresh_violation(), DESKTOP).get_json()

    response = client.post(f"/pay/{older['id']}/switch", data={"gateway": "wallet"}, headers={"User-Agent": DESKTOP})

    assert response.status_code == 422
    assert payment_row(older["id"]).status == "created"


def test_both_orders_paid_anyway_refund_the_surplus_at_the_gateway_that_took_it(app, client, monkeypatch):
    violation = fresh_violation()
    older = create_from(client, violation, WECHAT_BROWSER).get_json()
    newer_id = client.post(f"/pay/{older['id']}/switch", data={"gateway": "card"},
                           headers={"User-Agent": WECHAT_BROWSER}).headers["Location"].rsplit("/", 1)[1]
    # The wallet's order was paid though it had been closed (its payer was already in the app).
    db.session.execute(update(SandboxIntent).where(SandboxIntent.id == payment_row(older["id"]).gateway_intent_id)
                       .values(status="succeeded", amount_received=older["amount"], captured_at=utcnow(),
                               charge_id="sch_late"))
    db.session.commit()
    assert confirm(client, newer_id).get_json()["status"] == "succeeded"
    refunds = spy_all(monkeypatch, "refund")

    services.sync_payments()

    late = payment_row(older["id"])
    assert late.status == "refunded"
    assert [(name, intent) for name, _op, intent in refunds] == [("wallet", late.gateway_intent_id)]
    assert [r.amount for r in sandbox_refunds(late.gateway_intent_id)] == [older["amount"]]
    db.session.refresh(violation)
    assert violation.status == "paid" and violation.receipt_number == payment_row(newer_id).receipt_number
    receipt = client.get(f"/pay/{older['id']}", follow_redirects=True).get_data(as_text=True)
    assert translated(app, "Already paid before: refunded") in receipt
    assert "Wallet" in receipt


# --- each payment's gateway, after the choice -------------------------------------------------------

def test_sync_asks_each_open_payment_at_its_own_gateway(client, monkeypatch):
    at_wallet = create_from(client, fresh_violation(), WECHAT_BROWSER).get_json()
    at_card = create_from(client, fresh_violation(), DESKTOP).get_json()
    pay_at_gateway(at_wallet["id"])
    calls = spy_all(monkeypatch, "retrieve_intent")

    services.sync_payments()

    assert sorted((name, intent) for name, _op, intent in calls) == sorted([
        ("wallet", payment_row(at_wallet["id"]).gateway_intent_id),
        ("card", payment_row(at_card["id"]).gateway_intent_id),
    ])
    assert payment_row(at_wallet["id"]).status == "succeeded"


def test_an_expired_quote_is_closed_at_its_own_gateway(client, monkeypatch):
    payment = create_from(client, fresh_violation(), WECHAT_BROWSER).get_json()
    calls = spy_all(monkeypatch, "cancel_intent")

    services.sync_payments(now=utcnow() + timedelta(days=1))

    assert [(name, intent) for name, _op, intent in calls] == [("wallet", payment_row(payment["id"]).gateway_intent_id)]
    assert payment_row(payment["id"]).status == "expired"


def test_a_refund_goes_to_the_gateway_that_took_the_payment(client, monkeypatch):
    payment = create_from(client, fresh_violation(), WECHAT_BROWSER).get_json()
    confirm(client, payment["id"])
    calls = spy_all(monkeypatch, "refund")

    refund = services.refund_payment(payment["id"], 100, reason="a test refund", actor="staff:test")

    assert refund.status == "succeeded"
    assert [(name, intent) for name, _op, intent in calls] == [("wallet", payment_row(payment["id"]).gateway_intent_id)]


def paid_at(client, user_agent):
    payment = create_from(client, fresh_violation(), user_agent).get_json()
    confirm(client, payment["id"])
    return payment_row(payment["id"])


def pending_at(gateway, monkeypatch):
    """The gateway accepts refunds as pending (processing), and says succeeded when asked again."""
    asked = []

    def refund(intent_id, *, amount, idempotency_key, reason=None):
        return GatewayRefund("re_1", intent_id, amount, "CNY", "pending")

    def retrieve_refund(intent_id, refund_id):
        asked.append((intent_id, refund_id))
        return GatewayRefund(refund_id, intent_id, 100, "CNY", "succeeded")

    monkeypatch.setattr(gateway, "refund", refund)
    monkeypatch.setattr(gateway, "retrieve_refund", retrieve_refund)
    return asked


def test_a_refund_pending_at_the_gateway_is_settled_by_sync(client, monkeypatch):
    payment = paid_at(client, DESKTOP)
    asked = pending_at(gateway_named("card"), monkeypatch)

    refund = services.refund_payment(payment.id, 100, reason="a test refund", actor="staff:test")
    assert (refund.status, refund.gateway_refund_id) == ("pending", "re_1")

    counts = services.sync_payments()

    assert counts["refunds_checked"] == 1 and counts["refunds_retried"] == 0
    assert asked == [(payment.gateway_intent_id, "re_1")]
    assert db.session.get(Refund, refund.id, populate_existing=True).status == "succeeded"
    assert services.sync_payments()["refunds_checked"] == 0


# --- notifications, per gateway ---------------------------------------------------------------------

def notify(client, name, payload):
    body, headers = signed_event(payload)
    return client.post(f"/webhooks/{name}", data=body, headers=headers)


def test_a_notification_is_read_again_at_the_gateway_it_came_to(client, monkeypatch):
    payment = create_from(client, fresh_violation(), WECHAT_BROWSER).get_json()
    pay_at_gateway(payment["id"])
    intent_id = payment_row(payment["id"]).gateway_intent_id
    calls = spy_all(monkeypatch, "retrieve_intent")
    event = {"id": "evt_1", "type": "payment_intent.succeeded", "intent_id": intent_id}

    elsewhere = notify(client, "card", event)
    right = notify(client, "wallet", event)
    unknown = notify(client, "sandbox", {**event, "id": "evt_2"})

    assert elsewhere.get_json()["outcome"] == "ignored"  # the card took no such payment
    assert right.get_json()["outcome"] == "applied"
    assert unknown.status_code == 404
    assert [name for name, _op, _intent in calls] == ["wallet"]
    assert payment_row(payment["id"]).status == "succeeded"


def test_a_notification_of_another_amount_settles_nothing_and_is_on_the_audit_log(client, monkeypatch):
    payment = create_from(client, fresh_violation(), WECHAT_BROWSER).get_json()
    pay_at_gateway(payment["id"])
    intent_id = payment_row(payment["id"]).gateway_intent_id
    wallet = gateway_named("wallet")
    monkeypatch.setattr(wallet, "parse_webhook", lambda payload, headers: GatewayEvent(
        id="evt_short", type="payment_intent.succeeded", intent_id=intent_id, amount=payment["amount"] - 1))

    first = client.post("/webhooks/wallet", data=b"{}")
    again = client.post("/webhooks/wallet", data=b"{}")

    assert first.get_json()["outcome"] == "mismatch"
    assert again.get_json()["outcome"] == "duplicate"
    assert payment_row(payment["id"]).status == "created"
    (entry,) = db.session.query(AuditEntry).filter_by(action="payment.notification_mismatch").all()
    assert (entry.subject_id, entry.details["expected"], entry.details["notified"]) == (
        payment["id"], payment["amount"], payment["amount"] - 1)


def test_a_refund_notification_reads_the_refund_again_and_settles_it(client, monkeypatch):
    payment = paid_at(client, DESKTOP)
    card = gateway_named("card")
    asked = pending_at(card, monkeypatch)
    refund = services.refund_payment(payment.id, 100, reason="a test refund", actor="staff:test")
    monkeypatch.setattr(card, "refund_event_types", frozenset({"refund.updated"}))
    monkeypatch.setattr(card, "parse_webhook", lambda payload, headers: GatewayEvent(
        id="evt_refund", type="refund.updated", refund_id="re_1"))

    response = client.post("/webhooks/card", data=b"{}")

    assert response.get_json()["outcome"] == "applied"
    assert asked == [(payment.gateway_intent_id, "re_1")]
    assert db.session.get(Refund, refund.id, populate_existing=True).status == "succeeded"


def test_each_gateway_shapes_its_own_answers(client, monkeypatch):
    wallet = gateway_named("wallet")
    monkeypatch.setattr(wallet, "webhook_reply", lambda outcome: ("success", 200, {"Content-Type": "text/plain"}))
    monkeypatch.setattr(wallet, "webhook_refusal", lambda error: ({"code": "FAIL", "message": error.code}, 401, {}))

    taken = notify(client, "wallet", {"id": "evt_other", "type": "customer.created"})
    refused = client.post("/webhooks/wallet", data=b"{}", headers={"X-Sandbox-Signature": "t=1,v1=forged"})
    by_default = client.post("/webhooks/card", data=b"{}", headers={"X-Sandbox-Signature": "t=1,v1=forged"})

    assert (taken.status_code, taken.get_data(as_text=True)) == (200, "success")
    assert (refused.status_code, refused.get_json()) == (401, {"code": "FAIL", "message": "bad_signature"})
    assert (by_default.status_code, by_default.get_json()["code"]) == (400, "bad_signature")


# --- the scan-to-pay page moves on by itself --------------------------------------------------------

def test_a_scan_to_pay_page_polls_its_gateway_and_moves_on_once_paid(client, monkeypatch):
    payment = create_from(client, fresh_violation(), WECHAT_BROWSER).get_json()
    monkeypatch.setattr(gateway_named("wallet"), "next_action",
                        lambda payment, payer: NextAction.scan_qr("weixin://wxpay/bizpayurl?pr=abc", poll_seconds=2))
    calls = spy_all(monkeypatch, "retrieve_intent")

    waiting = client.get(f"/pay/{payment['id']}", headers={"User-Agent": WECHAT_BROWSER})
    pay_at_gateway(payment["id"])
    paid = client.get(f"/pay/{payment['id']}", headers={"User-Agent": WECHAT_BROWSER})

    assert '<meta http-equiv="refresh" content="2">' in waiting.get_data(as_text=True)
    assert paid.status_code == 303 and "/receipts/FP-" in paid.headers["Location"]
    assert [name for name, _op, _intent in calls] == ["wallet", "wallet"]


def test_a_scan_to_pay_page_after_the_quote_ran_out_closes_the_order_at_its_gateway_and_says_so(app, client,
                                                                                               monkeypatch):
    payment = create_from(client, fresh_violation(), WECHAT_BROWSER).get_json()
    monkeypatch.setattr(gateway_named("wallet"), "next_action",
                        lambda payment, payer: NextAction.scan_qr("weixin://wxpay/bizpayurl?pr=abc", poll_seconds=2))
    db.session.execute(update(Payment).where(Payment.id == payment["id"])
                       .values(expires_at=utcnow() - timedelta(seconds=1)))
    db.session.commit()
    calls = spy_all(monkeypatch, "cancel_intent")

    page = client.get(f"/pay/{payment['id']}", headers={"User-Agent": WECHAT_BROWSER}).get_data(as_text=True)

    assert [(name, intent) for name, _op, intent in calls] == [("wallet", payment_row(payment["id"]).gateway_intent_id)]
    assert payment_row(payment["id"]).status == "expired"
    assert translated(app, "This price has expired") in page
    assert 'id="pay-qr"' not in page
