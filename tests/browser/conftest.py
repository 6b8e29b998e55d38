"""Browser fixtures: FinePay served on 127.0.0.1 with demo data, and one Chromium per session.

Playwright cannot download its own browsers here, so the tests drive Debian's
Chromium. Without it they are skipped loudly, or fail when REQUIRE_BROWSER=1
(as .ci/run sets).
"""
import os
from pathlib import Path

import pytest

from tests.live import app_on_copy, serving

CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
REQUIRE_BROWSER = os.environ.get("REQUIRE_BROWSER") == "1"
SCREENSHOTS = Path(__file__).resolve().parents[1] / "artifacts" / "screenshots"

# A mid-range Android phone: the narrowest screen the driver pages must fit.
PHONE = {
    "viewport": {"width": 360, "height": 740},
    "device_scale_factor": 2,
    "is_mobile": True,
    "has_touch": True,
    "locale": "en-US",
}


# Browser tests submit real forms (CSRF on) and look up many times (limits out of reach).
BROWSER_CONFIG = {"WTF_CSRF_ENABLED": True, "LOOKUP_RATE_LIMIT": "1000/minute", "PLATE_FAILURE_RATE_LIMIT": "1000/hour"}


@pytest.fixture(scope="session")
def live_server(sqlite_template, tmp_path_factory):
    """FinePay on a copy of the migrated SQLite database, demo data loaded, CSRF on; yields its base URL."""
    app = app_on_copy(sqlite_template, tmp_path_factory.mktemp("live"), **BROWSER_CONFIG)
    result = app.test_cli_runner().invoke(args=["demo", "seed"])
    assert result.exit_code == 0, result.output
    with serving(app) as url:
        yield url


@pytest.fixture(scope="session")
def browser():
    """One headless Chromium for the whole session."""
    if not os.path.exists(CHROMIUM):
        message = (
            f"Chromium not found at {CHROMIUM}: the browser tests DID NOT RUN "
            "(install Debian's chromium, e.g. `make browser`)"
        )
        if REQUIRE_BROWSER:
            pytest.fail(message)
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def phone(browser):
    """A fresh phone-sized page (own cookies), with every request URL it made in `page.requested_urls`."""
    context = browser.new_context(**PHONE)
    context.set_default_timeout(10_000)
    page = context.new_page()
    page.requested_urls = []
    page.on("request", lambda request: page.requested_urls.append(request.url))
    try:
        yield page
    finally:
        context.close()


@pytest.fixture(scope="session")
def screenshot():
    """Save a full-page screenshot under tests/artifacts/screenshots/ and return its path."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)

    def take(page, name):
        path = SCREENSHOTS / f"{name}.png"
        page.screenshot(path=str(path), full_page=True)
        return path

    return take
