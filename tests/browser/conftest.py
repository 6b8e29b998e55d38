"""Browser fixtures: FinePay served on 127.0.0.1 with demo data (the one Chromium per session is in tests/conftest.py).

Playwright cannot download its own browsers here, so the tests drive Debian's
Chromium. Without it they are skipped loudly, or fail when REQUIRE_BROWSER=1
(as .ci/run sets).
"""
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import REQUIRE_BROWSER, did_not_run
from tests.live import app_on_copy, serving

SCREENSHOTS = Path(__file__).resolve().parents[1] / "artifacts" / "screenshots"
# axe-core from npm (tests/browser/package.json, pinned by its package-lock.json; `make browser` runs `npm ci`).
AXE = Path(__file__).resolve().parent / "node_modules" / "axe-core" / "axe.min.js"

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


@pytest.fixture(scope="session")
def axe(browser):
    """The path of axe.min.js from npm; skipped loudly (or failed under REQUIRE_BROWSER=1) when missing."""
    if not AXE.is_file():
        message = (f"axe-core not found at {AXE}: the accessibility tests DID NOT RUN "
                   "(run `make browser`, which runs `npm ci` in tests/browser/)")
        did_not_run(message, required=REQUIRE_BROWSER)
    return AXE


# --- the kiosk ----------------------------------------------------------------------------

# The kiosk's two screen shapes; every kiosk test runs in both.
VIEWPORTS = {
    "portrait": {"width": 1080, "height": 1920},
    "landscape": {"width": 1280, "height": 1024},
}


@dataclass
class Kiosk:
    """The live server: its base URL and the app (for database checks and timings)."""

    url: str
    app: object


@pytest.fixture(scope="module")
def kiosk_server(sqlite_template, tmp_path_factory):
    """FinePay on a copy of the migrated SQLite database, CSRF on, fast reader polling and retries."""
    app = app_on_copy(sqlite_template, tmp_path_factory.mktemp("kiosk-live"), **BROWSER_CONFIG,
                      KIOSK_POLL_SECONDS=0.3, KIOSK_RETRY_SECONDS=1)
    with serving(app) as url:
        yield Kiosk(url, app)


@pytest.fixture
def timings(kiosk_server):
    """Change kiosk timings for one test (read by the page when it loads); restored afterwards."""
    saved = dict(kiosk_server.app.config)
    yield kiosk_server.app.config
    for key in [k for k in kiosk_server.app.config if k.startswith("KIOSK_")]:
        if key in saved:
            kiosk_server.app.config[key] = saved[key]
        else:
            del kiosk_server.app.config[key]


@pytest.fixture(params=sorted(VIEWPORTS))
def screen(request, browser):
    """A fresh touch-screen browser at kiosk size (own cookies); console errors are collected."""
    context = browser.new_context(viewport=VIEWPORTS[request.param], has_touch=True, locale="en-US",
                                  device_scale_factor=1)
    context.set_default_timeout(10_000)
    page = context.new_page()
    page.orientation = request.param
    page.errors = []
    # Script errors and CSP refusals count; a 4xx/5xx the test provoked ("Failed to load resource") does not.
    page.on("console", lambda message: message.type == "error" and not message.text.startswith(
        "Failed to load resource") and page.errors.append(message.text))
    page.on("pageerror", lambda error: page.errors.append(str(error)))
    try:
        yield page
    finally:
        context.close()
