"""Requests without a valid terminal credential get no kiosk: 401/403, audited, never a kiosk screen."""
import secrets
from datetime import timedelta

import pytest

from finepay.extensions import db
from kiosk import services
from tests.kiosk.helpers import audit_actions, enrol

ENDPOINTS = [
    ("post", "/kiosk/api/sessions", {}),
    ("post", "/kiosk/api/heartbeat", {}),
    ("post", "/kiosk/api/plate", {"plate": "蒙B12345"}),
    ("get", "/kiosk/api/payment", None),
    ("get", "/kiosk/api/status", None),
]


def forged(client):
    client.set_cookie(services.COOKIE_NAME, secrets.token_urlsafe(32), path="/kiosk")


def malformed(client):
    client.set_cookie(services.COOKIE_NAME, "' OR 1=1 --", path="/kiosk")


def expired(client):
    kiosk = enrol(client)
    kiosk.terminal.enrolled_at -= timedelta(days=366)
    db.session.commit()


def revoked(client):
    enrol(client)
    services.revoke_terminal("hall-1", "test")


CASES = [
    ("missing", lambda client: None, 401),
    ("invalid", forged, 401),
    ("invalid", malformed, 401),
    ("expired", expired, 401),
    ("revoked", revoked, 403),
]


@pytest.mark.parametrize(("reason", "prepare", "status"), CASES, ids=["missing", "forged", "malformed", "expired",
                                                                      "revoked"])
@pytest.mark.parametrize(("method", "path", "body"), ENDPOINTS, ids=[e[1] for e in ENDPOINTS])
def test_the_kiosk_api_refuses_a_bad_credential_with_json(client, reason, prepare, status, method, path, body):
    prepare(client)

    response = getattr(client, method)(path, json=body) if body is not None else getattr(client, method)(path)

    assert response.status_code == status
    assert response.get_json()["code"] == f"terminal_{reason}"
    assert audit_actions()[-1][0] == "kiosk.credential_refused"
    assert audit_actions()[-1][1]["reason"] == reason


@pytest.mark.parametrize(("reason", "prepare", "status"), CASES, ids=["missing", "forged", "malformed", "expired",
                                                                      "revoked"])
def test_the_kiosk_page_refuses_a_bad_credential_with_a_plain_page(client, reason, prepare, status):
    prepare(client)

    response = client.get("/kiosk")

    body = response.get_data(as_text=True)
    assert response.status_code == status
    assert response.mimetype == "text/html"
    assert 'id="refused"' in body and 'id="screen"' not in body and "kiosk.js" not in body
    action, details = audit_actions()[-1]
    assert action == "kiosk.credential_refused" and details["reason"] == reason and details["count"] == 1


def test_a_refused_credential_is_never_written_to_the_audit_log(client):
    token = secrets.token_urlsafe(32)
    client.set_cookie(services.COOKIE_NAME, token, path="/kiosk")

    client.get("/kiosk")

    assert token not in repr(audit_actions())


def test_the_credential_is_only_sent_to_kiosk_paths(client):
    enrol(client)

    assert client.get_cookie(services.COOKIE_NAME, path="/") is None
    assert client.get_cookie(services.COOKIE_NAME, path="/kiosk") is not None


def test_an_enrolled_kiosk_gets_the_kiosk_page(client):
    enrol(client)

    response = client.get("/kiosk")

    body = response.get_data(as_text=True)
    assert response.status_code == 200
    assert 'id="screen"' in body and "Touch here to start" in body
    assert "<script>" not in body and "style=" not in body and "<a " not in body  # CSP-ready: no inline code
    assert response.headers["Cache-Control"] == "no-store"
    assert "script-src 'self'" in response.headers["Content-Security-Policy"]
    assert response.headers["X-Frame-Options"] == "DENY"
