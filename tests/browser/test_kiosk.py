"""The kiosk in a real Chromium with a touch screen, driven by taps only, portrait and landscape.

Each test enrols its own terminal through the one-time link (as staff would)
and pays violations of its own vehicle, so tests do not depend on each other.
The server runs in this process: tests read the database to prove what the
screen says (channel, terminal, cancellations) and adjust timings in app.config
(the kiosk page reads them when it loads).
"""
import re

import pytest
from playwright.sync_api import expect
from sqlalchemy import select, update

from finepay.extensions import db
from kiosk.models import KioskVisit, Terminal
from kiosk.services import enrol_terminal
from payments.gateways import GatewayError
from payments.gateways.sandbox import SandboxReaderAction
from payments.models import Payment
from tests.browser.conftest import SCREENSHOTS, VIEWPORTS
from tests.browser.kiosk_helpers import (
    add_vehicle,
    assert_kiosk_rules,
    enrol,
    open_violations,
    pay_on_reader,
    private_traces,
    shot,
    tap,
    type_plate,
    type_vin,
)
from violations.models import Violation

pytestmark = pytest.mark.browser


# --- the tests ---------------------------------------------------------------------


def test_unenrolled_browser_is_refused(screen, kiosk_server):
    response = screen.goto(kiosk_server.url + "/kiosk")

    assert response.status == 401
    expect(screen.locator("h1")).to_have_text("This screen is not an enrolled FinePay kiosk.")
    assert screen.locator("#screen").count() == 0  # no kiosk screens at all
    assert screen.locator("script").count() == 0
    api = screen.evaluate("""() => fetch('/kiosk/api/sessions', {method: 'POST',
        headers: {'Content-Type': 'application/json'}, body: '{}'}).then(r => r.json().then(j => [r.status, j.code]))""")
    assert api == [401, "terminal_missing"]
    shot(screen, "refused")


def test_enrolment_link_works_once(screen, kiosk_server, browser):
    with kiosk_server.app.app_context():
        enrolment = enrol_terminal(f"once-{screen.orientation}", "test", base_url=kiosk_server.url)
        db.session.remove()
    screen.goto(enrolment.url)
    screen.locator("#enrol-button").tap()
    expect(screen.locator("[data-screen=welcome]")).to_be_visible()

    other = browser.new_context(viewport=VIEWPORTS[screen.orientation], has_touch=True)
    try:
        page = other.new_page()
        response = page.goto(enrolment.url)
        assert response.status == 404
        expect(page.locator("h1")).to_contain_text("not valid")
        page.orientation = screen.orientation
        shot(page, "enrol-used")
        assert page.goto(kiosk_server.url + "/kiosk").status == 401
    finally:
        other.close()
    credential = [c for c in screen.context.cookies() if c["name"] == "finepay_kiosk"]
    assert len(credential) == 1 and credential[0]["httpOnly"] and credential[0]["sameSite"] == "Strict"
    assert credential[0]["path"] == "/kiosk"


