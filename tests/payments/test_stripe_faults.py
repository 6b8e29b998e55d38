"""What localstripe cannot show: retries, timeouts, 5xx, decline codes, at a scripted HTTP stand-in."""
import json
import socket
import threading
import traceback
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlsplit

import pytest
import requests

from payments.gateways import FAILED, PROCESSING, REQUIRES_ACTION, REQUIRES_PAYMENT_METHOD, SUCCEEDED, GatewayError
from payments.gateways.stripe import StripeGateway

API_KEY = "sk_test_SECRET_never_in_messages_42"


def intent_body(intent_id="pi_fake", status="requires_payment_method", **extra):
    """A PaymentIntent as Stripe sends it (current API: latest_charge is an id)."""
    return {"id": intent_id, "object": "payment_intent", "amount": 20600, "currency": "cny", "status": status,
            "amount_received": 20600 if status == "succeeded" else 0, "client_secret": f"{intent_id}_secret_x",
            "latest_charge": "ch_fake" if status == "succeeded" else None, "last_payment_error": None,
            "next_action": None, "metadata": {"payment_id": "pay_1"}, **extra}


def default_answer(method, path):
    """What the stand-in says when a test has not scripted anything for a request."""
    parts = path.strip("/").split("/")
    if method == "POST" and path == "/v1/payment_intents":
        return 200, intent_body()
    if method == "POST" and path == "/v1/refunds":
        return 200, {"id": "re_fake", "object": "refund", "amount": 100, "currency": "cny",
                     "payment_intent": "pi_fake", "status": "succeeded"}
    if parts[:2] == ["v1", "payment_intents"] and len(parts) >= 3:
        action = parts[3] if len(parts) > 3 else None
        status = {None: "requires_confirmation" if method == "POST" else "succeeded", "confirm": "succeeded",
                  "cancel": "canceled"}[action]
        return 200, intent_body(parts[2], status)
    if method == "GET" and path in ("/v1/charges", "/v1/refunds"):
        return 200, {"object": "list", "data": [], "has_more": False}
    return 404, {"error": {"type": "invalid_request_error", "message": f"no route {path}"}}


class FakeStripe:
    """A loopback HTTP server that answers from a per-test script and records every request."""

    def __init__(self):
        self.script = []  # answers for the next requests, in order; then default_answer
        self.requests = []
        self.release = threading.Event()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def handle_request(self):
                url = urlsplit(self.path)
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                fake.requests.append({
                    "method": self.command, "path": url.path, "headers": dict(self.headers.items()),
                    "form": parse_qsl(raw.decode() if self.command == "POST" else url.query, keep_blank_values=True),
                })
                action = fake.script.pop(0) if fake.script else ("answer", *default_answer(self.command, url.path))
                kind, *args = action
                if kind == "drop":  # the request arrived, the answer never leaves
                    self.close_connection = True
                    return
                if kind == "stall":
                    fake.release.wait(args[0])
                    action = ("answer", *default_answer(self.command, url.path))
                    kind, *args = action
                status, body, *headers = args
                payload = body if isinstance(body, bytes) else json.dumps(body).encode()
                try:
                    self.send_response(status)
                    for name, value in (headers[0] if headers else {}).items():
                        self.send_header(name, value)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                except OSError:
                    self.close_connection = True  # the client gave up waiting

            do_GET = do_POST = handle_request  # noqa: N815 (http.server's naming)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)

    def then(self, *actions):
        self.script.extend(actions)
        return self

    def seen(self, method=None, path=None):
        return [r for r in self.requests if (method is None or r["method"] == method)
                and (path is None or r["path"] == path)]


def answer(status, body, headers=None):
    return ("answer", status, body, headers or {})


@pytest.fixture
def fake():
    stand_in = FakeStripe()
    stand_in.thread.start()
    yield stand_in
    stand_in.release.set()
    stand_in.server.shutdown()
    stand_in.server.server_close()


def make_gateway(base_url, **overrides):
    gateway = StripeGateway({
        "STRIPE_API_BASE": base_url, "STRIPE_API_KEY": API_KEY, "STRIPE_WEBHOOK_SECRET": "whsec_x",
        "STRIPE_PUBLISHABLE_KEY": "pk_test_x", "CURRENCY": "CNY", "STRIPE_READ_TIMEOUT": 1.0,
        "STRIPE_CONNECT_TIMEOUT": 2.0, "STRIPE_MAX_RETRIES": 2, **overrides,
    })
    gateway.sleeps = []
    gateway.sleep = gateway.sleeps.append
    return gateway


