"""The staff console in a real Chromium: sign-in, yesterday's reconciliation with its differences,
the CSV download, a refund, signing out (every browser), and the lockout. CSRF is on; screenshots go to tests/artifacts/screenshots/staff-*.

A supervisor is created with the CLI, as the README says; yesterday's ledger and sandbox ledger are
seeded with one payment settled behind the gateway's back and one charge the ledger never saw.
"""
import re
import uuid
from datetime import timedelta
from types import SimpleNamespace

import pytest
from playwright.sync_api import expect
from sqlalchemy import delete, select, update

from finepay.extensions import db
from payments import services as payment_services
from payments.gateways import gateway_named
from payments.gateways.sandbox import SandboxIntent
from payments.models import Payment
from staff.models import LoginAttempt
from tests.browser.helpers import PASSWORD, sign_in
from tests.factories import make_violation
from tests.live import app_on_copy, serving
from tests.staff.helpers import csv_rows
from violations.fees import business_day_window, business_today

pytestmark = pytest.mark.browser

DESKTOP = {"viewport": {"width": 1280, "height": 900}, "locale": "en-US", "accept_downloads": True}
VIN = "C77777"


def _violation(fine):
    return make_violation(notice_number=f"7700{uuid.uuid4().int % 10**12:012d}", plate="京A77777", vin_last6=VIN,
                          fine=fine, decision_date=business_today("Asia/Shanghai"))


def _pay(fine):
    """Pay a violation through the real services (sandbox), returning the payment."""
    violation = _violation(fine)
    payment = payment_services.start_payment(plate="京A77777", vin_last6=VIN, violation_ids=[violation.id],
                                             idempotency_key=f"seed-{uuid.uuid4().hex}")
    return payment_services.confirm_payment(payment.id, "pm_card_visa")


def _seed_yesterday(app):
    """Two good payments, one settled behind the gateway's back, one charge the ledger never saw: all yesterday."""
    with app.app_context():
        yesterday = business_today("Asia/Shanghai") - timedelta(days=1)
        morning = business_day_window(yesterday, "Asia/Shanghai")[0] + timedelta(hours=9)
        good = [_pay(20000), _pay(15000)]
        behind = payment_services.start_payment(
            plate="京A77777", vin_last6=VIN,
            violation_ids=[_violation(8000).id],
            idempotency_key=f"seed-{uuid.uuid4().hex}")
        gateway = gateway_named("sandbox")
        ghost = gateway.create_intent(payment_id=None, amount=5000, currency="CNY", idempotency_key="seed-ghost")
        gateway.confirm_intent(ghost.id, payment_method="pm_card_visa", idempotency_key="seed-ghost-confirm")
        for n, payment in enumerate(good):
            at = morning + timedelta(hours=2 * n, minutes=7)
            db.session.execute(update(Payment).where(Payment.id == payment.id).values(paid_at=at))
            db.session.execute(update(SandboxIntent).where(SandboxIntent.id == payment.gateway_intent_id)
                               .values(captured_at=at))
        db.session.execute(update(Payment).where(Payment.id == behind.id).values(
            status="succeeded", amount_received=behind.amount, paid_at=morning + timedelta(hours=5),
            receipt_number="FP-0000-BEHI-NDTH-EBAK"))
        db.session.execute(update(SandboxIntent).where(SandboxIntent.id == ghost.id)
                           .values(captured_at=morning + timedelta(hours=7, minutes=30)))
        db.session.commit()
        return SimpleNamespace(yesterday=yesterday, good=[p.id for p in good], behind=behind.id, ghost=ghost.id)