def test_full_payment_from_welcome_to_printed_receipt(screen, kiosk_server, timings):
    timings["KIOSK_RECEIPT_SECONDS"] = 8
    # A kiosk browser prints silently (--kiosk-printing); headless Chromium would keep the job
    # open, so count the calls instead and print to PDF below.
    screen.add_init_script("window.print = function () { window.printed = (window.printed || 0) + 1; };")
    vehicle = add_vehicle(kiosk_server.app)
    terminal_id = enrol(kiosk_server, screen, f"pay-{screen.orientation}")
    history = screen.evaluate("history.length")
    assert_kiosk_rules(screen)
    shot(screen, "welcome")

    open_violations(screen, vehicle, shoot=True)
    rows = screen.locator("[data-action=toggle]")
    expect(rows).to_have_count(3)
    # 200.00 + (150.00 + 5 days x 4.50) + (50.00 + 15 days x 1.50)
    expect(screen.locator("[data-role=selected-total]")).to_have_text("CN¥445.00")
    assert_kiosk_rules(screen)
    shot(screen, "violations")
    rows.nth(2).tap()  # leave one out: the total follows
    expect(rows.nth(2)).to_have_attribute("aria-checked", "false")
    expect(screen.locator("[data-role=selected-total]")).to_have_text("CN¥372.50")
    shot(screen, "violations-one-left-out")

    pay_on_reader(screen, shoot=True)
    expect(screen.locator("[data-screen=reader] .kstep")).to_have_text("Step 5 of 5")  # paying is a step too
    expect(screen.locator("#reader-title")).to_have_text("Pay CN¥372.50 on the card reader")
    expect(screen.locator(".ksim h2")).to_have_text("Sandbox card reader simulation")
    assert_kiosk_rules(screen)
    shot(screen, "reader")

    tap(screen, "[data-outcome=approve]")
    expect(screen.locator("[data-outcome=succeeded]")).to_be_visible()
    receipt_number = screen.locator("#result-receipt-number").inner_text()
    assert_kiosk_rules(screen)
    shot(screen, "result-approved")

    tap(screen, "[data-path='/receipt']")
    expect(screen.locator("[data-screen=receipt]")).to_be_visible()
    expect(screen.locator("#kiosk-receipt")).to_have_attribute("data-printed", "1")
    assert screen.evaluate("window.printed") == 1  # window.print() ran, once
    expect(screen.locator("#receipt-number")).to_have_text(receipt_number)
    expect(screen.locator("#receipt-total")).to_have_text("CN¥372.50")
    expect(screen.locator("#kiosk-receipt .kqr svg")).to_have_count(1)  # the QR code of the online receipt
    # and the official e-receipt's, issued once the payment settled (payments.ereceipt_requests)
    expect(screen.locator("#kiosk-receipt #ereceipt-in-force svg")).to_have_count(1)
    expect(screen.locator(".kreceipt-url")).to_contain_text(f"/receipts/{receipt_number}")
    assert_kiosk_rules(screen)
    shot(screen, "receipt")
    screen.emulate_media(media="print")
    shot(screen, "receipt-print")
    pdf = screen.pdf(prefer_css_page_size=True)  # what the print dialog sends to the receipt printer
    screen.emulate_media(media="screen")
    pages = re.findall(rb"/MediaBox \[0 0 ([\d.]+) ([\d.]+)\]", pdf)
    assert len(pages) == 1 and abs(float(pages[0][0]) - 80 / 25.4 * 72) < 1, pages  # one 80 mm wide page
    (SCREENSHOTS / f"kiosk-{screen.orientation}-receipt.pdf").write_bytes(pdf)

    with kiosk_server.app.app_context():
        payment = db.session.execute(select(Payment).where(Payment.receipt_number == receipt_number)).scalar_one()
        assert (payment.channel, payment.terminal_id, payment.status) == ("kiosk", terminal_id, "succeeded")
        assert payment.amount_received == 37250
        db.session.remove()

    # Back to welcome by itself after the receipt, with nothing of this driver left.
    expect(screen.locator("[data-screen=welcome]")).to_be_visible(timeout=10_000)
    traces, _found = private_traces(screen, vehicle, extra=[receipt_number])
    assert traces == {}
    assert screen.evaluate("history.length") == history


def test_the_step_counter_counts_every_step_in_chinese_too(screen, kiosk_server):
    vehicle = add_vehicle(kiosk_server.app, fines=(20000,))
    enrol(kiosk_server, screen, f"steps-{screen.orientation}")
    tap(screen, "[data-action=language][data-locale=zh_CN]")
    expect(screen.locator("html")).to_have_attribute("lang", "zh-CN")

    tap(screen, "#start")
    expect(screen.locator("[data-screen=plate] .kstep")).to_have_text("第 1 步，共 5 步")
    type_plate(screen, vehicle.plate)
    tap(screen, "[data-action=submit-plate]")
    expect(screen.locator("[data-screen=vin] .kstep")).to_have_text("第 2 步，共 5 步")
    type_vin(screen, vehicle.vin)
    tap(screen, "[data-action=submit-vin]")
    expect(screen.locator("[data-screen=violations] .kstep")).to_have_text("第 3 步，共 5 步")
    pay_on_reader(screen, waiting="等待刷卡…")

    expect(screen.locator("[data-screen=reader] .kstep")).to_have_text("第 5 步，共 5 步")
    assert_kiosk_rules(screen)
    shot(screen, "zh_CN-step-reader")


