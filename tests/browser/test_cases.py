"""Contests in a real Chromium, in Chinese and in English: a driver contests a violation with a photo, a
supervisor upholds it and the driver sees the new due date; another is cancelled and leaves the payable list.
CSRF is on; screenshots go to tests/artifacts/screenshots/cases-*.
"""
import re
from datetime import timedelta
from types import SimpleNamespace

import pytest
from playwright.sync_api import expect

from finepay.formatting import day
from tests.browser.helpers import PASSWORD, Audit, add_vehicle, sign_in
from tests.cases.helpers import png_bytes
from tests.conftest import in_app_language, translated
from tests.live import app_on_copy, serving
from violations.fees import business_today

pytestmark = pytest.mark.browser

LOCALES = {"zh_CN": "zh-CN", "en": "en-US"}
PLATE, VIN = "蒙B·66601", "D66601"


@pytest.fixture(scope="module", params=sorted(LOCALES))
def site(request, sqlite_template, tmp_path_factory):
    """FinePay in one language, CSRF on, a CLI-made supervisor, and a vehicle with two overdue fines."""
    folder = tmp_path_factory.mktemp(f"cases-{request.param}")
    app = app_on_copy(sqlite_template, folder, WTF_CSRF_ENABLED=True, DEFAULT_LOCALE=request.param,
                      EVIDENCE_DIR=str(folder / "evidence"))
    result = app.test_cli_runner().invoke(
        args=["staff", "create-user", "alice", "--role", "supervisor", "--password-stdin"], input=PASSWORD + "\n")
    assert result.exit_code == 0, result.output
    vehicle = add_vehicle(app, PLATE, VIN, [("660100000001", "Speeding", 20000, 40, True),
                                            ("660100000002", "Running a red light", 20000, 30, True)])
    with serving(app) as url:
        yield SimpleNamespace(url=url, app=app, vehicle=vehicle, locale=LOCALES[request.param], code=request.param)


@pytest.fixture
def pages(browser, site):
    """A driver's page and a supervisor's page, each with its own cookies, in the site's language."""
    # The driver's page lets axe in (bypass_csp); the console keeps its CSP, under which the thumbnails must load.
    contexts = [browser.new_context(viewport={"width": 1280, "height": 900}, locale=site.locale, bypass_csp=bypass)
                for bypass in (True, False)]
    for context in contexts:
        context.set_default_timeout(10_000)
    try:
        yield SimpleNamespace(driver=contexts[0].new_page(), staff=contexts[1].new_page())
    finally:
        for context in contexts:
            context.close()


def look_up(page, site):
    page.goto(site.url + "/")
    page.fill("#plate", PLATE)
    page.fill("#vin_last6", VIN)
    page.locator("form.card button.primary").first.click()
    page.wait_for_load_state()


def contest(page, site, violation_id, photo=None, audit=None):
    look_up(page, site)
    page.click(f"#contest-{violation_id}")
    if audit:
        audit(page, "form")
    page.select_option("#reason", "facts_wrong")
    page.fill("#statement", "我当时不在现场，车辆停在小区地下车库，照片为证。The car was parked at home.")
    if photo:
        page.set_input_files("#evidence", files=[photo])
    page.click("#file-case")
    number = page.locator("#case-number").inner_text().strip()
    assert re.fullmatch(r"[0-9A-Z]{12}", number)
    if audit:
        audit(page, "filed")
    return number


def decide(page, site, number, outcome, reason):
    page.goto(f"{site.url}/staff/cases")
    page.click(f"#case-{number} a")
    page.check(f"#outcome-{outcome}")
    page.fill("#reason", reason)
    page.click("#decide-button")
    expect(page.locator("#case-status")).to_have_text(re.compile(r"\S"))


def test_contest_with_a_photo_upheld_then_another_cancelled(pages, site, tmp_path, screenshot, axe):
    driver, staff = pages.driver, pages.staff
    audit = Audit(f"a11y-{site.code}-cases", {})
    first, second = site.vehicle.ids["660100000001"], site.vehicle.ids["660100000002"]
    photo = tmp_path / "evidence.png"
    photo.write_bytes(png_bytes(40, 30))

    number = contest(driver, site, first, {"name": "parked.png", "mimeType": "image/png",
                                           "buffer": photo.read_bytes()}, audit)
    screenshot(driver, f"cases-{site.code}-filed")
    look_up(driver, site)
    expect(driver.locator(f"#under-contest-{first}")).to_contain_text(number)
    expect(driver.locator(f"#select-{first}")).to_have_count(0)

    sign_in(staff, site.url)
    staff.goto(f"{site.url}/staff/cases")
    expect(staff.locator(f"#case-{number}")).to_be_visible()
    staff.click(f"#case-{number} a")
    thumbnail = staff.locator("#evidence img")
    expect(thumbnail).to_have_count(1)
    assert thumbnail.evaluate("img => img.complete && img.naturalWidth") == 40
    screenshot(staff, f"cases-{site.code}-staff-case")
    decide(staff, site, number, "upheld", "The camera photo clearly shows this car.")

    driver.goto(f"{site.url}/cases/check")
    driver.fill("#plate", PLATE)
    driver.fill("#vin_last6", VIN)
    driver.fill("#case_number", number)
    driver.click("#check-case")
    with in_app_language(site.app):
        due = day(business_today("Asia/Shanghai") + timedelta(days=15))
    expect(driver.locator("#new-due-date")).to_contain_text(due)
    expect(driver.locator("#decision-reason")).to_have_text("The camera photo clearly shows this car.")
    screenshot(driver, f"cases-{site.code}-upheld")
    audit(driver, "status")
    look_up(driver, site)
    expect(driver.locator(f"#select-{first}")).to_be_visible()  # payable again
    expect(driver.locator("#violation-660100000001 .due")).to_contain_text(due)

    other = contest(driver, site, second)
    decide(staff, site, other, "cancelled", "Signal was out of order that day.")
    look_up(driver, site)
    expect(driver.locator(f"#select-{second}")).to_have_count(0)
    expect(driver.locator("#violation-660100000002")).to_contain_text(
        translated(site.app, "This notice was cancelled by the traffic police. Nothing is owed."))
    screenshot(driver, f"cases-{site.code}-cancelled")
    audit.assert_clean()