@pytest.fixture(scope="module")
def console(sqlite_template, tmp_path_factory):
    """FinePay with CSRF on, a CLI-made supervisor and yesterday's seeded ledger, served on 127.0.0.1."""
    app = app_on_copy(sqlite_template, tmp_path_factory.mktemp("staff-live"), WTF_CSRF_ENABLED=True)
    runner = app.test_cli_runner()
    for args, stdin in ((["demo", "seed"], None),
                        (["staff", "create-user", "alice", "--role", "supervisor", "--password-stdin"], PASSWORD),
                        (["staff", "create-user", "locky", "--role", "clerk", "--password-stdin"], PASSWORD)):
        result = runner.invoke(args=args, input=stdin and stdin + "\n")
        assert result.exit_code == 0, result.output
    seeded = _seed_yesterday(app)
    with serving(app) as url:
        yield SimpleNamespace(url=url, app=app, **vars(seeded))


@pytest.fixture
def desk(browser):
    """A fresh desktop-sized page with its own cookies."""
    context = browser.new_context(**DESKTOP)
    context.set_default_timeout(10_000)
    page = context.new_page()
    try:
        yield page
    finally:
        context.close()


def test_sign_in_shows_the_dashboard(console, desk, screenshot):
    desk.goto(f"{console.url}/staff/reconciliation")
    expect(desk).to_have_url(f"{console.url}/staff/login?next=/staff/reconciliation")
    desk.fill("#username", "alice")
    desk.fill("#password", "not the password")
    desk.click("#sign-in")
    expect(desk.locator("#sign-in-failed")).to_have_text("Wrong username or password.")
    expect(desk.locator("#password")).to_have_value("")
    screenshot(desk, "staff-sign-in-failed")

    desk.fill("#username", "Alice")
    desk.fill("#password", PASSWORD)
    desk.click("#sign-in")

    expect(desk).to_have_url(f"{console.url}/staff/reconciliation")
    expect(desk.locator("#signed-in-as")).to_contain_text("alice")
    desk.click("nav.staff-nav >> text=Dashboard")
    expect(desk.locator("h1")).to_contain_text("Today")
    expect(desk.locator("#recent-payments tbody tr")).to_have_count(5)
    screenshot(desk, "staff-dashboard")

    desk.click("#sign-out")
    expect(desk).to_have_url(f"{console.url}/staff/login")
    expect(desk.locator(".flashes")).to_contain_text("You are signed out.")


def test_yesterdays_report_explains_each_difference_and_exports_it(console, desk, screenshot):
    sign_in(desk, console.url)
    desk.click("nav.staff-nav >> text=Reconciliation")
    expect(desk.locator("#start")).to_have_value(console.yesterday.isoformat())
    expect(desk.locator("#fetched")).to_contain_text("have not been fetched")

    desk.click("#refresh-gateway")

    # Yesterday's three, and today's demo payments too between 00:00 and 01:00 (the fetch's margin of an hour).
    expect(desk.locator(".flashes")).to_contain_text(re.compile(r"Fetched [36] transactions from Card \(sandbox\)\."))
    expect(desk.locator("#classification h2")).to_have_text("2 differences to explain")
    expect(desk.locator("#count-matched td[data-count]")).to_have_text("2")
    behind = desk.locator(f'#discrepancies tr[data-payment="{console.behind}"]')
    expect(behind).to_have_attribute("data-classification", "ledger_only")
    expect(behind).to_contain_text("no charge at the gateway for this settled payment")
    ghost = desk.locator('#discrepancies tr[data-classification="gateway_only"]')
    expect(ghost).to_contain_text(console.ghost)
    expect(ghost).to_contain_text("no payment in the ledger for this charge")
    expect(desk.locator("#net-difference")).to_contain_text("explained line by line below")
    expect(desk.locator("#hourly-chart rect.bar-ledger")).to_have_count(24)
    screenshot(desk, "staff-reconciliation")

    with desk.expect_download() as info:
        desk.click("#csv-link")
    download = info.value
    assert download.suggested_filename == f"reconciliation-{console.yesterday.isoformat()}.csv"
    rows = csv_rows(open(download.path(), encoding="utf-8", newline="").read())
    assert sorted(r["classification"] for r in rows) == ["gateway_only", "ledger_only", "matched", "matched"]
    (behind_row,) = [r for r in rows if r["payment_id"] == console.behind]
    assert behind_row["classification"] == "ledger_only" and behind_row["gateway_amount"] == ""