def test_decline_then_retry_pays(screen, kiosk_server):
    vehicle = add_vehicle(kiosk_server.app, fines=(10000,))
    terminal_id = enrol(kiosk_server, screen, f"decline-{screen.orientation}")
    open_violations(screen, vehicle)
    pay_on_reader(screen)

    tap(screen, "[data-outcome=decline]")
    expect(screen.locator("[data-outcome=failed]")).to_be_visible()
    expect(screen.locator("#result-message")).to_contain_text("Your card was declined")
    assert_kiosk_rules(screen)
    shot(screen, "result-declined")

    tap(screen, "[data-action=retry-payment]")
    expect(screen.locator("[data-screen=reader]")).to_be_visible()
    tap(screen, "[data-outcome=card_removed]")
    expect(screen.locator("#result-message")).to_contain_text("The card was removed")
    shot(screen, "result-card-removed")

    tap(screen, "[data-action=retry-payment]")
    expect(screen.locator("[data-screen=reader]")).to_be_visible()
    tap(screen, "[data-outcome=timeout]")
    expect(screen.locator("#result-message")).to_contain_text("No card was presented in time")
    shot(screen, "result-timeout")

    tap(screen, "[data-action=retry-payment]")
    tap(screen, "[data-outcome=approve]")
    expect(screen.locator("[data-outcome=succeeded]")).to_be_visible()

    with kiosk_server.app.app_context():
        payments = db.session.execute(select(Payment).where(Payment.plate == vehicle.plate)).scalars().all()
        # One payment, four attempts on the reader, paid once.
        assert [(p.status, p.confirm_attempts, p.channel, p.terminal_id) for p in payments] == [
            ("succeeded", 4, "kiosk", terminal_id)]
        db.session.remove()


def test_giving_up_after_a_decline_frees_the_violations_and_a_new_payment_works(screen, kiosk_server):
    vehicle = add_vehicle(kiosk_server.app, fines=(10000, 5000))
    enrol(kiosk_server, screen, f"back-{screen.orientation}")
    open_violations(screen, vehicle)
    pay_on_reader(screen)
    tap(screen, "[data-outcome=decline]")

    tap(screen, "[data-outcome=failed] [data-action=cancel-payment]")
    expect(screen.locator("[data-screen=violations]")).to_contain_text("The payment was cancelled. Nothing was charged.")
    expect(screen.locator("[data-action=toggle][aria-checked=true]")).to_have_count(2)  # the same selection
    assert_kiosk_rules(screen)
    shot(screen, "violations-after-cancel")
    pay_on_reader(screen)
    tap(screen, "[data-outcome=approve]")
    expect(screen.locator("[data-outcome=succeeded]")).to_be_visible()

    with kiosk_server.app.app_context():
        payments = db.session.execute(select(Payment).where(Payment.plate == vehicle.plate)
                                      .order_by(Payment.created_at)).scalars().all()
        assert [p.status for p in payments] == ["canceled", "succeeded"]
        db.session.remove()