@pytest.fixture
def gateway(fake):
    return make_gateway(fake.url)


def create(gateway, key="pay_1:create"):
    return gateway.create_intent(payment_id="pay_1", amount=20600, currency="CNY", idempotency_key=key)


def closed_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_create_sends_stripe_form_encoding_and_bearer_auth(gateway, fake):
    create(gateway)

    [sent] = fake.seen("POST", "/v1/payment_intents")
    assert sorted(sent["form"]) == sorted([
        ("amount", "20600"), ("currency", "cny"), ("payment_method_types[]", "card"),
        ("metadata[payment_id]", "pay_1")])
    assert sent["headers"]["Authorization"] == f"Bearer {API_KEY}"
    assert sent["headers"]["Content-Type"] == "application/x-www-form-urlencoded"


def test_every_post_carries_an_idempotency_key(gateway, fake):
    intent = create(gateway, "pay_1:create")
    gateway.confirm_intent(intent.id, payment_method="pm_card_visa", idempotency_key="pay_1:confirm")
    gateway.cancel_intent(intent.id, idempotency_key="pay_1:cancel")
    gateway.refund(intent.id, amount=100, idempotency_key="pay_1:refund", reason="duplicate")

    posts = fake.seen("POST")
    assert [(r["path"], r["headers"].get("Idempotency-Key")) for r in posts] == [
        ("/v1/payment_intents", "pay_1:create"),
        ("/v1/payment_intents/pi_fake", "pay_1:confirm:attach"),
        ("/v1/payment_intents/pi_fake/confirm", "pay_1:confirm"),
        ("/v1/payment_intents/pi_fake/cancel", "pay_1:cancel"),
        ("/v1/refunds", "pay_1:refund"),
    ]
    assert ("payment_method", "pm_card_visa") in posts[1]["form"] and posts[2]["form"] == []
    assert sorted(posts[4]["form"]) == [("amount", "100"), ("metadata[reason]", "duplicate"),
                                        ("payment_intent", "pi_fake")]
    assert all("Idempotency-Key" not in r["headers"] for r in fake.seen("GET"))


def test_a_post_without_an_idempotency_key_is_never_sent(gateway, fake):
    with pytest.raises(ValueError):
        create(gateway, key="")
    assert fake.requests == []


def test_a_500_then_200_is_retried_with_the_same_key(gateway, fake):
    fake.then(answer(500, {"error": {"type": "api_error", "message": "boom"}}))

    intent = create(gateway, "pay_1:create")

    assert intent.id == "pi_fake"
    sent = fake.seen("POST", "/v1/payment_intents")
    assert [r["headers"]["Idempotency-Key"] for r in sent] == ["pay_1:create", "pay_1:create"]
    assert sent[0]["form"] == sent[1]["form"]
    assert len(gateway.sleeps) == 1


def test_a_429_is_retried_after_the_servers_pause(gateway, fake):
    fake.then(answer(429, {"error": {"type": "rate_limit_error", "message": "slow down"}}, {"Retry-After": "1"}))

    refund = gateway.refund("pi_fake", amount=100, idempotency_key="pay_1:refund")

    assert refund.id == "re_fake"
    assert len(fake.seen("POST", "/v1/refunds")) == 2
    assert gateway.sleeps == [1.0]


def test_a_post_that_keeps_failing_with_500_gives_up_with_the_outcome_unknown(gateway, fake):
    fake.then(*[answer(500, {"error": {"message": "boom"}})] * 3)

    with pytest.raises(GatewayError) as caught:
        create(gateway)

    assert len(fake.seen("POST")) == 3  # the first try and STRIPE_MAX_RETRIES=2 retries
    assert (caught.value.retryable, caught.value.outcome_unknown, caught.value.status) == (True, True, 502)


def test_stripe_should_retry_false_stops_the_retries(gateway, fake):
    fake.then(answer(500, {"error": {"message": "no"}}, {"Stripe-Should-Retry": "false"}))

    with pytest.raises(GatewayError) as caught:
        create(gateway)

    assert len(fake.seen("POST")) == 1 and caught.value.retryable is False