def test_a_supervisor_refunds_a_payment_and_the_receipt_shows_it(console, desk, screenshot):
    sign_in(desk, console.url)
    payment_id = console.good[1]
    desk.fill("#q", payment_id)
    desk.press("#q", "Enter")
    expect(desk.locator("#payment-id")).to_have_text(payment_id)
    expect(desk.locator("#amount")).to_have_value("")
    expect(desk.locator("#refund-order")).to_contain_text("in the order listed here")
    expect(desk.locator("#audit-trail")).to_contain_text("payment.succeeded")

    desk.fill("#amount", "999.00")
    desk.fill("#reason", "Decision withdrawn on appeal")
    desk.click("#refund-button")
    expect(desk.locator("#amount-error")).to_contain_text("larger than what is left to refund")
    screenshot(desk, "staff-refund-error")

    desk.fill("#amount", "")
    desk.locator("#refund-lines input[type=checkbox]").first.check()
    desk.click("#refund-button")

    # Nothing has moved yet: the confirm screen repeats the violation, the amount and the reason.
    expect(desk.locator("h1")).to_have_text("Confirm the refund")
    expect(desk.locator("#refund-confirm-lines tbody tr")).to_have_count(1)
    expect(desk.locator("#refund-confirm-lines")).to_contain_text("owed again")
    expect(desk.locator("#refund-confirm-amount")).to_contain_text("150.00")
    expect(desk.locator("#refund-confirm-reason")).to_have_text("Decision withdrawn on appeal")
    screenshot(desk, "staff-refund-confirm")
    desk.click("#refund-confirm-button")

    expect(desk.locator(".flashes")).to_contain_text("1 violation is owed again.")
    expect(desk.locator("h1 .badge")).to_have_text("refunded")
    expect(desk.locator("#refunds tbody")).to_contain_text("staff:alice")
    expect(desk.locator("#refunds tbody")).to_contain_text("Decision withdrawn on appeal")
    expect(desk.locator("#audit-trail")).to_contain_text("refund.succeeded")
    expect(desk.locator("#refund-form")).to_have_count(0)
    screenshot(desk, "staff-payment-refunded")

    desk.click("#receipt-link")
    expect(desk.locator(".refund-row")).to_contain_text("150.00")
    expect(desk.locator("#receipt")).to_contain_text("Refunded: this fine is owed again")


def test_a_refund_is_confirmed_in_chinese_and_cancelling_moves_nothing(console, desk, screenshot):
    sign_in(desk, console.url)
    desk.goto(f"{console.url}/staff/payments/{console.good[0]}")
    desk.locator("nav.lang-switch a[lang=zh-CN]").click()
    expect(desk.locator("html")).to_have_attribute("lang", "zh-CN")
    expect(desk.locator("#amount")).to_have_value("")
    expect(desk.locator("#refund-lines input[type=checkbox]:checked")).to_have_count(0)
    desk.fill("#amount", "10.00")
    desk.fill("#reason", "滞纳金减免（复议决定）")
    desk.click("#refund-button")

    expect(desk.locator("h1")).to_have_text("确认退款")
    expect(desk.locator("#refund-confirm-summary")).to_contain_text("尚未退款")
    expect(desk.locator("#refund-confirm-amount")).to_contain_text("10.00")
    expect(desk.locator("#refund-confirm-lines")).to_contain_text("仍为已缴")
    expect(desk.locator("#refund-confirm-reason")).to_have_text("滞纳金减免（复议决定）")
    screenshot(desk, "zh_CN-staff-refund-confirm")
    desk.click("#refund-cancel")

    expect(desk.locator("#payment-refunded")).to_contain_text("0.00")
    expect(desk.locator("#refunds tbody")).to_contain_text("无退款")