def test_idle_reset_mid_payment_cancels_it_and_leaves_nothing(screen, kiosk_server, timings):
    timings["KIOSK_IDLE_SECONDS"] = 3
    timings["KIOSK_PROMPT_SECONDS"] = 3
    vehicle = add_vehicle(kiosk_server.app)
    enrol(kiosk_server, screen, f"idle-{screen.orientation}")
    history = screen.evaluate("history.length")
    open_violations(screen, vehicle)

    # "Still there?" appears; a tap keeps the visit.
    expect(screen.locator("#idle-prompt")).to_be_visible(timeout=6_000)
    shot(screen, "idle-prompt")
    tap(screen, "#still-here")
    expect(screen.locator("#idle-prompt")).to_be_hidden()
    expect(screen.locator("[data-screen=violations]")).to_be_visible()

    pay_on_reader(screen)
    with kiosk_server.app.app_context():
        payment = db.session.execute(select(Payment).where(Payment.plate == vehicle.plate)).scalar_one()
        assert payment.status == "processing"
        db.session.remove()

    # Nobody touches the screen again: prompt, then the full reset.
    expect(screen.locator("#idle-prompt")).to_be_visible(timeout=6_000)
    expect(screen.locator("[data-screen=welcome]")).to_be_visible(timeout=10_000)
    shot(screen, "after-idle-reset")

    traces, found = private_traces(screen, vehicle)
    assert traces == {}, f"left behind: {traces}"
    assert found["local"] == "{}" and found["session"] == "{}" and found["cookie"] == ""
    assert [c["name"] for c in screen.context.cookies()] == ["finepay_kiosk"]
    assert screen.evaluate("history.length") == history  # replaced, never pushed
    with kiosk_server.app.app_context():
        payment = db.session.execute(select(Payment).where(Payment.plate == vehicle.plate)).scalar_one()
        assert payment.status == "canceled"  # cancelled at the gateway before the visit ended
        action = db.session.execute(select(SandboxReaderAction).where(
            SandboxReaderAction.intent_id == payment.gateway_intent_id)).scalar_one()
        assert action.status == "canceled"
        visits = db.session.execute(select(KioskVisit).join(Terminal).where(
            Terminal.name == f"idle-{screen.orientation}")).scalars().all()
        assert visits and all(v.ended_at and v.plate is None and v.vin_last6 is None for v in visits)
        db.session.remove()


def test_reader_unavailable_shows_a_calm_screen_and_retries_by_itself(screen, kiosk_server, monkeypatch):
    vehicle = add_vehicle(kiosk_server.app, fines=(10000,))
    enrol(kiosk_server, screen, f"broken-{screen.orientation}")
    open_violations(screen, vehicle)
    tap(screen, "[data-action=review]")
    gateway = kiosk_server.app.extensions["finepay.gateways"]["sandbox"]

    def reader_off(*args, **kwargs):
        raise GatewayError("reader offline", code="reader_unavailable", retryable=True, status=503)

    monkeypatch.setattr(gateway, "start_reader_payment", reader_off)
    tap(screen, "[data-action=pay]")
    failure = screen.locator("[data-screen=failure]")
    expect(failure).to_be_visible()
    expect(failure.locator("h1:visible")).to_have_text("The card reader is not responding")
    expect(failure).to_contain_text("Other ways to pay")
    expect(failure).to_contain_text(kiosk_server.url + "/")
    assert_kiosk_rules(screen)
    shot(screen, "failure-reader")

    monkeypatch.undo()  # the reader is back: the screen carries on by itself
    expect(screen.locator("[data-screen=reader]")).to_be_visible(timeout=5_000)


def test_unreachable_database_page_retries_by_itself(screen, kiosk_server, monkeypatch):
    from sqlalchemy.exc import OperationalError

    enrol(kiosk_server, screen, f"nodb-{screen.orientation}")

    def database_down(*args, **kwargs):
        raise OperationalError("SELECT 1", {}, Exception("connection refused"))

    monkeypatch.setattr("kiosk.services.authenticate", database_down)
    response = screen.goto(kiosk_server.url + "/kiosk")
    assert response.status == 503
    expect(screen.locator("h1")).to_have_text("This kiosk is paused for a moment")
    assert "Traceback" not in screen.content()
    shot(screen, "failure-database")
    monkeypatch.undo()
    expect(screen.locator("[data-screen=welcome]")).to_be_visible(timeout=15_000)  # the page refreshed itself


def test_physical_keyboard_types_too(screen, kiosk_server):
    vehicle = add_vehicle(kiosk_server.app, fines=(10000,))
    enrol(kiosk_server, screen, f"keys-{screen.orientation}")
    tap(screen, "#start")
    expect(screen.locator("#plate-input")).to_be_focused()
    screen.keyboard.type("蒙b·" + vehicle.plate[2:])
    expect(screen.locator("#plate-input")).to_have_value(vehicle.plate)
    screen.keyboard.press("Enter")
    expect(screen.locator("#vin-input")).to_be_focused()
    screen.keyboard.type(vehicle.vin.lower() + "Q")  # Q can never be in a VIN: ignored
    expect(screen.locator("#vin-input")).to_have_value(vehicle.vin)
    screen.keyboard.press("Enter")
    expect(screen.locator("[data-screen=violations]")).to_be_visible()


