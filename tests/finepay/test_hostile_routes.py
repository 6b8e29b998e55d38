"""No input answers 500: the hostile values the outside probe found, then every route swept with generated ones.

The sweep enumerates ``app.url_map``, so a route added later is swept too. It
runs as a signed-in supervisor (staff pages), an enrolled kiosk in a visit
(kiosk API) and an anonymous client (everything else), with real ids mixed
into the generated values so that the code behind the lookups runs as well.
"""
import json
import re
import time
from urllib.parse import quote, urlencode

import pytest
from flask import g
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from payments.gateways import gateway_named
from tests.kiosk.helpers import SESSION, enrol, start_visit
from tests.payments.helpers import end_session_after_each_request
from tests.staff.helpers import make_supervisor, paid_payment, sign_in_as

EXAMPLES_PER_ENDPOINT = 12
BIG = 2**63
NAMED = {
    # The probe's reproductions, each a 500 on PostgreSQL (and some on SQLite) before.
    "nul_in_payment_id": ("GET", "/api/v1/payments/%00", None),
    "nul_in_confirm": ("POST", "/api/v1/payments/%00/confirm", {"json": {"payment_method": "pm_card_visa"}}),
    "nul_in_receipt_api": ("GET", "/api/v1/receipts/%00", None),
    "nul_in_receipt_page": ("GET", "/receipts/%00", None),
    "nul_in_pay_page": ("GET", "/pay/%00", None),
    "nul_in_sandbox_page": ("GET", "/sandbox/authenticate/%00", None),
    "nul_in_staff_payment": ("GET", "/staff/payments/%00", None),
    "nul_in_terminal_name": ("POST", "/staff/terminals/%00/revoke", None),
    "nul_in_username": ("POST", "/staff/login", {"data": {"username": "boss\x00", "password": "x"}}),
    "nul_in_search": ("POST", "/staff/search", {"data": {"q": "FP-\x00"}}),
    "huge_violation_id": ("GET", f"/staff/violations/{BIG}", None),
    "huge_void_id": ("POST", f"/staff/violations/{BIG * 10}/void", {"data": {"reason": "because of it"}}),
    "huge_key_id": ("POST", f"/staff/keys/{BIG}/revoke", None),
    "huge_user_id": ("POST", f"/staff/users/{BIG}", {"data": {"role": "clerk"}}),
    "huge_feed_cursor": ("GET", "/api/v1/settlements?after=9999999999999999999", None),
    "huge_audit_cursor": ("GET", "/staff/audit?before=9999999999999999999", None),
    "year_9999_reconciliation": ("GET", "/staff/reconciliation?start=9999-12-31&end=9999-12-31", None),
    "year_9999_reconciliation_csv": ("GET", "/staff/reconciliation.csv?start=9999-12-31", None),
    "year_9999_audit": ("GET", "/staff/audit?start=9999-12-31&end=9999-12-31", None),
    "mixed_violation_ids": ("POST", "/api/v1/payments", {
        "json": {"plate": "蒙B12345", "vin_last6": "A12345", "violation_ids": [1, "2", None]},
        "headers": {"Idempotency-Key": "hostile-mixed-ids"}}),
    "huge_violation_ids": ("POST", "/api/v1/payments", {
        "json": {"plate": "蒙B12345", "vin_last6": "A12345", "violation_ids": [BIG, 10**30]},
        "headers": {"Idempotency-Key": "hostile-huge-ids"}}),
    "nul_in_json_plate": ("POST", "/api/v1/payments", {
        "json": {"plate": "蒙B\x0012345", "vin_last6": "A1234\x00", "violation_ids": [1]},
        "headers": {"Idempotency-Key": "hostile-nul-plate"}}),
}


@pytest.fixture
def app_config():
    """Limits out of reach: the sweep would otherwise spend its examples on 429s."""
    return {"LOOKUP_RATE_LIMIT": "100000/minute", "PLATE_FAILURE_RATE_LIMIT": "100000/hour",
            "STAFF_LOCKOUT_ATTEMPTS": 100000}


