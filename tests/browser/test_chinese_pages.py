"""FinePay in Chinese in a real Chromium: the driver on a 360 px phone (switcher, lookup, review, pay, receipt)
and the kiosk (Chinese for one visit; a kiosk in the default language pays to the printed receipt).

Screenshots of every screen go to tests/artifacts/screenshots/ with zh_CN in their names.
"""
import re
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import BROWSER_CONFIG, PHONE, SCREENSHOTS, Kiosk
from tests.browser.helpers import (
    PAY_PAGE,
    RECEIPT_NUMBER,
    RECEIPT_PAGE,
    add_vehicle,
    assert_fits,
    viewport_shot,
)
from tests.browser.kiosk_helpers import add_vehicle as add_kiosk_vehicle
from tests.browser.kiosk_helpers import assert_kiosk_rules, enrol, open_violations, pay_on_reader, shot, tap
from tests.live import app_on_copy, serving

pytestmark = pytest.mark.browser

CHINESE = re.compile(r"[\u4e00-\u9fff]")


@pytest.fixture(scope="module")
def zh_server(sqlite_template, tmp_path_factory):
    """FinePay on its own database copy, with the production default language (zh_CN)."""
    app = app_on_copy(sqlite_template, tmp_path_factory.mktemp("zh"), **{**BROWSER_CONFIG, "DEFAULT_LOCALE": "zh_CN"})
    with serving(app) as url:
        yield url, app


def test_a_driver_switches_to_chinese_and_pays_to_a_receipt(phone, zh_server, screenshot):
    base, app = zh_server
    vehicle = add_vehicle(app, "蒙L·30001", "ZH0001", [
        ("150203202612000301", "超速 20% 以上未达 50%", 20000, 3, True),
        ("150203202612000302", "违反禁令标志停车", 5000, 20, True),
    ])

    # The phone asks for English (en-US): the page is in English until the driver picks 中文.
    phone.goto(base + "/")
    expect(phone.locator("html")).to_have_attribute("lang", "en")
    switch = phone.locator("nav.lang-switch a[lang=zh-CN]")
    expect(switch).to_have_text("中文")
    switch.click()  # a plain link: no script involved
    phone.wait_for_url(base + "/")
    expect(phone.locator("html")).to_have_attribute("lang", "zh-CN")
    expect(phone.get_by_role("heading", level=1)).to_have_text("查询并缴纳交通违法罚款")
    expect(phone.locator("nav.lang-switch a[aria-current=true]")).to_have_text("中文")
    assert {c["name"]: c["value"] for c in phone.context.cookies()}["lang"] == "zh_CN"
    assert_fits(phone)
    screenshot(phone, "zh_CN-1-lookup")

    phone.fill("#plate", vehicle.plate)
    phone.fill("#vin_last6", vehicle.vin)
    phone.locator("form.card").get_by_role("button", name="查看我的罚款").click()
    phone.wait_for_load_state()
    expect(phone.locator("html")).to_have_attribute("lang", "zh-CN")
    expect(phone.locator("#total-payable")).to_have_text("¥257.50")  # 200.00 + 50.00 + 5 days' 7.50
    expect(phone.locator("main")).to_contain_text("违反禁令标志停车")  # descriptions as imported
    assert_fits(phone)
    expect(phone.locator(".sandbox-banner")).to_contain_text("沙箱环境")
    screenshot(phone, "zh_CN-2-results")
    viewport_shot(phone, "zh_CN-2-results-top")

    phone.get_by_role("button", name="核对并缴纳所选罚款").click()
    phone.wait_for_load_state()
    expect(phone.get_by_role("heading", level=1)).to_have_text("核对缴款信息")
    expect(phone.locator("#total")).to_have_text("¥257.50")
    assert_fits(phone)
    screenshot(phone, "zh_CN-3-review")

    phone.locator("#continue-button").click()
    phone.wait_for_url(PAY_PAGE)
    expect(phone.get_by_role("heading", level=1)).to_have_text("缴纳罚款")
    assert_fits(phone)
    screenshot(phone, "zh_CN-4-pay")

    phone.locator("#sandbox-methods").get_by_role("button", name=re.compile("^可成功支付的 Visa 卡")).click()
    phone.wait_for_url(RECEIPT_PAGE)
    expect(phone.get_by_role("heading", level=1)).to_have_text("缴款收据")
    number = phone.locator("#receipt-number").inner_text().strip()
    assert RECEIPT_NUMBER.match(number), number
    expect(phone.locator("main")).to_contain_text("¥257.50")
    # The authority, not FinePay, heads the page and is the payee; the gateway's number is there to reimburse.
    expect(phone.locator("#authority-name")).to_have_text("包头市公安局交通管理支队")
    expect(phone.locator("#payee")).to_have_text("包头市公安局交通管理支队")
    expect(phone.locator("#paid-by")).to_have_text("银行卡（沙箱）")
    expect(phone.locator("#paid-through")).to_have_text("网上缴款")
    expect(phone.locator("#transaction-number")).to_have_text(re.compile(r"^sch_[0-9a-f]+$"))
    expect(phone.locator("#site-footer")).to_contain_text("12122")
    assert_fits(phone)
    screenshot(phone, "zh_CN-5-receipt")
    viewport_shot(phone, "zh_CN-5-receipt-top")
    phone.set_viewport_size({"width": 1280, "height": 900})
    screenshot(phone, "zh_CN-5-receipt-desktop")
    phone.set_viewport_size(PHONE["viewport"])

    # No screen showed a URL with the plate or the VIN code, and every screen was Chinese.
    for url in phone.requested_urls:
        parts = urlsplit(url)
        assert not vehicle.private.search(parts.path + "?" + parts.query), url
    assert CHINESE.search(phone.locator("body").inner_text())

    # Back to English from the receipt: the switcher returns to the same receipt.
    phone.locator("nav.lang-switch a[lang=en]").click()
    phone.wait_for_url(RECEIPT_PAGE)
    expect(phone.get_by_role("heading", level=1)).to_have_text("Payment receipt")
    expect(phone.locator("html")).to_have_attribute("lang", "en")


