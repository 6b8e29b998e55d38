"""The Stripe adapter against a real localstripe process."""
import hashlib
import hmac
import json
import threading
import time
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests

from payments.gateways import (
    CANCELED,
    DECLINE_CODES,
    FAILED,
    REQUIRES_ACTION,
    REQUIRES_PAYMENT_METHOD,
    SUCCEEDED,
    GatewayError,
    GatewayIntent,
    GatewayRefund,
    WebhookVerificationError,
    load_gateway_class,
)
from payments.gateways.stripe import StripeGateway

API_KEY = "sk_test_finepay_localstripe"
WEBHOOK_SECRET = "whsec_finepay_test"
DECLINING_CARD = "4000000000000341"
THREE_D_SECURE_CARD = "4000002500003155"


def gateway_config(base_url, **overrides):
    """Settings that point the adapter at localstripe."""
    return {
        "STRIPE_API_BASE": base_url,
        "STRIPE_API_KEY": API_KEY,
        "STRIPE_PUBLISHABLE_KEY": "pk_test_finepay",
        "STRIPE_WEBHOOK_SECRET": WEBHOOK_SECRET,
        # localstripe refuses created[...] on its list endpoints.
        "STRIPE_LIST_CREATED_FILTER": False,
        "CURRENCY": "CNY",
        **overrides,
    }


@pytest.fixture
def gateway(localstripe):
    """A Stripe adapter talking to the session's localstripe."""
    return StripeGateway(gateway_config(localstripe))


def card_payment_method(base_url, number):
    """A payment method for a test card number, the way Stripe.js would make one."""
    response = requests.post(f"{base_url}/v1/payment_methods", auth=(API_KEY, ""), timeout=5, data={
        "type": "card", "card[number]": number, "card[exp_month]": "12", "card[exp_year]": "2030",
        "card[cvc]": "123",
    })
    response.raise_for_status()
    return response.json()["id"]


def create(gateway, payment_id="pay_1", amount=20600):
    return gateway.create_intent(payment_id=payment_id, amount=amount, currency="CNY",
                                 idempotency_key=f"{payment_id}:create")


def paid_intent(gateway, payment_id="pay_1", amount=20600):
    intent = create(gateway, payment_id, amount)
    return gateway.confirm_intent(intent.id, payment_method="pm_card_visa", idempotency_key=f"{payment_id}:confirm")


def test_the_entry_point_resolves_to_the_stripe_adapter():
    assert load_gateway_class("stripe") is StripeGateway


def test_created_intent_waits_for_a_payment_method(gateway):
    intent = create(gateway, "pay_new", 12345)

    assert isinstance(intent, GatewayIntent)
    assert intent.id.startswith("pi_")
    assert (intent.status, intent.amount, intent.currency) == (REQUIRES_PAYMENT_METHOD, 12345, "CNY")
    assert intent.payment_id == "pay_new"
    assert intent.client_secret
    assert intent.amount_received == 0 and intent.charge_id is None
    assert gateway.client_fields(intent) == {"client_secret": intent.client_secret,
                                             "publishable_key": "pk_test_finepay"}


def test_confirm_with_a_good_card_succeeds_and_records_the_charge(gateway):
    intent = paid_intent(gateway, "pay_ok", 20600)

    assert intent.status == SUCCEEDED
    assert intent.amount_received == 20600
    assert intent.charge_id and intent.charge_id.startswith("ch_")
    assert intent.failure_code is None
    again = gateway.retrieve_intent(intent.id)
    assert (again.status, again.amount_received, again.charge_id, again.payment_id) == (
        SUCCEEDED, 20600, intent.charge_id, "pay_ok")


