"""Security hardening: headers on every response, cookie flags, size limits, nothing secret shown."""
import logging
import re
from pathlib import Path

import pytest

from finepay import security
from tests.conftest import make_app
from tests.factories import make_violation

ROOT = Path(__file__).resolve().parents[2]
PRODUCTION = {"FINEPAY_ENV": "production", "SECRET_KEY": "p" * 48, "SESSION_COOKIE_SECURE": True,
              "ALLOW_SANDBOX_IN_PRODUCTION": True}
STRIPE_KEY = "sk_test_SECRETkey0000000000000000000042"
WEBHOOK_SECRET = "whsec_SECRETwebhook00000000000000000042"
PAGES = ["/", "/api/v1/lookups", "/api/openapi.json", "/healthz", "/readyz", "/no/such/page", "/staff/login",
         "/static/css/app.css", "/receipts/FP-0000-0000-0000-0000", "/api/v1/payments/nope"]


def csp_directives(header):
    return dict((part.strip().split(" ", 1) + [""])[:2] for part in header.split(";") if part.strip())


@pytest.mark.parametrize("path", PAGES)
def test_every_response_carries_the_security_headers(client, path):
    response = client.get(path)

    csp = response.headers["Content-Security-Policy"]
    assert "'unsafe-inline'" not in csp and "'unsafe-eval'" not in csp
    assert csp_directives(csp)["frame-ancestors"] == "'none'"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"] in ("same-origin", "no-referrer")
    assert "Strict-Transport-Security" not in response.headers  # development: plain HTTP on a laptop


def test_the_default_policy_allows_only_our_own_scripts_and_styles(client):
    csp = csp_directives(client.get("/").headers["Content-Security-Policy"])

    assert csp["script-src"] == "'self'"
    assert csp["style-src"] == "'self'"
    assert csp["object-src"] == "'none'" and csp["base-uri"] == "'none'"


def test_the_kiosk_keeps_its_own_stricter_policy(client):
    response = client.get("/kiosk")

    csp = csp_directives(response.headers["Content-Security-Policy"])
    assert csp["default-src"] == "'none'"
    assert csp["frame-ancestors"] == "'none'"
    assert response.headers["X-Content-Type-Options"] == "nosniff"


DEFAULT_CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; font-src 'self'; "
               "connect-src 'self'; frame-src 'none'; object-src 'none'; base-uri 'none'; form-action 'self'; "
               "frame-ancestors 'none'")
STRIPE_CSP = ("default-src 'self'; script-src 'self' https://js.stripe.com; style-src 'self'; img-src 'self' data:; "
              "font-src 'self'; connect-src 'self' https://api.stripe.com; "
              "frame-src https://js.stripe.com https://hooks.stripe.com; object-src 'none'; base-uri 'none'; "
              "form-action 'self'; frame-ancestors 'none'")


def test_the_sandbox_adds_nothing_to_the_policy(client):
    assert client.get("/").headers["Content-Security-Policy"] == DEFAULT_CSP


def test_the_stripe_gateway_adds_only_stripe_to_the_policy(database_url):
    app = make_app(database_url, PAYMENT_GATEWAY="stripe", STRIPE_JS_URL="https://js.stripe.com/v3/",
                   STRIPE_API_BASE="https://api.stripe.com")

    csp = app.test_client().get("/").headers["Content-Security-Policy"]

    assert csp == STRIPE_CSP
    assert csp_directives(csp)["script-src"] == "'self' https://js.stripe.com"
    assert csp_directives(csp)["connect-src"] == "'self' https://api.stripe.com"


def test_a_source_is_added_once_and_only_to_a_fetch_directive():
    class App:
        extensions = {}

    app = App()
    security.allow_sources(app, "img-src", "https://maps.example", "https://maps.example")
    security.allow_sources(app, "img-src", "https://maps.example")

    assert csp_directives(security.content_security_policy(app.extensions["finepay.csp_sources"]))["img-src"] == (
        "'self' data: https://maps.example")
    for directive, source in [("default-src", "https://x.example"), ("script-src", "'unsafe-inline'"),
                              ("script-src", "*"), ("connect-src", "https://a.example https://b.example"),
                              ("frame-src", "https://x.example; script-src *")]:
        with pytest.raises(ValueError):
            security.allow_sources(app, directive, source)