# --- the kiosk: 中文 / English on the welcome screen, for one visit only -------------------------------------

def test_the_kiosk_speaks_chinese_for_one_visit(screen, kiosk_server, timings):
    timings["KIOSK_IDLE_SECONDS"] = 3
    vehicle = add_kiosk_vehicle(kiosk_server.app, fines=(20000,))
    enrol(kiosk_server, screen, f"zh-{screen.orientation}")
    history = screen.evaluate("history.length")
    expect(screen.locator("html")).to_have_attribute("lang", "en")  # the suite's default
    expect(screen.locator("[data-action=language][lang=en]")).to_have_attribute("aria-pressed", "true")

    tap(screen, "[data-action=language][data-locale=zh_CN]")
    expect(screen.locator("html")).to_have_attribute("lang", "zh-CN")
    expect(screen.locator("#welcome-title")).to_have_text("在此缴纳交通违法罚款")
    expect(screen.locator("[data-action=language][lang=zh-CN]")).to_have_attribute("aria-pressed", "true")
    assert_kiosk_rules(screen)
    shot(screen, "zh_CN-welcome")

    open_violations(screen, vehicle)
    expect(screen.locator("[data-screen=violations]")).to_contain_text("违法记录")
    expect(screen.locator("[data-screen=violations]")).to_contain_text("¥")
    assert_kiosk_rules(screen)
    shot(screen, "zh_CN-violations")
    assert "lang" not in [c["name"] for c in screen.context.cookies()]

    # Start over: the next driver meets the kiosk's default language.
    tap(screen, "#start-over")
    expect(screen.locator("[data-screen=welcome]")).to_be_visible()
    expect(screen.locator("html")).to_have_attribute("lang", "en")
    assert urlsplit(screen.url).query == ""
    assert screen.evaluate("history.length") == history  # replaced, never pushed

    # A language picked and left without starting a visit also goes back by itself. Long enough
    # in Chinese to be seen on a busy machine (3 s could pass before the page was even looked at).
    timings["KIOSK_IDLE_SECONDS"] = 8
    tap(screen, "[data-action=language][data-locale=zh_CN]")
    expect(screen.locator("html")).to_have_attribute("lang", "zh-CN")
    expect(screen.locator("html")).to_have_attribute("lang", "en", timeout=20_000)


@pytest.fixture(scope="module")
def zh_kiosk_server(sqlite_template, tmp_path_factory):
    """A kiosk server whose default language is the production one (zh_CN), fast reader polling."""
    app = app_on_copy(sqlite_template, tmp_path_factory.mktemp("zh-kiosk"),
                      **{**BROWSER_CONFIG, "DEFAULT_LOCALE": "zh_CN"}, KIOSK_POLL_SECONDS=0.3, KIOSK_RETRY_SECONDS=1)
    with serving(app) as url:
        yield Kiosk(url, app)


