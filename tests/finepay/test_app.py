"""The app shell: settings, production guard, health probes, error pages."""
import pytest

from finepay.app import create_app
from finepay.settings import DEV_SECRET_KEY, SettingsError, from_env


def test_production_refuses_to_start_with_the_default_secret_key(monkeypatch):
    monkeypatch.setenv("FINEPAY_ENV", "production")
    monkeypatch.delenv("SECRET_KEY", raising=False)

    with pytest.raises(SettingsError, match="SECRET_KEY"):
        create_app()


def test_production_refuses_a_short_secret_key(monkeypatch):
    monkeypatch.setenv("FINEPAY_ENV", "production")
    monkeypatch.setenv("SECRET_KEY", "short")

    with pytest.raises(SettingsError):
        create_app()


def test_production_starts_with_a_real_secret_key(monkeypatch, tmp_path):
    monkeypatch.setenv("FINEPAY_ENV", "production")
    monkeypatch.setenv("SECRET_KEY", "k" * 40)
    monkeypatch.setenv("AUTHORITY_NAME", "包头市公安局交通管理支队")  # test_authority.py: refused without it
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path}/p.sqlite")
    monkeypatch.setenv("PAYMENT_GATEWAY", "stripe")  # production refuses the sandbox (test_sandbox_in_production.py)
    monkeypatch.setenv("STRIPE_API_KEY", "sk_test_123")

    app = create_app()

    assert app.config["SESSION_COOKIE_SECURE"] is True


def test_settings_come_from_the_environment(tmp_path):
    config = from_env(str(tmp_path), {
        "CURRENCY": "usd", "BUSINESS_TIMEZONE": "America/New_York", "LATE_FEE_GRACE_DAYS": "30",
        "DATABASE_URL": "postgresql://u@h/db", "LOOKUP_RATE_LIMIT": "5/minute",
    })

    assert config["CURRENCY"] == "USD"
    assert config["BUSINESS_TIMEZONE"] == "America/New_York"
    assert config["LATE_FEE_GRACE_DAYS"] == 30
    assert config["SQLALCHEMY_DATABASE_URI"] == "postgresql+psycopg://u@h/db"
    assert config["LOOKUP_RATE_LIMIT"] == "5/minute"
    assert config["SECRET_KEY"] == DEV_SECRET_KEY


def test_a_malformed_number_setting_is_a_clear_error(tmp_path):
    with pytest.raises(SettingsError, match="LATE_FEE_GRACE_DAYS"):
        from_env(str(tmp_path), {"LATE_FEE_GRACE_DAYS": "fifteen"})


def test_healthz_touches_no_database(tmp_path):
    app = create_app({"SQLALCHEMY_DATABASE_URI": "postgresql+psycopg://nobody@127.0.0.1:1/none"})

    response = app.test_client().get("/healthz")

    assert response.status_code == 200
    assert response.get_json() == {"status": "ok"}


def test_readyz_reports_a_reachable_database(client):
    response = client.get("/readyz")

    assert response.status_code == 200
    assert response.get_json()["checks"]["database"] == "ok"


def test_readyz_is_503_when_the_database_is_unreachable():
    app = create_app({"SQLALCHEMY_DATABASE_URI": "postgresql+psycopg://nobody@127.0.0.1:1/none?connect_timeout=1"})

    response = app.test_client().get("/readyz")

    assert response.status_code == 503
    assert response.get_json()["checks"]["database"] == "unreachable"


def test_lookup_with_the_database_down_is_a_clean_503():
    app = create_app({"SQLALCHEMY_DATABASE_URI": "postgresql+psycopg://nobody@127.0.0.1:1/none?connect_timeout=1"})

    response = app.test_client().post("/api/v1/lookups", json={"plate": "蒙B12345", "vin_last6": "A12345"})

    assert response.status_code == 503
    assert response.get_json()["code"] == "unavailable"


def test_unknown_page_is_an_html_page_not_json(client):
    response = client.get("/no-such-page")

    assert response.status_code == 404
    assert response.mimetype == "text/html"
    assert "Nothing matches" in response.get_data(as_text=True)


def test_home_page_renders_the_lookup_form(client):
    page = client.get("/").get_data(as_text=True)

    assert 'name="plate"' in page and 'name="vin_last6"' in page and 'name="notice_number"' in page
    assert "No real money moves" in page


def test_behind_a_proxy_the_client_address_comes_from_x_forwarded_for():
    app = create_app({"PROXY_COUNT": 1, "SQLALCHEMY_DATABASE_URI": "sqlite://"})
    seen = []

    @app.get("/whoami-test")
    def whoami():
        from flask import request
        seen.append(request.remote_addr)
        return "ok"

    app.test_client().get("/whoami-test", headers={"X-Forwarded-For": "203.0.113.7"},
                          environ_base={"REMOTE_ADDR": "127.0.0.1"})

    assert seen == ["203.0.113.7"]
