"""Production never runs the sandbox by accident; a staging copy that does says SANDBOX everywhere."""
import io
import json
import logging

import pytest
from flask import g

from finepay.app import create_app
from finepay.observability import JSONFormatter, configure_logging
from finepay.settings import SettingsError
from payments.schemas import ReceiptSchema
from staff import services as staff_services
from tests.conftest import make_app
from tests.kiosk.helpers import enrol
from tests.payments.helpers import end_session_after_each_request
from tests.staff.helpers import make_supervisor, paid_payment, sign_in_as

STAGING = {"FINEPAY_ENV": "production", "SECRET_KEY": "s" * 48, "ALLOW_SANDBOX_IN_PRODUCTION": True}
MARK = '<strong class="sandbox-mark" lang="en">SANDBOX</strong>'


@pytest.fixture
def production_env(monkeypatch, tmp_path):
    """FINEPAY_ENV=production with a proper secret key; nothing said about the gateway."""
    for name in ("PAYMENT_GATEWAYS", "PAYMENT_GATEWAY", "ALLOW_SANDBOX_IN_PRODUCTION"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("FINEPAY_ENV", "production")
    monkeypatch.setenv("SECRET_KEY", "k" * 40)
    monkeypatch.setenv("AUTHORITY_NAME", "包头市公安局交通管理支队")
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path}/p.sqlite")
    return monkeypatch


def test_production_refuses_to_start_when_no_gateway_is_named(production_env):
    with pytest.raises(SettingsError, match="PAYMENT_GATEWAY"):
        create_app()


def test_production_refuses_to_start_with_the_sandbox_named(production_env):
    production_env.setenv("PAYMENT_GATEWAY", "sandbox")

    with pytest.raises(SettingsError, match="ALLOW_SANDBOX_IN_PRODUCTION"):
        create_app()


def test_production_refuses_to_start_with_the_sandbox_among_several_gateways(production_env):
    production_env.setenv("PAYMENT_GATEWAYS", "stripe,sandbox")
    production_env.setenv("STRIPE_API_KEY", "sk_test_123")
    production_env.setenv("STRIPE_PUBLISHABLE_KEY", "pk_test_123")

    with pytest.raises(SettingsError, match="including sandbox"):
        create_app()


def test_production_starts_with_a_real_gateway_and_says_nothing_of_a_sandbox(production_env):
    production_env.setenv("PAYMENT_GATEWAY", "stripe")
    production_env.setenv("STRIPE_API_KEY", "sk_test_123")
    production_env.setenv("STRIPE_PUBLISHABLE_KEY", "pk_test_123")

    app = create_app()
    page = app.test_client().get("/").get_data(as_text=True)

    assert app.config["SANDBOX"] is False
    assert "SANDBOX" not in page and "sandbox-banner" not in page


def test_a_staging_copy_may_run_the_sandbox_when_it_says_so(production_env):
    production_env.setenv("ALLOW_SANDBOX_IN_PRODUCTION", "1")

    app = create_app()

    assert app.config["SANDBOX"] is True


@pytest.fixture
def app_config():
    """A staging copy: production settings, the sandbox explicitly allowed."""
    return STAGING


@pytest.fixture
def staging(app):
    """A paid payment, a signed-in supervisor, an enrolled kiosk and an API key on the staging copy."""
    @app.before_request
    def _forget_the_previous_user():
        g.pop("_login_user", None)

    end_session_after_each_request(app)
    payment, violation = paid_payment()
    staff = sign_in_as(app.test_client(), make_supervisor())
    kiosk = enrol(app.test_client())
    key = staff_services.create_api_key("authority system", "test")[1]
    return {"payment": payment, "violation": violation, "staff": staff, "kiosk": kiosk.client, "key": key}


def test_every_kind_of_page_on_a_staging_copy_says_sandbox(client, staging):
    payment = staging["payment"]
    https = {"base_url": "https://localhost"}  # production cookies are Secure
    pages = {
        "home": client.get("/", **https),
        "receipt": client.get(f"/receipts/{payment.receipt_number}", **https),
        "lookup results": client.post("/lookup", data={"plate": "蒙B12345", "vin_last6": "A12345"}, **https),
        "not found": client.get("/no/such/page", **https),
        "staff sign-in": client.get("/staff/login", **https),
        "staff console": staging["staff"].get("/staff/", **https),
        "staff payment": staging["staff"].get(f"/staff/payments/{payment.id}", **https),
        "kiosk": staging["kiosk"].get("/kiosk", **https),
    }

    for name, response in pages.items():
        assert response.mimetype == "text/html", name
        assert MARK in response.get_data(as_text=True), name
    assert MARK in pages["receipt"].get_data(as_text=True).split('id="receipt"', 1)[-1]  # on the receipt itself


def test_receipts_payments_and_feed_entries_of_a_staging_copy_say_sandbox(client, staging):
    payment = staging["payment"]

    receipt = client.get(f"/api/v1/receipts/{payment.receipt_number}").get_json()
    state = client.get(f"/api/v1/payments/{payment.id}").get_json()
    feed = client.get("/api/v1/settlements", headers={"X-API-Key": staging["key"]}).get_json()

    assert receipt["sandbox"] is True and state["sandbox"] is True
    assert feed["events"] and all(event["sandbox"] is True for event in feed["events"])


def test_without_the_sandbox_the_json_says_so_too(database_url):
    app = make_app(database_url, PAYMENT_GATEWAY="stripe", STRIPE_API_KEY="sk_test_1", STRIPE_PUBLISHABLE_KEY="pk_1")
    with app.test_request_context():
        dumped = ReceiptSchema().dump({"receipt_number": "FP-0000-0000-0000-0000", "items": [], "refunds": []})
    assert dumped["sandbox"] is False


def test_every_log_line_of_a_staging_copy_says_sandbox(app):
    configure_logging(app)
    handler = next(h for h in logging.getLogger().handlers if isinstance(h.formatter, JSONFormatter))
    stream = io.StringIO()
    original = handler.setStream(stream)
    try:
        logging.getLogger("finepay.test.staging").warning("a payment happened")
        logging.getLogger("payments.services").error("and something else")
    finally:
        handler.setStream(original)

    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert len(lines) == 2 and all(line["sandbox"] == "SANDBOX" for line in lines)
