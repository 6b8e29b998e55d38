"""The Stripe adapter owns its settings: read from the environment when it runs, masked in the logs either way."""
from decimal import Decimal

import pytest

from finepay.settings import SettingsError
from payments.gateways import gateway_named
from tests.conftest import make_app

UNSHAPED_KEY = "stripe-key-with-no-known-shape-42"  # masked by value only, not by a token pattern


def test_the_configured_adapter_reads_its_settings_from_the_environment(database_url, monkeypatch):
    monkeypatch.setenv("STRIPE_API_KEY", UNSHAPED_KEY)
    monkeypatch.setenv("STRIPE_READ_TIMEOUT", "7.5")
    monkeypatch.setenv("STRIPE_LIST_CREATED_FILTER", "false")
    monkeypatch.delenv("STRIPE_API_BASE", raising=False)

    app = make_app(database_url, PAYMENT_GATEWAY="stripe")

    assert app.config["STRIPE_API_KEY"] == UNSHAPED_KEY
    assert app.config["STRIPE_READ_TIMEOUT"] == Decimal("7.5")
    assert app.config["STRIPE_LIST_CREATED_FILTER"] is False
    assert app.config["STRIPE_API_BASE"] == "https://api.stripe.com"
    with app.app_context():
        assert gateway_named("stripe").timeout[1] == 7.5
    assert app.extensions["finepay.redactor"](f"key {UNSHAPED_KEY}") == "key [redacted]"


def test_a_value_given_to_create_app_wins_over_the_environment(database_url, monkeypatch):
    monkeypatch.setenv("STRIPE_API_BASE", "http://from-the-environment:8420")

    app = make_app(database_url, PAYMENT_GATEWAY="stripe", STRIPE_API_BASE="http://given:8420")

    assert app.config["STRIPE_API_BASE"] == "http://given:8420"


def test_a_malformed_adapter_setting_is_a_clear_error(database_url, monkeypatch):
    monkeypatch.setenv("STRIPE_MAX_RETRIES", "two")

    with pytest.raises(SettingsError, match="STRIPE_MAX_RETRIES"):
        make_app(database_url, PAYMENT_GATEWAY="stripe")


def test_another_adapters_secret_is_masked_though_it_is_not_configured(database_url):
    app = make_app(database_url, PAYMENT_GATEWAY="sandbox", STRIPE_WEBHOOK_SECRET=UNSHAPED_KEY)

    assert app.config["STRIPE_WEBHOOK_SECRET"] == UNSHAPED_KEY
    assert app.extensions["finepay.redactor"](f"secret {UNSHAPED_KEY}") == "secret [redacted]"