@pytest.mark.parametrize("method", ["pm_card_chargeCustomerFail", "card_number"])
def test_a_declined_card_gives_a_failed_intent_not_an_error(gateway, localstripe, method):
    payment_method = card_payment_method(localstripe, DECLINING_CARD) if method == "card_number" else method
    intent = create(gateway, "pay_declined")

    result = gateway.confirm_intent(intent.id, payment_method=payment_method, idempotency_key="pay_declined:confirm")

    assert result.status == FAILED
    assert result.failure_code == "card_declined" and result.failure_code in DECLINE_CODES
    assert result.failure_message
    assert result.amount_received == 0
    assert gateway.retrieve_intent(intent.id).status == FAILED


# A second card on a declined intent: localstripe refuses it (it keeps the intent in
# requires_payment_method and answers 400 to confirm) while Stripe allows it, so
# that path is tested at the stand-in in test_stripe_faults.py.


def test_three_d_secure_needs_an_extra_step_then_succeeds(gateway, localstripe):
    intent = create(gateway, "pay_3ds")
    payment_method = card_payment_method(localstripe, THREE_D_SECURE_CARD)

    pending = gateway.confirm_intent(intent.id, payment_method=payment_method, idempotency_key="pay_3ds:confirm")

    assert pending.status == REQUIRES_ACTION
    assert pending.next_action_url is None  # localstripe answers with use_stripe_sdk, not a redirect
    response = requests.post(f"{localstripe}/v1/payment_intents/{intent.id}/_authenticate", timeout=5,
                             data={"client_secret": pending.client_secret, "success": "true",
                                   "key": "pk_test_finepay"})
    assert response.ok, response.text
    done = gateway.retrieve_intent(intent.id)
    assert done.status == SUCCEEDED and done.amount_received == intent.amount and done.charge_id


def test_failed_three_d_secure_is_an_authentication_failure(gateway, localstripe):
    intent = create(gateway, "pay_3ds_fail")
    payment_method = card_payment_method(localstripe, THREE_D_SECURE_CARD)
    pending = gateway.confirm_intent(intent.id, payment_method=payment_method, idempotency_key="k")

    requests.post(f"{localstripe}/v1/payment_intents/{intent.id}/_authenticate", timeout=5,
                  data={"client_secret": pending.client_secret, "success": "false", "key": "pk_test_finepay"})

    result = gateway.retrieve_intent(intent.id)
    assert (result.status, result.failure_code) == (FAILED, "authentication_failed")


def test_confirming_a_succeeded_intent_again_reports_it_succeeded(gateway):
    intent = paid_intent(gateway, "pay_twice")

    again = gateway.confirm_intent(intent.id, payment_method="pm_card_visa", idempotency_key="another-tab")

    assert again.status == SUCCEEDED and again.charge_id == intent.charge_id


def test_an_unknown_payment_method_is_refused_as_unusable(gateway):
    intent = create(gateway, "pay_bad_method")

    with pytest.raises(GatewayError) as caught:
        gateway.confirm_intent(intent.id, payment_method="pm_no_such_method", idempotency_key="k")

    assert (caught.value.code, caught.value.status) == ("invalid_payment_method", 422)


def test_confirming_a_canceled_intent_is_refused(gateway):
    intent = create(gateway, "pay_canceled")
    gateway.cancel_intent(intent.id, idempotency_key="pay_canceled:cancel")

    with pytest.raises(GatewayError) as caught:
        gateway.confirm_intent(intent.id, payment_method="pm_card_visa", idempotency_key="k")

    assert (caught.value.code, caught.value.status) == ("intent_canceled", 409)


def test_cancel_an_unpaid_intent(gateway):
    intent = create(gateway, "pay_cancel")

    canceled = gateway.cancel_intent(intent.id, idempotency_key="pay_cancel:cancel")

    assert canceled.status == CANCELED
    assert gateway.retrieve_intent(intent.id).status == CANCELED


def test_cancelling_a_succeeded_intent_returns_it_succeeded(gateway):
    intent = paid_intent(gateway, "pay_late_cancel")

    result = gateway.cancel_intent(intent.id, idempotency_key="pay_late_cancel:cancel")

    assert result.status == SUCCEEDED


