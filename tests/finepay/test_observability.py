"""Observability: request ids in responses, logs and the audit log; JSON logs; a protected metrics endpoint."""
import io
import json
import logging

import pytest
from sqlalchemy import select

from finepay import observability
from finepay.audit import AuditEntry
from finepay.extensions import db
from tests.conftest import make_app
from tests.payments.helpers import confirm, create_ok, overdue_violation

LOOPBACK = {"REMOTE_ADDR": "127.0.0.1"}
OUTSIDE = {"REMOTE_ADDR": "203.0.113.7"}


def test_every_response_has_a_request_id(client):
    first = client.get("/healthz").headers["X-Request-ID"]
    second = client.get("/healthz").headers["X-Request-ID"]

    assert len(first) == 32 and first != second


def test_a_sane_request_id_from_the_proxy_is_kept_and_a_strange_one_replaced(client):
    kept = client.get("/healthz", headers={"X-Request-ID": "nginx-5f2b9c1e-abc"})
    replaced = client.get("/healthz", headers={"X-Request-ID": "<script>alert(1)</script>"})

    assert kept.headers["X-Request-ID"] == "nginx-5f2b9c1e-abc"
    assert replaced.headers["X-Request-ID"] != "<script>alert(1)</script>"


def test_audit_entries_carry_the_request_id_that_wrote_them(client):
    violation = overdue_violation()
    response = client.post(
        "/api/v1/payments", headers={"Idempotency-Key": "k-obs-0001", "X-Request-ID": "req-audit-000001"},
        json={"plate": violation.plate, "vin_last6": violation.vin_last6, "violation_ids": [violation.id]},
    )

    assert response.status_code == 201
    entries = db.session.execute(
        select(AuditEntry).where(AuditEntry.subject_id == response.get_json()["id"])
    ).scalars().all()
    assert entries and {e.request_id for e in entries} == {"req-audit-000001"}


def test_log_lines_are_json_with_the_request_id_and_secrets_masked():
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(observability.JSONFormatter(observability.Redactor(["my-very-secret-key"])))
    logger = logging.getLogger("finepay.test.json")
    logger.addHandler(handler)
    token = observability.bind_request_id("req-json-0000001")
    try:
        logger.warning("charging with %s and key %s", "pm_card_visa", "my-very-secret-key")
    finally:
        observability._request_id.reset(token)
        logger.removeHandler(handler)

    line = json.loads(stream.getvalue())
    assert line["request_id"] == "req-json-0000001"
    assert line["level"] == "WARNING" and line["logger"] == "finepay.test.json"
    assert "pm_card_visa" not in line["message"] and "my-very-secret-key" not in line["message"]


def test_the_access_log_masks_receipt_numbers_enrolment_codes_and_query_strings():
    mask = observability.AccessLogger.mask

    assert mask("/receipts/FP-AB12-CD34-EF56-GH78") == "/receipts/[redacted]"
    assert mask("/kiosk/enrol/s3cr3t-code") == "/kiosk/enrol/[redacted]"
    assert mask("GET /?plate=B12345&vin=A12345 HTTP/1.1") == "GET / HTTP/1.1"


@pytest.mark.parametrize("environ, headers, allowed", [
    (LOOPBACK, {}, True),
    (LOOPBACK, {"X-Forwarded-For": "203.0.113.7"}, False),  # came through the public proxy
    (OUTSIDE, {}, False),
    (OUTSIDE, {"Authorization": "Bearer wrong"}, False),
    (OUTSIDE, {"Authorization": "Bearer scrape-token-123456"}, True),
])
def test_metrics_are_for_operators_only(database_url, environ, headers, allowed):
    app = make_app(database_url, METRICS_TOKEN="scrape-token-123456")
    response = app.test_client().get("/metrics", environ_base=environ, headers=headers)

    assert response.status_code == (200 if allowed else 404)
    if allowed:
        assert "finepay_http_request_duration_seconds" in response.get_data(as_text=True)


def test_metrics_count_requests_payments_and_sync_lag(client):
    violation = overdue_violation()
    payment = create_ok(client, [violation.id])
    assert confirm(client, payment["id"]).get_json()["status"] == "succeeded"
    create_ok(client, [overdue_violation(notice_number="150203202611099999").id])  # left open

    text = client.get("/metrics", environ_base=LOOPBACK).get_data(as_text=True)

    assert 'finepay_payment_outcomes_total{outcome="succeeded"} 1.0' in text
    assert 'finepay_payments{status="succeeded"} 1.0' in text
    assert 'finepay_payments{status="created"} 1.0' in text
    assert "finepay_sync_lag_seconds " in text
    assert "finepay_database_up 1.0" in text
    assert 'endpoint="payments_api.PaymentConfirm"' in text or "PaymentConfirm" in text or "confirm" in text
    assert "finepay_gateway_request_duration_seconds_count" in text


def test_readyz_reports_redis_when_limits_live_there(database_url):
    # An address where nothing listens: the database is fine, Redis is not.
    app = make_app(database_url, RATELIMIT_STORAGE_URI="redis://127.0.0.1:1/0")
    response = app.test_client().get("/readyz")

    assert response.status_code == 200
    assert response.get_json() == {"status": "degraded", "checks": {"database": "ok", "redis": "unreachable"}}


def test_readyz_without_redis_checks_only_the_database(client):
    assert client.get("/readyz").get_json() == {"status": "ready", "checks": {"database": "ok"}}
