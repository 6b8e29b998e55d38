"""Which e-receipt issuer runs: the sandbox in development, none until configured in production, never the sandbox
in production by accident, and an unknown name refused."""
import pytest
from sqlalchemy import func, select

from finepay.app import create_app
from finepay.extensions import db
from finepay.settings import SettingsError
from payments.ereceipts import current_issuer
from payments.models import EReceiptRequest
from tests.conftest import make_app
from tests.payments.helpers import confirm, create_ok, fresh_violation


@pytest.fixture
def production_env(monkeypatch, tmp_path):
    """FINEPAY_ENV=production with a real gateway (Stripe's test keys); nothing said about e-receipts."""
    for name in ("ERECEIPT_ISSUER", "ALLOW_SANDBOX_IN_PRODUCTION", "PAYMENT_GATEWAYS"):
        monkeypatch.delenv(name, raising=False)
    for name, value in {"FINEPAY_ENV": "production", "SECRET_KEY": "k" * 40, "AUTHORITY_NAME": "包头市公安局交通管理支队",
                        "DATABASE_URL": f"sqlite:///{tmp_path}/p.sqlite", "PAYMENT_GATEWAY": "stripe",
                        "STRIPE_API_KEY": "sk_test_123", "STRIPE_PUBLISHABLE_KEY": "pk_test_123"}.items():
        monkeypatch.setenv(name, value)
    return monkeypatch


def test_production_runs_without_an_issuer_until_one_is_configured(production_env):
    app = create_app()

    assert app.config["ERECEIPT_ISSUER"] == "none" and app.extensions["finepay.ereceipts"] is None


def test_production_refuses_the_sandbox_issuer_unless_a_staging_copy_allows_it(production_env):
    production_env.setenv("ERECEIPT_ISSUER", "sandbox")
    with pytest.raises(SettingsError, match="ALLOW_SANDBOX_IN_PRODUCTION"):
        create_app()

    production_env.setenv("ALLOW_SANDBOX_IN_PRODUCTION", "1")
    assert create_app().extensions["finepay.ereceipts"].simulated is True


def test_an_issuer_that_is_not_installed_is_refused(database_url):
    with pytest.raises(SettingsError, match="not installed"):
        make_app(database_url, ERECEIPT_ISSUER="provincial")


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize("app_config", [{"ERECEIPT_ISSUER": "none"}])
def test_without_an_issuer_a_payment_asks_for_no_ereceipt_and_the_receipt_shows_none(app, client):
    payment = create_ok(client, [fresh_violation(fine=20000).id])
    paid = confirm(client, payment["id"]).get_json()

    assert current_issuer() is None
    assert db.session.execute(select(func.count()).select_from(EReceiptRequest)).scalar() == 0
    receipt = client.get(f"/api/v1/receipts/{paid['receipt_number']}").get_json()
    assert receipt["ereceipts"] == [] and receipt["ereceipt"] is None and receipt["ereceipt_pending"] is False
    assert 'id="ereceipts"' not in client.get(f"/receipts/{paid['receipt_number']}").get_data(as_text=True)


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_the_openapi_document_describes_the_receipts_ereceipts(client):
    schemas = client.get("/api/openapi.json").get_json()["components"]["schemas"]

    receipt = schemas["Receipt"]["properties"]
    assert {"ereceipts", "ereceipt", "ereceipt_pending"} <= set(receipt)
    ereceipt = schemas["EReceipt"]["properties"]
    assert {"code", "number", "check_code", "issued_at", "payer", "authority", "items", "verification_url",
            "red_flushed", "flushes"} <= set(ereceipt)
    assert "8 digits" in ereceipt["code"]["description"] and "10 digits" in ereceipt["number"]["description"]