def test_templates_contain_no_inline_script_style_or_handlers():
    """What the CSP would block must not be in the pages in the first place."""
    offenders = []
    # FinePay's own templates and those that gateway adapters (and any other package) carry.
    folders = [ROOT / "templates", *(p for p in ROOT.glob("*/**/templates") if not {".venv", "node_modules"} & set(p.parts))]
    for path in (html for folder in folders for html in folder.rglob("*.html")):
        text = path.read_text()
        for pattern in (r"<script(?![^>]*\bsrc=)[^>]*>", r"\sstyle=", r"<style[\s>]", r"\son[a-z]+=[\"']", "javascript:"):
            if re.search(pattern, text, re.IGNORECASE):
                offenders.append(f"{path.relative_to(ROOT)}: {pattern}")
    assert not offenders, offenders


def test_production_sends_hsts_and_secure_cookies(database_url):
    app = make_app(database_url, WTF_CSRF_ENABLED=True, **PRODUCTION)
    client = app.test_client()

    response = client.get("/staff/login")

    assert response.headers["Strict-Transport-Security"].startswith("max-age=63072000")
    cookies = [c for c in response.headers.getlist("Set-Cookie") if c.startswith("session=")]
    assert cookies, response.headers
    assert all("Secure" in c and "HttpOnly" in c and "SameSite=Lax" in c for c in cookies), cookies


def test_an_oversized_body_is_refused_with_413(client):
    response = client.post("/api/v1/lookups", data=b"{" + b" " * (2 * 1024 * 1024) + b"}",
                           content_type="application/json")

    assert response.status_code == 413
    assert response.get_json()["code"] == "payload_too_large"


def test_an_oversized_form_is_refused_with_413(client):
    # A multipart text field over MAX_FORM_MEMORY_SIZE (URL-encoded bodies are bounded by MAX_CONTENT_LENGTH).
    response = client.post("/lookup", data={"plate": "x" * (600 * 1024)}, content_type="multipart/form-data")

    # Werkzeug refuses to hold it in memory; the page then sees no usable form.
    assert response.status_code in (413, 422)
    assert "x" * 1000 not in response.get_data(as_text=True)


def test_production_without_redis_says_so_at_start_up(database_url, caplog):
    with caplog.at_level(logging.WARNING, logger="finepay.security"):
        app = make_app(database_url, RATELIMIT_STORAGE_URI="memory://", **PRODUCTION)

    assert any("RATELIMIT_STORAGE_URI" in w for w in app.extensions["finepay.startup_warnings"])
    assert "rate limits are counted per worker" in caplog.text


def test_production_with_redis_does_not_warn(database_url):
    app = make_app(database_url, RATELIMIT_STORAGE_URI="redis://127.0.0.1:6379/0", **PRODUCTION)

    assert not [w for w in app.extensions["finepay.startup_warnings"] if "RATELIMIT" in w]


def test_nothing_secret_is_rendered_or_logged(database_url, capsys):
    """Walk pages, API answers and error paths with real-looking secrets configured; none comes back."""
    app = make_app(database_url, STRIPE_API_KEY=STRIPE_KEY, STRIPE_WEBHOOK_SECRET=WEBHOOK_SECRET,
                   METRICS_TOKEN="metrics-token-SECRET-42", LOG_FORMAT="json")
    secrets = [STRIPE_KEY, WEBHOOK_SECRET, "metrics-token-SECRET-42", app.config["SECRET_KEY"]]
    client = app.test_client()
    with app.app_context():
        violation = make_violation()
        plate, vin = violation.plate, violation.vin_last6
    answers = [client.get(path) for path in PAGES]
    answers.append(client.post("/api/v1/lookups", json={"plate": plate, "vin_last6": vin}))
    answers.append(client.post("/api/v1/lookups", json={"plate": plate, "vin_last6": "ZZZZZZ"}))
    answers.append(client.post("/api/v1/lookups", data="not json", content_type="application/json"))
    answers.append(client.post("/webhooks/sandbox", data=b"{}", headers={"X-Sandbox-Signature": "t=1,v1=x"}))
    answers.append(client.get("/metrics", headers={"X-Forwarded-For": "203.0.113.9"}))
    # Whatever logs a secret by mistake is masked on the way out.
    logging.getLogger("finepay.test").error("oops %s %s Bearer %s", STRIPE_KEY, WEBHOOK_SECRET,
                                            "metrics-token-SECRET-42")

    logged = capsys.readouterr().err
    for response in answers:
        body = response.get_data(as_text=True) + str(dict(response.headers))
        for secret in secrets:
            assert secret not in body, (response.request.path, secret)
    assert "oops" in logged
    for secret in secrets:
        assert secret not in logged