@pytest.mark.parametrize("call", ["confirm", "create", "refund"])
def test_a_read_timeout_on_a_post_is_outcome_unknown_and_never_retried(gateway, fake, call):
    if call == "confirm":
        fake.then(answer(200, intent_body(status="requires_confirmation")), ("stall", 2))
    else:
        fake.then(("stall", 2))

    with pytest.raises(GatewayError) as caught:
        if call == "confirm":
            gateway.confirm_intent("pi_fake", payment_method="pm_card_visa", idempotency_key="pay_1:confirm")
        elif call == "create":
            create(gateway)
        else:
            gateway.refund("pi_fake", amount=100, idempotency_key="pay_1:refund")

    assert caught.value.outcome_unknown is True
    assert caught.value.status == 504
    path = {"confirm": "/v1/payment_intents/pi_fake/confirm", "create": "/v1/payment_intents",
            "refund": "/v1/refunds"}[call]
    assert len(fake.seen("POST", path)) == 1
    assert gateway.sleeps == []


def test_a_connection_dropped_after_sending_a_post_is_outcome_unknown_and_not_retried(gateway, fake):
    fake.then(("drop",))

    with pytest.raises(GatewayError) as caught:
        gateway.cancel_intent("pi_fake", idempotency_key="pay_1:cancel")

    assert caught.value.outcome_unknown is True
    assert len(fake.seen("POST")) == 1


def test_connection_refused_is_retryable_and_no_requests_exception_leaks():
    gateway = make_gateway(f"http://127.0.0.1:{closed_port()}")

    for call in (lambda: create(gateway), lambda: gateway.retrieve_intent("pi_fake"),
                 lambda: gateway.confirm_intent("pi_fake", payment_method="pm_card_visa", idempotency_key="k")):
        gateway.sleeps.clear()
        with pytest.raises(GatewayError) as caught:
            call()
        assert not isinstance(caught.value, requests.RequestException)
        assert (caught.value.retryable, caught.value.outcome_unknown, caught.value.status) == (True, False, 503)
        # nothing was sent, so even a POST was tried again
        assert len(gateway.sleeps) == 2


@pytest.mark.parametrize("carries_intent", [True, False], ids=["intent-in-error", "intent-re-read"])
def test_a_402_with_insufficient_funds_gives_a_failed_intent(gateway, fake, carries_intent):
    error = {"type": "card_error", "code": "card_declined", "decline_code": "insufficient_funds",
             "message": "Your card has insufficient funds."}
    failed_pi = intent_body(status="requires_payment_method", last_payment_error=dict(error))
    if carries_intent:
        error["payment_intent"] = failed_pi
    fake.then(answer(200, intent_body(status="requires_confirmation")), answer(402, {"error": error}))
    if not carries_intent:
        fake.then(answer(200, failed_pi))

    intent = gateway.confirm_intent("pi_fake", payment_method="pm_card_visa", idempotency_key="pay_1:confirm")

    assert intent.status == FAILED
    assert intent.failure_code == "insufficient_funds"
    assert intent.failure_message == "Your card has insufficient funds."
    assert len(fake.seen("POST", "/v1/payment_intents/pi_fake/confirm")) == 1


def test_a_402_whose_re_read_intent_lacks_the_error_still_fails(gateway, fake):
    fake.then(answer(200, intent_body(status="requires_confirmation")),
              answer(402, {"error": {"code": "expired_card", "message": "Your card has expired."}}),
              answer(200, intent_body(status="requires_payment_method")))

    intent = gateway.confirm_intent("pi_fake", payment_method="pm_card_visa", idempotency_key="k")

    assert (intent.status, intent.failure_code) == (FAILED, "expired_card")


