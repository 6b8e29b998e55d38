"""Subscribing to reminders in a real Chromium on a 360 px phone, in Chinese and in English:
prove the vehicle, confirm the code from the outbox, get a reminder in that language, stop from the page.

Screenshots go to tests/artifacts/screenshots/ (notices-<language>-*.png).
"""
from datetime import datetime, time
from zoneinfo import ZoneInfo

import pytest
from flask_babel import force_locale, gettext
from playwright.sync_api import expect
from sqlalchemy import select

from finepay.extensions import db
from notices import services
from notices.models import CODE, Message, Subscription
from tests.browser.conftest import BROWSER_CONFIG, PHONE
from tests.browser.helpers import Audit, add_vehicle, assert_fits
from tests.factories import make_violation
from tests.live import app_on_copy, serving

pytestmark = pytest.mark.browser

# (the browser's language, FinePay's locale, the number typed, plate, VIN code)
RUNS = {
    "zh_CN": ("zh-CN", "139 0013 9001", "蒙L·40001", "ZN0001"),
    "en": ("en-US", "+86 139-0013-9002", "蒙L·40002", "EN0002"),
}


@pytest.fixture(scope="module")
def server(sqlite_template, tmp_path_factory):
    app = app_on_copy(sqlite_template, tmp_path_factory.mktemp("notices"), **BROWSER_CONFIG)
    with serving(app) as url:
        yield url, app


def say(app, locale, message, **variables):
    """What the pages say in ``locale`` (the compiled catalogue's text)."""
    with app.test_request_context(), force_locale(locale):
        return gettext(message, **variables)


@pytest.mark.parametrize("locale", sorted(RUNS))
def test_a_driver_subscribes_gets_a_reminder_and_stops(browser, server, screenshot, axe, locale):
    base, app = server
    browser_language, typed, plate, vin = RUNS[locale]
    digits = "".join(c for c in typed if c.isdigit())[-11:]
    add_vehicle(app, plate, vin, [(f"15020320261200{len(locale)}401", "违反禁令标志", 10000, 40, True)])
    # axe is injected as an inline <script>, which FinePay's CSP (rightly) refuses: bypassed where axe runs.
    context = browser.new_context(**{**PHONE, "locale": browser_language}, bypass_csp=True)
    context.set_default_timeout(10_000)
    page = context.new_page()
    audit = Audit(f"a11y-{locale}-notices", {})
    try:
        page.goto(base + "/")
        page.click("#reminders-link a")
        expect(page.get_by_role("heading", level=1)).to_have_text(say(app, locale, "Reminders by text message"))
        # The messages' language starts as the page's.
        expect(page.locator(f"#language-{locale}")).to_be_checked()
        assert_fits(page)
        audit(page, "subscribe")
        page.fill("#plate", plate)
        page.fill("#vin_last6", vin)
        page.fill("#phone", "12345")
        page.click("#subscribe-button")
        expect(page.locator("#phone-error")).to_have_text(say(
            app, locale, "Enter an 11-digit mainland China mobile number, e.g. 138 0013 8000."))
        audit(page, "subscribe-form-error")
        page.fill("#phone", typed)
        screenshot(page, f"notices-{locale}-1-subscribe")
        page.click("#subscribe-button")

        expect(page.get_by_role("heading", level=1)).to_have_text(say(app, locale, "Enter the code"))
        expect(page.locator("#code-sent")).to_contain_text(f"{digits[:3]}****{digits[-4:]}")
        assert digits not in page.content()
        with app.app_context():
            body = db.session.execute(select(Message.body).where(Message.phone == digits, Message.kind == CODE)
                                      ).scalar_one()
            db.session.remove()
        code = next(word for word in body.replace("，", " ").replace(",", " ").split() if word.isdigit()) \
            if locale == "en" else "".join(c for c in body.split("验证码为")[1][:6])
        page.fill("#code", code)
        audit(page, "code")
        screenshot(page, f"notices-{locale}-2-code")
        page.click("#confirm-button")
        expect(page.get_by_role("heading", level=1)).to_have_text(say(app, locale, "Reminders are on"))
        expect(page.locator("#subscribed")).to_contain_text(plate.replace("·", ""))
        assert_fits(page)
        audit(page, "subscribed")
        screenshot(page, f"notices-{locale}-3-subscribed")

        # A new violation is imported; the next run of `notices send` writes the reminder to the outbox.
        tz = ZoneInfo(app.config["BUSINESS_TIMEZONE"])
        with app.app_context():
            today = datetime.now(tz).date()
            make_violation(plate=plate.replace("·", ""), vin_last6=vin, decision_date=today, fine=20000)
            report = services.send_due(datetime.combine(today, time(10), tz))
            sub = db.session.execute(select(Subscription).where(Subscription.phone == digits)).scalar_one()
            [reminder] = db.session.execute(select(Message).where(Message.subscription_id == sub.id,
                                                                  Message.kind != CODE)).scalars().all()
            assert (report.sent, sub.locale, reminder.status) == (1, locale, "sent")
            assert vin[-4:] in reminder.body and "http" not in reminder.body
            assert ("车辆识别代号" in reminder.body) is (locale == "zh_CN")
            db.session.remove()

        # Stop from the page.
        page.goto(base + "/notices/")
        page.click("#stop-section summary")
        page.fill("#stop-plate", plate)
        page.fill("#stop-vin_last6", vin)
        page.fill("#stop-phone", typed)
        page.click("#stop-button")
        expect(page.locator("#stopped")).to_be_visible()
        audit(page, "stopped")
        screenshot(page, f"notices-{locale}-4-stopped")
        with app.app_context():
            assert db.session.execute(select(Subscription.status).where(Subscription.phone == digits)
                                      ).scalar_one() == "stopped"
            db.session.remove()
        audit.assert_clean()
    finally:
        context.close()


def test_the_code_page_keeps_the_number_out_of_the_url(browser, server):
    base, app = server
    add_vehicle(app, "蒙L·40003", "UR0003", [("150203202612000403", "违反禁令标志", 10000, 40, True)])
    context = browser.new_context(**PHONE)
    page = context.new_page()
    try:
        page.goto(base + "/notices/")
        page.fill("#plate", "蒙L·40003")
        page.fill("#vin_last6", "UR0003")
        page.fill("#phone", "13900139003")
        page.click("#subscribe-button")
        expect(page.locator("#code")).to_be_visible()
        assert "13900139003" not in page.url and "UR0003" not in page.url
    finally:
        context.close()


