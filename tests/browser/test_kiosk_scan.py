"""Scan to pay at the kiosk, in a real Chromium with a touch screen, in the kiosk's default language (Chinese).

The kiosk's gateway here is the test rail of tests/kiosk/scan_gateway.py: its
driver scans a QR code with a phone, and the test pays the order at the rail
as the phone would, so FinePay hears of it only by asking (the kiosk's
polling) or by closing the order (the idle reset).
"""
import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from finepay.extensions import db
from kiosk.models import KioskVisit, Terminal
from payments.gateways import CANCELED, gateway_named
from payments.models import Payment
from tests.browser.conftest import BROWSER_CONFIG, Kiosk
from tests.browser.kiosk_helpers import (
    add_vehicle,
    assert_kiosk_rules,
    enrol,
    open_violations,
    private_traces,
    shot,
    tap,
)
from tests.kiosk import scan_gateway
from tests.live import app_on_copy, serving

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def kiosk_server(sqlite_template, tmp_path_factory):
    """A kiosk server in the production language (zh_CN) whose gateway is paid by scanning, fast polling."""
    with pytest.MonkeyPatch.context() as monkeypatch:
        settings = scan_gateway.install(tmp_path_factory.mktemp("scan-rail"), monkeypatch)
        app = app_on_copy(sqlite_template, tmp_path_factory.mktemp("scan-kiosk"), **BROWSER_CONFIG, **settings,
                          DEFAULT_LOCALE="zh_CN", KIOSK_POLL_SECONDS=0.3, KIOSK_RETRY_SECONDS=1)
        with serving(app) as url:
            yield Kiosk(url, app)


def the_payment(kiosk, vehicle):
    """The vehicle's latest payment, as FinePay records it."""
    with kiosk.app.app_context():
        payment = db.session.execute(select(Payment).where(Payment.plate == vehicle.plate)
                                     .order_by(Payment.created_at.desc())).scalars().first()
        db.session.expunge_all()
        db.session.remove()
        return payment


def at_the_rail(kiosk, call):
    """``call(rail)`` with the scan rail's adapter, as the phone (or the test) reaches it."""
    with kiosk.app.app_context():
        try:
            return call(gateway_named(scan_gateway.NAME))
        finally:
            db.session.remove()


def scan_to_pay(screen):
    """Violations → review → "scan to pay": the code to scan."""
    tap(screen, "[data-action=review]")
    expect(screen.locator("[data-screen=review]")).to_be_visible()
    tap(screen, f"[data-action=pay][data-gateway={scan_gateway.NAME}]")
    expect(screen.locator("[data-screen=scan]")).to_be_visible()
    expect(screen.locator(".kqr-scan svg")).to_be_visible()


def test_scan_to_pay_with_an_idle_reset_in_the_middle(screen, kiosk_server, timings):
    timings["KIOSK_IDLE_SECONDS"] = 3
    timings["KIOSK_PROMPT_SECONDS"] = 3
    # The page asks the rail only after the resets below: what it learns, it learns by closing the order.
    timings["KIOSK_POLL_SECONDS"] = 60
    vehicle = add_vehicle(kiosk_server.app, fines=(20000,))
    enrol(kiosk_server, screen, f"scan-idle-{screen.orientation}")
    expect(screen.locator("#welcome-title")).to_have_text("在此缴纳交通违法罚款")

    # A driver opens the code to scan, then walks away: the order is closed at the rail, then the visit ends.
    open_violations(screen, vehicle)
    scan_to_pay(screen)
    expect(screen.locator("#scan-title")).to_have_text("请用Scan pay (test)扫码缴款 ¥200.00")
    expect(screen.locator("[data-role=scan-status]")).to_have_text("等待您在手机上完成支付…")
    abandoned = the_payment(kiosk_server, vehicle)
    expect(screen.locator("#idle-prompt")).to_be_visible(timeout=6_000)
    expect(screen.locator("[data-screen=welcome]")).to_be_visible(timeout=10_000)
    assert the_payment(kiosk_server, vehicle).status == "canceled"
    assert at_the_rail(kiosk_server, lambda rail: rail.retrieve_intent(abandoned.gateway_intent_id)).status == CANCELED
    traces, _found = private_traces(screen, vehicle)
    assert traces == {}, f"left behind: {traces}"

    # The next one pays on the phone just as "still there?" runs out: the close finds it paid, so the
    # kiosk shows the receipt instead of starting over.
    screen.add_init_script("window.print = function () { window.printed = (window.printed || 0) + 1; };")
    screen.reload()
    open_violations(screen, vehicle)
    scan_to_pay(screen)
    paying = the_payment(kiosk_server, vehicle)
    assert paying.id != abandoned.id and paying.status == "created"
    expect(screen.locator("#idle-prompt")).to_be_visible(timeout=6_000)
    at_the_rail(kiosk_server, lambda rail: rail.pay(paying.gateway_intent_id))
    expect(screen.locator("[data-screen=receipt]")).to_be_visible(timeout=10_000)
    expect(screen.locator("#idle-prompt")).to_be_hidden()
    paid = the_payment(kiosk_server, vehicle)
    assert paid.status == "succeeded"
    expect(screen.locator("#receipt-number")).to_have_text(paid.receipt_number)
    expect(screen.locator("#receipt-total")).to_have_text("¥200.00")
    assert_kiosk_rules(screen)
    shot(screen, "zh_CN-scan-receipt-after-idle")
    with kiosk_server.app.app_context():
        visits = db.session.execute(select(KioskVisit).join(Terminal).where(
            Terminal.name == f"scan-idle-{screen.orientation}").order_by(KioskVisit.started_at)).scalars().all()
        assert visits[0].ended_at is not None and visits[-1].ended_at is None  # the paid visit goes on
        db.session.remove()


@pytest.mark.parametrize("language", ["zh_CN", "en"])
def test_the_phone_pays_and_the_kiosk_moves_on_by_itself(screen, kiosk_server, language):
    screen.add_init_script("window.print = function () { window.printed = (window.printed || 0) + 1; };")
    vehicle = add_vehicle(kiosk_server.app)
    enrol(kiosk_server, screen, f"scan-{language}-{screen.orientation}")
    if language != "zh_CN":
        tap(screen, f"[data-action=language][data-locale={language}]")
        expect(screen.locator("html")).to_have_attribute("lang", "en")
    assert_kiosk_rules(screen)
    shot(screen, f"{language}-scan-welcome")

    open_violations(screen, vehicle)
    tap(screen, "[data-action=review]")
    expect(screen.locator("[data-screen=review]")).to_be_visible()
    assert_kiosk_rules(screen)
    shot(screen, f"{language}-scan-review")
    tap(screen, f"[data-action=pay][data-gateway={scan_gateway.NAME}]")
    expect(screen.locator("[data-screen=scan]")).to_be_visible()
    expect(screen.locator(".kqr-scan svg")).to_be_visible()
    assert_kiosk_rules(screen)
    shot(screen, f"{language}-scan")

    payment = the_payment(kiosk_server, vehicle)
    at_the_rail(kiosk_server, lambda rail: rail.pay(payment.gateway_intent_id))
    expect(screen.locator("[data-outcome=succeeded]")).to_be_visible()
    assert_kiosk_rules(screen)
    shot(screen, f"{language}-scan-paid")
    tap(screen, "[data-path='/receipt']")
    expect(screen.locator("[data-screen=receipt]")).to_be_visible()
    expect(screen.locator("#receipt-number")).to_have_text(the_payment(kiosk_server, vehicle).receipt_number)