def test_unknown_intent_is_an_invalid_request(gateway):
    with pytest.raises(GatewayError) as caught:
        gateway.retrieve_intent("pi_doesnotexist")

    assert (caught.value.code, caught.value.status, caught.value.retryable) == ("invalid_request", 502, False)
    assert caught.value.gateway_message


def test_full_and_partial_refunds(gateway):
    full = paid_intent(gateway, "pay_full", 5000)
    partial = paid_intent(gateway, "pay_partial", 8000)

    refund_all = gateway.refund(full.id, amount=5000, idempotency_key="pay_full:refund", reason="duplicate")
    refund_part = gateway.refund(partial.id, amount=3000, idempotency_key="pay_partial:refund")

    assert isinstance(refund_all, GatewayRefund)
    assert refund_all.id.startswith("re_")
    assert (refund_all.intent_id, refund_all.amount, refund_all.currency, refund_all.status) == (
        full.id, 5000, "CNY", "succeeded")
    assert (refund_part.intent_id, refund_part.amount, refund_part.status) == (partial.id, 3000, "succeeded")


def test_a_refund_is_read_again_as_stripe_knows_it(gateway):
    paid = paid_intent(gateway, "pay_reread", 6000)
    made = gateway.refund(paid.id, amount=2500, idempotency_key="pay_reread:refund")

    again = gateway.retrieve_refund(paid.id, made.id)

    assert again == GatewayRefund(made.id, paid.id, 2500, "CNY", "succeeded")


def test_refunding_an_unpaid_intent_is_refused(gateway):
    intent = create(gateway, "pay_unpaid")

    with pytest.raises(GatewayError) as caught:
        gateway.refund(intent.id, amount=100, idempotency_key="pay_unpaid:refund")

    assert caught.value.code == "invalid_request"


def _next_second():
    """Wait until the wall clock enters a new second (localstripe's timestamps are whole seconds)."""
    now = time.time()
    time.sleep(int(now) + 1 - now + 0.01)
    return datetime.fromtimestamp(int(time.time()), UTC)


def test_list_transactions_returns_charges_and_refunds_inside_the_window_only(gateway):
    before = paid_intent(gateway, "pay_before", 1000)
    gateway.refund(before.id, amount=400, idempotency_key="pay_before:refund")
    split = _next_second()
    inside = paid_intent(gateway, "pay_inside", 2000)
    gateway.refund(inside.id, amount=2000, idempotency_key="pay_inside:refund")
    declined = create(gateway, "pay_declined", 3000)
    gateway.confirm_intent(declined.id, payment_method="pm_card_chargeCustomerFail", idempotency_key="d")

    window = gateway.list_transactions(split, split + timedelta(minutes=5))
    earlier = gateway.list_transactions(split - timedelta(minutes=5), split)
    later = gateway.list_transactions(split + timedelta(minutes=5), split + timedelta(minutes=10))

    assert sorted((t.kind, t.intent_id, t.payment_id, t.amount, t.currency) for t in window) == [
        ("charge", inside.id, "pay_inside", 2000, "CNY"),
        ("refund", inside.id, "pay_inside", 2000, "CNY"),
    ]
    assert {t.id for t in window} >= {inside.charge_id}
    assert all(split <= t.created_at < split + timedelta(minutes=5) and t.created_at.tzinfo for t in window)
    assert sorted((t.kind, t.intent_id, t.amount) for t in earlier) == [
        ("charge", before.id, 1000), ("refund", before.id, 400)]
    assert later == []


def test_list_transactions_follows_pagination(gateway):
    gateway.list_page_size = 2
    start = datetime.now(UTC) - timedelta(minutes=1)
    intents = [paid_intent(gateway, f"pay_page_{n}", 100 + n) for n in range(5)]
    for intent in intents[:3]:
        gateway.refund(intent.id, amount=50, idempotency_key=f"{intent.id}:refund")

    found = gateway.list_transactions(start, datetime.now(UTC) + timedelta(minutes=1))

    charges = sorted(t.amount for t in found if t.kind == "charge")
    refunds = [t for t in found if t.kind == "refund"]
    assert charges == [100, 101, 102, 103, 104]
    assert len(refunds) == 3 and len({t.id for t in found}) == 8