def test_wrong_vin_says_so_without_telling_which_fact_is_wrong(screen, kiosk_server):
    vehicle = add_vehicle(kiosk_server.app, fines=(10000,))
    enrol(kiosk_server, screen, f"novin-{screen.orientation}")
    tap(screen, "#start")
    type_plate(screen, vehicle.plate)
    tap(screen, "[data-action=submit-plate]")
    type_vin(screen, "A12345")
    tap(screen, "[data-action=submit-vin]")
    expect(screen.locator("[data-role=error]")).to_have_text(
        re.compile("No violations were found for this plate and VIN code"))
    assert_kiosk_rules(screen)
    shot(screen, "vin-no-match")
    tap(screen, "[data-action=goto][data-path='/screens/plate']")
    expect(screen.locator("#plate-input")).to_have_value(vehicle.plate)


def test_a_notice_number_proves_the_vehicle_when_the_vehicle_licence_is_not_at_hand(screen, kiosk_server):
    vehicle = add_vehicle(kiosk_server.app, fines=(10000,))
    enrol(kiosk_server, screen, f"notice-{screen.orientation}")
    tap(screen, "#start")
    type_plate(screen, vehicle.plate)
    tap(screen, "[data-action=submit-plate]")
    tap(screen, "[data-action=goto][data-path='/screens/notice']")
    expect(screen.locator("[data-screen=notice]")).to_be_visible()
    expect(screen.locator("[data-action=submit-notice]")).to_be_disabled()
    for char in vehicle.notices[0]:
        tap(screen, f'[data-screen=notice] [data-key="{char}"]')
    expect(screen.locator("#notice-input")).to_have_value(vehicle.notices[0])
    assert_kiosk_rules(screen)
    shot(screen, "notice")
    tap(screen, "[data-action=submit-notice]")
    expect(screen.locator("[data-screen=violations]")).to_be_visible()
    expect(screen.locator("[data-screen=violations]")).to_contain_text(vehicle.descriptions[0])


def test_the_finance_bureaus_payment_code_proves_the_vehicle_from_the_notice_screen(screen, kiosk_server):
    vehicle = add_vehicle(kiosk_server.app, fines=(10000,))
    code = "150203" + vehicle.notices[0][4:]  # 包头 (the demo region), then the notice's 14 digits
    with kiosk_server.app.app_context():
        db.session.execute(update(Violation).where(Violation.notice_number == vehicle.notices[0])
                           .values(payment_code=code))
        db.session.commit()
        db.session.remove()
    enrol(kiosk_server, screen, f"payment-code-{screen.orientation}")
    tap(screen, "#start")
    type_plate(screen, vehicle.plate)
    tap(screen, "[data-action=submit-plate]")
    tap(screen, "[data-action=goto][data-path='/screens/notice']")
    tap(screen, "[data-action=goto][data-path='/screens/payment']")
    expect(screen.locator("[data-screen=payment]")).to_be_visible()
    expect(screen.locator("[data-screen=payment] [data-key=A]")).to_have_count(0)  # digits only
    for char in code[:-1]:
        tap(screen, f'[data-screen=payment] [data-key="{char}"]')
    expect(screen.locator("[data-action=submit-payment]")).to_be_disabled()  # 19 of the 20 digits
    tap(screen, f'[data-screen=payment] [data-key="{code[-1]}"]')
    expect(screen.locator("#payment-input")).to_have_value(code)
    assert_kiosk_rules(screen)
    shot(screen, "payment-code")
    tap(screen, "[data-action=submit-payment]")
    expect(screen.locator("[data-screen=violations]")).to_be_visible()
    expect(screen.locator("[data-screen=violations]")).to_contain_text(vehicle.descriptions[0])