@pytest.fixture
def world(app):
    """A paid payment, a signed-in supervisor and an enrolled kiosk in a visit."""
    @app.before_request
    def _forget_the_previous_user():
        g.pop("_login_user", None)

    end_session_after_each_request(app)
    payment, violation = paid_payment()
    supervisor = make_supervisor()
    staff = sign_in_as(app.test_client(), supervisor)
    kiosk = enrol(app.test_client())
    visit = start_visit(kiosk.client)
    return {
        "staff": staff, "supervisor": supervisor, "kiosk": kiosk.client, "visit": visit[SESSION],
        "anonymous": app.test_client(),
        # Real values, so that generated requests also reach the code behind a successful lookup.
        "real": [payment.id, payment.receipt_number, payment.receipt_number.lower(), str(violation.id),
                 payment.gateway_intent_id, "sandbox", "蒙B12345", "A12345", violation.notice_number],
    }


def assert_refused_in_shape(response, path):
    """Below 500, and an API's refusal is FinePay's JSON error shape."""
    text = response.get_data(as_text=True)
    assert response.status_code < 500, f"{response.status_code} for {path!r}: {text[:400]}"
    assert "Traceback" not in text
    if response.status_code >= 400 and path.startswith(("/api/", "/webhooks/", "/kiosk/api/")):
        assert response.mimetype == "application/json", f"{path!r}: {text[:200]}"
        body = response.get_json()
        assert set(body) == {"code", "message", "errors"}, body
        assert isinstance(body["errors"], dict)


def client_for(world, path):
    """The staff client for the console, the kiosk for its pages, anonymous for the rest."""
    if path.startswith("/staff"):
        return world["staff"]
    if path.startswith("/kiosk"):
        return world["kiosk"]
    return world["anonymous"]


@pytest.mark.parametrize("name", NAMED)
def test_a_hostile_value_the_probe_found_is_a_4xx(client, world, name):
    method, path, kwargs = NAMED[name]

    response = client_for(world, path).open(path, method=method, **(kwargs or {}))

    assert 400 <= response.status_code < 500, f"{response.status_code}: {response.get_data(as_text=True)[:300]}"
    assert_refused_in_shape(response, path)


def signed_webhook(payload):
    """A body the sandbox gateway signed, as its notifications are."""
    return {"X-Sandbox-Signature": gateway_named("sandbox").sign_event(payload, int(time.time()))}


@pytest.mark.parametrize("payload", [
    b"[" * 100_000 + b"]" * 100_000,
    b'{"id": "e", "type": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
    json.dumps({"id": "evt_" + "x" * 5000, "type": "payment_intent.succeeded"}).encode(),
    json.dumps({"id": "evt_1", "type": "t" * 5000}).encode(),
    json.dumps({"id": "evt_\u0000", "type": "payment_intent.succeeded"}).encode(),
    json.dumps({"id": "evt_2", "type": "payment_intent.succeeded", "intent_id": ["not", "an", "id"]}).encode(),
], ids=["deep_array", "deep_type", "long_event_id", "long_type", "nul_event_id", "list_intent_id"])
def test_a_signed_webhook_with_a_hostile_body_is_a_400(client, payload):
    response = client.post("/webhooks/sandbox", data=payload, headers=signed_webhook(payload))

    assert response.status_code == 400, response.get_data(as_text=True)[:300]
    assert set(response.get_json()) == {"code", "message", "errors"}


# --- the sweep ----------------------------------------------------------------------------------

HOSTILE_TEXT = ["\x00", "a\x00b", "%00", "\\", "\\x00", "\n", "\r\n", "\u202e", "\ud7ff", "' OR 1=1 --", "<script>",
                "../../etc/passwd", "9" * 19, "9" * 40, str(2**63), "-1", "0", "1e309", "NaN", "9999-12-31",
                "0000-00-00", "10000-01-01", "FP-" + "A" * 40, "x" * 3000, " ", ""]
FIELD_NAMES = ["plate", "vin_last6", "notice_number", "violation_ids", "payment_method", "idempotency_key",
               "username", "password", "next", "q", "start", "end", "before", "after", "limit", "only", "amount",
               "reason", "role", "name", "form_key", "code", "outcome", "active", "action", "actor", "subject",
               "items", "file", "id", "type", "intent_id", "lang"]


