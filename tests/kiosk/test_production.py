"""The terminal credential cookie with production settings."""
import pytest

from kiosk import services


@pytest.fixture
def app_config():
    """Secure cookies, as FINEPAY_ENV=production sets them."""
    return {"SESSION_COOKIE_SECURE": True}


def test_the_credential_cookie_is_secure_in_production(client):
    enrolment = services.enrol_terminal("hall-1", "test")

    response = client.post(enrolment.path, base_url="https://localhost")

    cookie = response.headers["Set-Cookie"]
    assert "Secure" in cookie and "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/kiosk" in cookie