# -- webhooks --------------------------------------------------------------------------------------


class _WebhookInbox:
    """A tiny HTTP server on 127.0.0.1 that keeps every delivery it gets."""

    def __init__(self):
        self.deliveries = []
        self.arrived = threading.Condition()
        inbox = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 (http.server's naming)
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with inbox.arrived:
                    inbox.deliveries.append((body, dict(self.headers.items())))
                    inbox.arrived.notify_all()
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/webhooks/stripe"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,),
                                       daemon=True)

    def wait_for(self, event_type, intent_id, timeout=5.0):
        """The first delivery of ``event_type`` about ``intent_id`` (body, headers), or None.

        localstripe sends each event about a second late to whatever is registered
        by then, so events of earlier tests may arrive here too.
        """
        def find():
            for body, headers in self.deliveries:
                event = json.loads(body)
                if event["type"] == event_type and event["data"]["object"]["id"] == intent_id:
                    return body, headers
            return None

        with self.arrived:
            self.arrived.wait_for(find, timeout)
            return find()


@pytest.fixture(scope="module")
def webhook_inbox(localstripe_server):
    """An inbox registered with localstripe for payment_intent events, for this module's tests."""
    inbox = _WebhookInbox()
    inbox.thread.start()
    response = requests.post(f"{localstripe_server}/_config/webhooks/finepay", timeout=5, data=[
        ("url", inbox.url), ("secret", WEBHOOK_SECRET),
        ("events[]", "payment_intent.succeeded"), ("events[]", "payment_intent.payment_failed"),
    ])
    response.raise_for_status()
    yield inbox
    requests.delete(f"{localstripe_server}/_config/webhooks", timeout=5).raise_for_status()
    inbox.server.shutdown()
    inbox.server.server_close()