def text_values(real):
    """Generated text, the probe's favourites, and real ids."""
    return st.one_of(st.sampled_from(HOSTILE_TEXT), st.sampled_from(real), st.text(max_size=30),
                     st.integers(min_value=-(2**70), max_value=2**70).map(str))


def json_values(real):
    """Any JSON value: scalars (huge integers, NUL strings) and nested lists and objects."""
    scalars = st.one_of(st.none(), st.booleans(), st.integers(min_value=-(2**80), max_value=2**80),
                        st.floats(allow_nan=False, allow_infinity=False), text_values(real))
    return st.recursive(scalars, lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.sampled_from(FIELD_NAMES), inner, max_size=4)), max_leaves=8)


def sweep_targets(app):
    """Every (method, rule) of the app except the static files and the OpenAPI document."""
    targets = []
    for rule in sorted(app.url_map.iter_rules(), key=lambda r: r.rule):
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            targets.append((method, rule))
    return targets


def requests_for(rule, method, real):
    """A strategy of (path, open() keyword arguments) for one rule."""
    path_values = st.fixed_dictionaries({name: text_values(real) for name in rule.arguments})
    query = st.dictionaries(st.sampled_from(FIELD_NAMES), text_values(real), max_size=3)
    form = st.dictionaries(st.sampled_from(FIELD_NAMES), text_values(real), max_size=5)
    body = st.one_of(
        st.builds(lambda b: {"json": b}, st.fixed_dictionaries({}, optional={
            name: json_values(real) for name in FIELD_NAMES[:12]})),
        st.builds(lambda b: {"json": b}, json_values(real)),
        st.builds(lambda f: {"data": f}, form),
        st.builds(lambda raw: {"data": raw, "content_type": "application/json"}, st.binary(max_size=40)),
    ) if method != "GET" else st.just({})
    headers = st.fixed_dictionaries({}, optional={
        "Idempotency-Key": text_values(real).filter(lambda v: "\n" not in v and "\r" not in v and v.isascii()),
        "X-Request-ID": st.sampled_from(["a\\b\"c", "x" * 100, "ok-request-id-1"]),
    })

    def build(values, query_args, body_kwargs, header_values):
        path = rule.rule
        for name, value in values.items():
            path = re.sub(rf"<(?:[^<>:]+:)?{name}>", lambda _m, v=value: quote(v, safe=""), path)
        if query_args:
            path += "?" + urlencode(query_args)
        return path, {"method": method, "headers": header_values, **body_kwargs}

    return st.builds(build, path_values, query, body, headers)


def test_every_route_answers_generated_hostile_input_without_a_5xx(app, world):
    """Each route and method of app.url_map, in turn, with hostile path segments, queries, forms and JSON."""
    figures = {"endpoints": 0, "requests": 0}
    failures = []
    for method, rule in sweep_targets(app):
        if rule.endpoint in ("static", "api-docs.openapi_json"):
            continue
        figures["endpoints"] += 1

        @given(request=requests_for(rule, method, world["real"]))
        # No shrinking: it would spend minutes on one failure; derandomize makes a failure reproducible anyway.
        @settings(max_examples=EXAMPLES_PER_ENDPOINT, deadline=None, derandomize=True, database=None,
                  phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
        def sweep(request):
            path, kwargs = request
            sign_in_as(world["staff"], world["supervisor"])  # a generated sign-out must not end the sweep
            if path.startswith("/kiosk/api/") and SESSION not in kwargs["headers"]:
                kwargs["headers"] = {**kwargs["headers"], SESSION: world["visit"]}
            response = client_for(world, path).open(path, **kwargs)
            figures["requests"] += 1
            assert_refused_in_shape(response, path)

        try:
            sweep()
        except Exception as error:  # noqa: BLE001  (collect every route's failure, then report them all)
            failures.append(f"{method} {rule.rule}: {error}")
    print(f"\n[hostile sweep] endpoints {figures['endpoints']}, requests {figures['requests']}")
    assert figures["endpoints"] >= 55
    assert not failures, "\n\n".join(failures)