@pytest.mark.parametrize("error, expected", [
    ({"code": "card_declined", "decline_code": "generic_decline"}, "card_declined"),
    ({"code": "card_declined", "decline_code": "card_velocity_exceeded"}, "limit_exceeded"),
    ({"code": "incorrect_cvc"}, "incorrect_cvc"),
    ({"code": "payment_intent_authentication_failure"}, "authentication_failed"),
    ({"code": "something_new"}, "card_declined"),
    ({}, "card_declined"),
])
def test_decline_codes_are_mapped_into_finepays_words(gateway, fake, error, expected):
    fake.then(answer(200, intent_body(status="requires_payment_method", last_payment_error={"message": "x", **error})))

    intent = gateway.retrieve_intent("pi_fake")

    assert (intent.status, intent.failure_code) == (FAILED, expected)


@pytest.mark.parametrize("shape", ["id", "expanded", "old-charges-list"])
def test_the_charge_id_is_read_from_every_api_shape(gateway, fake, shape):
    body = intent_body(status="succeeded")
    if shape == "expanded":
        body["latest_charge"] = {"id": "ch_fake", "object": "charge", "status": "succeeded", "amount": 20600}
    elif shape == "old-charges-list":
        body["latest_charge"] = None
        body["charges"] = {"object": "list", "data": [{"id": "ch_fake", "status": "succeeded", "amount": 20600}]}
    fake.then(answer(200, body))

    intent = gateway.retrieve_intent("pi_fake")

    assert (intent.status, intent.charge_id, intent.amount_received, intent.currency) == (
        SUCCEEDED, "ch_fake", 20600, "CNY")


@pytest.mark.parametrize("stripe_status, expected", [
    ("requires_payment_method", REQUIRES_PAYMENT_METHOD),
    ("requires_confirmation", REQUIRES_PAYMENT_METHOD),
    ("processing", PROCESSING),
    ("canceled", "canceled"),
])
def test_intent_statuses_are_mapped(gateway, fake, stripe_status, expected):
    fake.then(answer(200, intent_body(status=stripe_status)))

    assert gateway.retrieve_intent("pi_fake").status == expected


def test_a_redirect_step_gives_the_payer_a_url(gateway, fake):
    fake.then(answer(200, intent_body(status="requires_action", next_action={
        "type": "redirect_to_url", "redirect_to_url": {"url": "https://hooks.stripe.com/3ds/x", "return_url": "r"}})))

    intent = gateway.retrieve_intent("pi_fake")

    assert (intent.status, intent.next_action_url) == (REQUIRES_ACTION, "https://hooks.stripe.com/3ds/x")


def test_a_second_card_after_a_decline_is_attached_and_confirmed_on_the_same_intent(gateway, fake):
    declined = intent_body(status="requires_payment_method",
                           last_payment_error={"code": "card_declined", "decline_code": "generic_decline"})
    fake.then(answer(200, declined), answer(200, declined))  # attach, confirm: declined
    first = gateway.confirm_intent("pi_fake", payment_method="pm_card_chargeDeclined", idempotency_key="pay_1:c:1")

    second = gateway.confirm_intent("pi_fake", payment_method="pm_card_visa", idempotency_key="pay_1:c:2")

    assert first.status == FAILED
    assert second.status == SUCCEEDED
    posts = [(r["path"], r["headers"]["Idempotency-Key"]) for r in fake.requests if r["method"] == "POST"]
    assert [path for path, _ in posts[-2:]] == ["/v1/payment_intents/pi_fake", "/v1/payment_intents/pi_fake/confirm"]
    assert len({key for _, key in posts}) == 4  # every attempt has keys of its own


def test_gets_are_retried_on_503(gateway, fake):
    fake.then(answer(503, {"error": {"message": "busy"}}), answer(503, {"error": {"message": "busy"}}))

    intent = gateway.retrieve_intent("pi_fake")

    assert intent.status == SUCCEEDED
    assert len(fake.seen("GET")) == 3


def test_a_get_that_times_out_is_retried(gateway, fake):
    fake.then(("stall", 2))

    assert gateway.retrieve_intent("pi_fake").status == SUCCEEDED
    assert len(fake.seen("GET")) == 2


def test_a_get_that_keeps_failing_gives_up_retryable(gateway, fake):
    fake.then(*[answer(503, {"error": {"message": "busy"}})] * 3)

    with pytest.raises(GatewayError) as caught:
        gateway.retrieve_intent("pi_fake")

    assert (caught.value.retryable, caught.value.outcome_unknown, caught.value.status) == (True, False, 503)
    assert len(fake.seen("GET")) == 3