def test_signing_out_ends_every_browser_and_every_saved_cookie(console, browser, desk, screenshot):
    other_browser = browser.new_context(**DESKTOP)
    try:
        other = other_browser.new_page()
        sign_in(other, console.url)
        expect(other.locator("#signed-in-as")).to_contain_text("alice")
        saved = other_browser.cookies()
        sign_in(desk, console.url)

        desk.click("#signed-in-as")
        expect(desk.locator("h1")).to_have_text("Your sessions")
        assert desk.locator("#session-list tr.session-row").count() >= 2
        expect(desk.locator("#session-list tr.session-current")).to_have_count(1)
        screenshot(desk, "staff-sessions")
        desk.click("#sign-out")

        expect(desk).to_have_url(f"{console.url}/staff/login")
        expect(desk.locator(".flashes")).to_contain_text("You are signed out.")
        other.goto(f"{console.url}/staff/keys")
        expect(other).to_have_url(f"{console.url}/staff/login?next=/staff/keys")
        replayed = browser.new_context(**DESKTOP)
        replayed.add_cookies(saved)
        page = replayed.new_page()
        page.goto(f"{console.url}/staff/")
        expect(page).to_have_url(f"{console.url}/staff/login?next=/staff/")
        replayed.close()
    finally:
        other_browser.close()


def test_a_clerk_reads_charges_refunds_and_net_apart_in_chinese_and_an_empty_days_chart(console, browser, screenshot):
    with console.app.app_context():
        today = business_today("Asia/Shanghai")
        paid = [_pay(20000), _pay(30000)]
        payment_services.refund_payment(paid[1].id, 5000, reason="复议撤销", actor="test")
    context = browser.new_context(**{**DESKTOP, "locale": "zh-CN"})
    try:
        page = context.new_page()
        sign_in(page, console.url)
        page.goto(f"{console.url}/staff/reconciliation?start={today}&end={today}")
        page.click("#refresh-gateway")

        figures = page.locator("#gateway-totals-row")
        expect(figures.locator('[data-figure="refunds"]')).to_have_text(re.compile(r"^−¥[\d,]+\.\d\d$"))
        expect(figures.locator('[data-figure="charges"]')).to_have_text(re.compile(r"^¥[\d,]+\.\d\d$"))
        expect(page.locator("#classification thead")).to_contain_text("收款")
        expect(page.locator("#classification thead")).to_contain_text("退款")
        screenshot(page, "staff-reconciliation-zh")

        empty = today - timedelta(days=20)
        page.goto(f"{console.url}/staff/reconciliation?start={empty}&end={empty}")
        expect(page.locator("#hourly-chart .chart-empty")).to_have_text("所选日期内没有入账或扣款")
        expect(page.locator("#hourly-chart")).to_contain_text("¥100.00")
        screenshot(page, "staff-reconciliation-empty-zh")
    finally:
        context.close()


def test_after_five_failures_the_owner_signs_in_by_keyboard_once_the_check_is_done(console, desk, screenshot):
    # Last in this module: the failures from 127.0.0.1 also spend the address's budget for a while.
    with console.app.app_context():
        db.session.execute(delete(LoginAttempt))  # forget the earlier test's wrong password
        db.session.commit()
    for _ in range(4):
        sign_in(desk, console.url, "locky", "wrong password")
        expect(desk.locator("#sign-in-failed")).to_be_visible()

    sign_in(desk, console.url, "locky", "wrong password")
    expect(desk.locator("#sign-in-challenge")).to_contain_text("must do a short check")
    expect(desk.locator("#challenge-status")).to_be_visible()
    screenshot(desk, "staff-sign-in-challenge")
    # The keyboard only: the page puts the cursor in the password field; type it and press Enter.
    expect(desk.locator("#password")).to_be_focused()
    desk.keyboard.type(PASSWORD)
    desk.keyboard.press("Enter")

    expect(desk).to_have_url(f"{console.url}/staff/", timeout=60_000)
    with console.app.app_context():
        attempts = db.session.execute(select(LoginAttempt.success)).scalars().all()
    assert attempts == [False] * 5 + [True]
