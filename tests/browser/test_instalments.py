"""An instalment plan in a real Chromium, in Chinese (the default) and in English: a plan of three, the driver pays
the first two on the results page, one at a time; the third is missed and the page shows the late fee resuming.

Each language serves FinePay from its own copy of the database. "Time passes" by moving the plan's dates (due
dates, when the instalments were paid) back by ten days in the database: the first two were then paid on time
and the third fell due a week ago.
"""
from datetime import timedelta
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import expect
from sqlalchemy import select, update

from finepay.extensions import db
from finepay.formatting import day, format_money
from tests.browser.conftest import BROWSER_CONFIG, PHONE
from tests.browser.helpers import PAY_PAGE, RECEIPT_PAGE, add_vehicle
from tests.conftest import in_app_language, translated
from tests.live import app_on_copy, serving
from violations.fees import business_today
from violations.models import Instalment, InstalmentPlan
from violations.services import approve_plan

pytestmark = pytest.mark.browser

SHIFT = timedelta(days=10)


@pytest.fixture(params=["zh_CN", "en"])
def plan_server(request, sqlite_template, tmp_path_factory):
    """FinePay on its own database copy in one language, CSRF on; yields (base URL, app)."""
    app = app_on_copy(sqlite_template, tmp_path_factory.mktemp(f"plan-{request.param}"),
                      **{**BROWSER_CONFIG, "DEFAULT_LOCALE": request.param})
    with serving(app) as url:
        yield url, app


@pytest.fixture
def phone(browser, plan_server):
    """A phone-sized page whose browser asks for the server's language (zh-CN or en-US)."""
    language = "zh-CN" if plan_server[1].config["DEFAULT_LOCALE"] == "zh_CN" else "en-US"
    context = browser.new_context(**{**PHONE, "locale": language})
    context.set_default_timeout(10_000)
    try:
        yield context.new_page()
    finally:
        context.close()


def look_up(page, base, vehicle):
    page.goto(base + "/")
    page.fill("#plate", vehicle.plate)
    page.fill("#vin_last6", vehicle.vin)
    with page.expect_response(lambda r: urlsplit(r.url).path == "/lookup" and r.request.method == "POST") as info:
        page.locator("form.card button[type=submit]").last.click()
    page.wait_for_load_state()
    assert info.value.status == 200


def pay_next_instalment(page, base, vehicle):
    """Look up, review the one instalment offered, pay it with the sandbox Visa card; return the receipt's text."""
    look_up(page, base, vehicle)
    page.locator("#review-button").click()
    page.wait_for_load_state()
    page.locator("#continue-button").click()
    page.wait_for_url(PAY_PAGE)
    page.locator("#sandbox-methods button").first.click()
    page.wait_for_url(RECEIPT_PAGE)
    return page.locator("main").inner_text()


def test_a_plan_of_three_two_paid_one_missed_shows_the_late_fee_resuming(phone, plan_server, screenshot):
    base, app = plan_server
    locale = app.config["DEFAULT_LOCALE"]
    vehicle = add_vehicle(app, "蒙K·30003", "KV0003", [("150203202611300001", "Speeding", 20000, 20, True)])
    violation_id = vehicle.ids["150203202611300001"]
    with app.app_context():
        today = business_today(app.config["BUSINESS_TIMEZONE"])
        plan = approve_plan(violation_id, due_dates=[today + timedelta(days=d) for d in (1, 2, 3)],
                            actor="supervisor")
        plan_id, amounts = plan.id, [i.amount for i in plan.instalments]
    assert sum(amounts) == 20000 + 3000  # 5 days overdue at approval: 15 % of the fine
    label = {n: translated(app, "Instalment %(number)d of %(count)d", number=n, count=3) for n in (1, 2, 3)}

    look_up(phone, base, vehicle)
    card = phone.locator(f"#plan-{violation_id}")
    expect(card.locator("tr.instalment")).to_have_count(3)
    expect(card).to_contain_text(label[1])
    expect(phone.locator(".plan-kept")).to_be_visible()
    # Only the first instalment is offered, for its own amount.
    expect(phone.locator("input[name=instalment_id]")).to_have_count(1)
    expect(phone.locator("input[name=violation_id]")).to_have_count(0)
    with in_app_language(app):
        first_amount = format_money(amounts[0])
    expect(phone.locator(f"#pay-now-{violation_id}")).to_contain_text(first_amount)
    screenshot(phone, f"instalments-{locale}-1-kept")

    assert label[1] in pay_next_instalment(phone, base, vehicle)
    assert label[2] in pay_next_instalment(phone, base, vehicle)

    # Ten days later: the first two were paid on time, the third fell due a week ago and was not paid.
    with app.app_context():
        for instalment in db.session.execute(select(Instalment).where(Instalment.plan_id == plan_id)).scalars():
            instalment.due_date -= SHIFT
            if instalment.paid_at is not None:
                instalment.paid_at -= SHIFT
        db.session.execute(update(InstalmentPlan).where(InstalmentPlan.id == plan_id)
                           .values(approved_on=InstalmentPlan.approved_on - SHIFT))
        db.session.commit()
        missed_on = today + timedelta(days=3) - SHIFT
        days = (today - missed_on).days
    resumed = round(amounts[2] * 0.03 * days)  # 3 % a day of what remains, from the day after it fell due

    look_up(phone, base, vehicle)
    rows = phone.locator(f"#plan-{violation_id} tr.instalment")
    expect(rows.nth(0).locator(".instalment-status")).to_contain_text(translated(app, "Paid"))
    expect(rows.nth(1).locator(".instalment-status")).to_contain_text(translated(app, "Paid"))
    expect(rows.nth(2).locator(".instalment-status")).to_have_text(translated(app, "Missed"))
    with in_app_language(app):
        expect(rows.nth(2).locator(".instalment-late-fee")).to_have_text(format_money(resumed))
        expect(phone.locator("#violation-150203202611300001 .late-fee")).to_have_text(format_money(3000 + resumed))
        expect(phone.locator(f"#pay-now-{violation_id}")).to_contain_text(format_money(amounts[2] + resumed))
        broken = translated(app, "An instalment due on %(date)s was missed, so the late fee has resumed on what "
                                 "remains to be paid.", date=day(missed_on))
    expect(phone.locator(".plan-broken")).to_have_text(broken)
    screenshot(phone, f"instalments-{locale}-2-missed")