def test_a_bad_request_is_an_invalid_request_error_with_the_gateways_words(gateway, fake):
    fake.then(answer(400, {"error": {"type": "invalid_request_error", "message": "Amount must be at least 50"}}))

    with pytest.raises(GatewayError) as caught:
        create(gateway)

    assert (caught.value.code, caught.value.status, caught.value.retryable) == ("invalid_request", 502, False)
    assert caught.value.gateway_message == "Amount must be at least 50"
    assert len(fake.seen("POST")) == 1


def test_a_payment_method_stripe_does_not_know_is_unusable_not_a_gateway_failure(gateway, fake):
    fake.then(answer(400, {"error": {"type": "invalid_request_error", "code": "resource_missing",
                                     "param": "payment_method", "message": "No such PaymentMethod: 'pm_x'"}}),
              answer(200, intent_body(status="requires_payment_method")))

    with pytest.raises(GatewayError) as caught:
        gateway.confirm_intent("pi_fake", payment_method="pm_x", idempotency_key="k")

    assert (caught.value.code, caught.value.status) == ("invalid_payment_method", 422)
    assert fake.seen("POST", "/v1/payment_intents/pi_fake/confirm") == []


def _failures():
    """Every way a call can fail, each as (script, call)."""
    echo = {"error": {"message": f"Invalid API Key provided: {API_KEY}"}}
    return [
        ([answer(401, echo)], lambda g: create(g)),
        ([answer(400, echo)], lambda g: g.retrieve_intent("pi_fake")),
        ([answer(500, echo)] * 3, lambda g: create(g)),
        ([answer(200, b"<html>not json</html>")], lambda g: create(g)),
        ([("stall", 2)], lambda g: create(g)),
        ([("drop",)], lambda g: create(g)),
    ]


def test_the_api_key_never_appears_in_an_error(gateway, fake):
    for script, call in _failures():
        fake.then(*script)
        with pytest.raises(GatewayError) as caught:
            call(gateway)
        error = caught.value
        told = " ".join([str(error), repr(error), error.message, str(error.gateway_message),
                         "".join(traceback.format_exception(error))])
        assert API_KEY not in told, told
    refused = make_gateway(f"http://127.0.0.1:{closed_port()}")
    with pytest.raises(GatewayError) as caught:
        create(refused)
    assert API_KEY not in "".join(traceback.format_exception(caught.value))


def test_list_transactions_asks_stripe_to_filter_by_date_and_pages_through(gateway, fake):
    start = datetime(2026, 11, 5, tzinfo=UTC)
    end = start + timedelta(days=1)
    inside, outside = int(start.timestamp()) + 60, int(end.timestamp()) + 5

    def charge(cid, created, status="succeeded"):
        return {"id": cid, "object": "charge", "amount": 500, "currency": "cny", "status": status, "paid": True,
                "captured": True, "created": created, "metadata": {},
                "payment_intent": {"id": "pi_" + cid, "object": "payment_intent", "metadata": {"payment_id": cid}}}

    fake.then(
        answer(200, {"object": "list", "has_more": True, "data": [charge("a", outside), charge("b", inside)]}),
        answer(200, {"object": "list", "has_more": False, "data": [charge("c", inside, status="failed")]}),
        answer(200, {"object": "list", "has_more": False, "data": [
            {"id": "re_1", "object": "refund", "amount": 200, "currency": "cny", "status": "succeeded",
             "created": inside + 1, "payment_intent": "pi_b", "metadata": {}}]}),
    )

    found = gateway.list_transactions(start, end)

    assert [(t.kind, t.id, t.intent_id, t.payment_id, t.amount, t.currency) for t in found] == [
        ("charge", "b", "pi_b", "b", 500, "CNY"), ("refund", "re_1", "pi_b", None, 200, "CNY")]
    assert found[0].created_at == datetime.fromtimestamp(inside, UTC)
    first, second, refunds = fake.seen("GET")
    assert ("created[gte]", str(int(start.timestamp()))) in first["form"]
    assert ("created[lt]", str(int(end.timestamp()))) in first["form"]
    assert ("limit", "100") in first["form"] and ("expand[]", "data.payment_intent") in first["form"]
    assert ("starting_after", "b") in second["form"]
    assert refunds["path"] == "/v1/refunds"