def sign(payload, secret=WEBHOOK_SECRET, timestamp=None):
    timestamp = int(time.time()) if timestamp is None else timestamp
    signature = hmac.new(secret.encode(), f"{timestamp}.".encode() + payload, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={signature}"


@pytest.fixture(scope="module")
def delivered(localstripe_server, webhook_inbox):
    """localstripe's signed payment_intent.succeeded delivery for one payment: (intent, body, headers).

    One delivery serves every check on it: each costs localstripe's one-second delay.
    """
    intent = paid_intent(StripeGateway(gateway_config(localstripe_server)), "pay_hook")
    delivery = webhook_inbox.wait_for("payment_intent.succeeded", intent.id)
    assert delivery, "localstripe delivered no webhook within 5 s"
    return intent, *delivery


def test_a_delivered_webhook_is_verified_and_names_the_intent(gateway, delivered):
    intent, body, headers = delivered

    event = gateway.parse_webhook(body, headers)

    assert event.type == "payment_intent.succeeded"
    assert event.id.startswith("evt_")
    assert (event.intent_id, event.payment_id) == (intent.id, "pay_hook")
    assert event.data["data"]["object"]["id"] == intent.id


def test_a_declined_payment_sends_a_verifiable_failure_webhook(gateway, webhook_inbox):
    intent = create(gateway, "pay_hook_declined")
    gateway.confirm_intent(intent.id, payment_method="pm_card_chargeCustomerFail", idempotency_key="k")

    delivery = webhook_inbox.wait_for("payment_intent.payment_failed", intent.id)
    assert delivery, "localstripe delivered no webhook within 5 s"

    event = gateway.parse_webhook(*delivery)
    assert (event.type, event.intent_id, event.payment_id) == (
        "payment_intent.payment_failed", intent.id, "pay_hook_declined")


def test_a_refund_event_names_the_refund_to_read_again(gateway):
    body = json.dumps({"id": "evt_refund_1", "type": "refund.updated", "data": {"object": {
        "object": "refund", "id": "re_123", "payment_intent": "pi_123", "status": "succeeded"}}}).encode()

    event = gateway.parse_webhook(body, {"Stripe-Signature": sign(body)})

    assert event.type in gateway.refund_event_types
    assert (event.refund_id, event.intent_id) == ("re_123", "pi_123")


def test_webhook_headers_are_matched_whatever_their_case(gateway, delivered):
    _, body, headers = delivered
    lower = {k.lower(): v for k, v in headers.items()}

    assert gateway.parse_webhook(body, lower).intent_id == delivered[0].id


def test_a_tampered_webhook_body_is_rejected(gateway, delivered):
    _, body, headers = delivered
    tampered = body.replace(b'"pay_hook"', b'"pay_evil"')
    assert tampered != body

    with pytest.raises(WebhookVerificationError):
        gateway.parse_webhook(tampered, headers)


def test_a_webhook_signed_with_another_secret_is_rejected(localstripe, delivered):
    _, body, headers = delivered
    other = StripeGateway(gateway_config(localstripe, STRIPE_WEBHOOK_SECRET="whsec_someone_else"))

    with pytest.raises(WebhookVerificationError) as caught:
        other.parse_webhook(body, headers)
    assert caught.value.status == 400 and caught.value.code == "bad_signature"


def test_a_stale_webhook_is_rejected(gateway, delivered):
    _, body, headers = delivered
    stale = {"Stripe-Signature": sign(body, timestamp=int(time.time()) - 301)}

    with pytest.raises(WebhookVerificationError, match="tolerance"):
        gateway.parse_webhook(body, stale)
    gateway.clock = lambda: time.time() + 301
    with pytest.raises(WebhookVerificationError, match="tolerance"):
        gateway.parse_webhook(body, headers)


def test_a_webhook_without_a_signature_header_is_rejected(gateway, delivered):
    _, body, headers = delivered
    unsigned = {k: v for k, v in headers.items() if k.lower() != "stripe-signature"}

    with pytest.raises(WebhookVerificationError, match="missing"):
        gateway.parse_webhook(body, unsigned)


def test_webhooks_are_refused_when_no_secret_is_configured(localstripe, delivered):
    _, body, headers = delivered
    unconfigured = StripeGateway(gateway_config(localstripe, STRIPE_WEBHOOK_SECRET=""))

    with pytest.raises(WebhookVerificationError, match="not configured"):
        unconfigured.parse_webhook(body, headers)


@pytest.mark.parametrize("header", [
    "garbage", "t=,v1=abc", "v1=abc", "t=123", "t=12a,v1=abc", "t=1,v0=abc", "",
])
def test_malformed_signature_headers_are_rejected(gateway, header):
    with pytest.raises(WebhookVerificationError):
        gateway.parse_webhook(b"{}", {"Stripe-Signature": header})


def test_any_matching_v1_signature_is_accepted_and_the_body_must_be_an_event(gateway):
    body = json.dumps({"id": "evt_1", "type": "charge.refunded", "data": {"object": {
        "object": "charge", "id": "ch_1", "payment_intent": "pi_1", "metadata": {"payment_id": "pay_9"}}}}).encode()
    good = sign(body)
    rotated = good.replace("v1=", "v1=" + "0" * 64 + ",v1=")

    event = gateway.parse_webhook(body, {"Stripe-Signature": rotated})

    assert (event.id, event.type, event.intent_id, event.payment_id) == ("evt_1", "charge.refunded", "pi_1", "pay_9")
    for not_an_event in (b"not json", b"[1, 2]", b'{"type": "x"}', b"\xff\xfe"):
        with pytest.raises(WebhookVerificationError):
            gateway.parse_webhook(not_an_event, {"Stripe-Signature": sign(not_an_event)})