def test_a_kiosk_in_the_default_language_takes_a_payment_to_the_printed_receipt_in_chinese(screen, zh_kiosk_server):
    screen.add_init_script("window.print = function () { window.printed = (window.printed || 0) + 1; };")
    vehicle = add_kiosk_vehicle(zh_kiosk_server.app, fines=(20000,))
    enrol(zh_kiosk_server, screen, f"zh-pay-{screen.orientation}")
    expect(screen.locator("html")).to_have_attribute("lang", "zh-CN")  # nothing chosen: the default
    expect(screen.locator("#welcome-title")).to_have_text("在此缴纳交通违法罚款")

    open_violations(screen, vehicle)
    expect(screen.locator("[data-role=selected-total]")).to_have_text("¥200.00")
    pay_on_reader(screen, waiting="等待刷卡…")
    expect(screen.locator("#reader-title")).to_have_text("在读卡器上缴款 ¥200.00")
    assert_kiosk_rules(screen)
    shot(screen, "zh_CN-reader")

    tap(screen, "[data-outcome=approve]")
    expect(screen.locator("[data-outcome=succeeded]")).to_be_visible()
    expect(screen.locator("[data-screen=result]")).to_contain_text("缴款成功")
    receipt_number = screen.locator("#result-receipt-number").inner_text()
    shot(screen, "zh_CN-result")

    tap(screen, "[data-path='/receipt']")
    expect(screen.locator("[data-screen=receipt]")).to_contain_text("正在打印收据")
    expect(screen.locator("#receipt-number")).to_have_text(receipt_number)
    expect(screen.locator("#receipt-total")).to_have_text("¥200.00")
    assert CHINESE.search(screen.locator("body").inner_text())
    expect(screen.locator("#authority-name")).to_have_text("包头市公安局交通管理支队")
    expect(screen.locator("#kiosk-receipt #paid-by")).to_have_text("银行卡（沙箱）")
    expect(screen.locator("#kiosk-receipt #terminal-name")).to_have_text(f"zh-pay-{screen.orientation}")
    assert_kiosk_rules(screen)
    shot(screen, "zh_CN-receipt")
    # What the printer gets: the receipt alone, on the 80 mm roll.
    screen.emulate_media(media="print")
    screen.locator("#kiosk-receipt").screenshot(path=str(SCREENSHOTS / f"kiosk-{screen.orientation}-zh_CN-printout.png"))


DEMO_HALL = {"SERVICE_HALL_ADDRESS": "包头市昆都仑区钢铁大街 61 号公安交管服务大厅", "SERVICE_HALL_HOURS": "周一至周五 9:00–17:00"}


@pytest.fixture(scope="module")
def zh_demo_server(sqlite_template, tmp_path_factory):
    """FinePay in Chinese with the demo data and a service hall configured, as a city runs it."""
    app = app_on_copy(sqlite_template, tmp_path_factory.mktemp("zh-demo"),
                      **{**BROWSER_CONFIG, "DEFAULT_LOCALE": "zh_CN", **DEMO_HALL})
    result = app.test_cli_runner().invoke(args=["demo", "seed"])
    assert result.exit_code == 0, result.output
    with serving(app) as url:
        yield url


SIZES = {"phone": {**PHONE, "locale": "zh-CN"}, "desktop": {"viewport": {"width": 1280, "height": 900}, "locale": "zh-CN"}}


@pytest.mark.parametrize("size", sorted(SIZES))
def test_the_demo_vehicles_results_in_chinese_count_each_violation_once(browser, zh_demo_server, screenshot, size):
    context = browser.new_context(**SIZES[size])
    context.set_default_timeout(10_000)
    page = context.new_page()
    page.goto(zh_demo_server + "/")
    page.fill("#plate", "蒙B·6M207")  # the demo's vehicle with a violation to settle in person
    page.fill("#vin_last6", "C70316")
    page.locator("form.card").get_by_role("button", name="查看我的罚款").click()
    page.wait_for_load_state()

    expect(page.locator("#count-online")).to_have_text("1 条违法记录可在线缴款。")
    expect(page.locator("#count-in-person")).to_have_text("1 条违法记录须到窗口办理（共 ¥230.00）。")
    in_person = page.locator("#violation-150203202611000006")
    expect(in_person.locator(".service-hall")).to_have_text(
        f"服务大厅：{DEMO_HALL['SERVICE_HALL_ADDRESS']}。办公时间：{DEMO_HALL['SERVICE_HALL_HOURS']}。")
    expect(in_person).not_to_contain_text("滞纳金将不再增加")
    expect(in_person).to_contain_text("110国道昆都仑区卜尔汉图镇段")
    assert_fits(page, SIZES[size]["viewport"]["width"])
    screenshot(page, f"zh_CN-demo-results-{size}")
    context.close()


def test_the_demo_paid_vehicle_links_its_receipt_in_chinese(browser, zh_demo_server):
    context = browser.new_context(**SIZES["phone"])
    page = context.new_page()
    page.goto(zh_demo_server + "/")
    page.fill("#plate", "蒙B·3K521")
    page.fill("#vin_last6", "D52103")
    page.locator("form.card").get_by_role("button", name="查看我的罚款").click()
    page.wait_for_load_state()

    expect(page.locator("#violation-150203202611000007 a.receipt-link")).to_have_text(re.compile(r"^收据 FP-"))
    context.close()
