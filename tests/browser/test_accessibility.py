"""WCAG 2.1 AA in a real Chromium: axe-core on every main screen of the driver pages, the kiosk and the
staff console, in English and Chinese; keyboard-only journeys with a visible focus ring; form errors
that a screen reader announces; the page language; the kiosk's larger-text button.

axe-core comes from npm (tests/browser/package.json, pinned by its package-lock.json; `make browser`
runs `npm ci`). Without it these tests are skipped loudly, or fail when REQUIRE_BROWSER=1.
Screenshots of every audited screen go to tests/artifacts/screenshots/a11y-*.png, and each screen's
full axe answer (every impact) to tests/artifacts/axe/.
"""
import re
import uuid
from types import SimpleNamespace
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from finepay.extensions import db
from kiosk.services import enrol_terminal
from payments.models import Payment
from tests.browser.conftest import BROWSER_CONFIG, PHONE, SCREENSHOTS, VIEWPORTS
from tests.browser.helpers import PASSWORD, Audit, wait_for_post
from tests.browser.helpers import sign_in as send_sign_in
from tests.browser.kiosk_helpers import add_vehicle, type_plate, type_vin
from tests.live import app_on_copy, serving

pytestmark = pytest.mark.browser

# The `lang` cookie's value -> what <html lang> must say.
LANGUAGES = {"en": "en", "zh_CN": "zh-CN"}
DEMO_PLATE, DEMO_VIN = "蒙B·12345", "A12345"
DESKTOP = {"viewport": {"width": 1280, "height": 900}, "locale": "en-US"}
SANDBOX_VISA, SANDBOX_DECLINED, SANDBOX_3DS = "pm_card_visa", "pm_card_chargeDeclined", "pm_card_threeDSecure2Required"

# What shows where the keyboard is: an outline or a ring drawn with box-shadow.
FOCUS_STYLE = """() => {
    const e = document.activeElement, s = getComputedStyle(e);
    return {tag: e.tagName, id: e.id, text: (e.textContent || e.value || '').trim().slice(0, 40),
            // Chromium's own calendar button inside a date field: the field is active but not :focus,
            // and the browser draws the button's ring itself, out of reach of (and unseen by) the page's CSS.
            picker: e.type === 'date' && !e.matches(':focus'),
            outline: s.outlineStyle !== 'none' && parseFloat(s.outlineWidth) > 0 ? s.outlineStyle + ' ' + s.outlineWidth : null,
            shadow: s.boxShadow !== 'none' ? s.boxShadow : null};
}"""


# --- fixtures -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def site(sqlite_template, tmp_path_factory):
    """FinePay with demo data, CSRF on, a supervisor, and a kiosk that never times out while audited."""
    app = app_on_copy(sqlite_template, tmp_path_factory.mktemp("a11y-live"), **BROWSER_CONFIG,
                      KIOSK_POLL_SECONDS=0.3, KIOSK_RETRY_SECONDS=1, KIOSK_RECEIPT_SECONDS=600,
                      KIOSK_IDLE_SECONDS=600)
    runner = app.test_cli_runner()
    for args, stdin in ((["demo", "seed"], None),
                        (["staff", "create-user", "alice", "--role", "supervisor", "--password-stdin"], PASSWORD)):
        result = runner.invoke(args=args, input=stdin and stdin + "\n")
        assert result.exit_code == 0, result.output
    with serving(app) as url:
        yield SimpleNamespace(url=url, app=app)


def _context(browser, site, lang, bypass_csp=True, **options):
    # axe is injected as an inline <script>, which FinePay's CSP (rightly) refuses: bypassed where axe runs.
    context = browser.new_context(bypass_csp=bypass_csp, **options)
    context.set_default_timeout(10_000)
    context.add_cookies([{"name": "lang", "value": lang, "url": site.url}])
    return context


@pytest.fixture
def open_page(browser, site):
    """open_page(lang, **context options) -> a fresh page with the `lang` cookie set; closed afterwards."""
    contexts = []

    def make(lang, **options):
        context = _context(browser, site, lang, **options)
        contexts.append(context)
        return context.new_page()

    yield make
    for context in contexts:
        context.close()


# --- axe ------------------------------------------------------------------------------------------


@pytest.fixture
def audit(request, axe):
    """An Audit named after the test's area and language."""
    area = request.node.originalname.removeprefix("test_").split("_")[0]
    lang = request.node.callspec.params["lang"]
    return Audit(f"a11y-{lang}-{area}", {})


# --- getting to each screen ---------------------------------------------------------------------


def look_up_demo(page, base, vin=DEMO_VIN):
    page.goto(base + "/")
    page.fill("#plate", DEMO_PLATE)
    page.fill("#vin_last6", vin)
    return wait_for_post(page, "/lookup", lambda: page.locator("form.card button[type=submit]").click())


def keep_only_first_payable(page):
    """Leave one violation selected (each test pays one, so the demo vehicle lasts the module)."""
    boxes = page.locator("input.select[name=violation_id]")
    assert boxes.count() > 0, "nothing left to pay on the demo vehicle"
    for i in range(1, boxes.count()):
        boxes.nth(i).uncheck()


def sandbox_card(page, method):
    wait_for_post(page, urlsplit(page.url).path + "/confirm",
                  lambda: page.locator(f"#sandbox-methods button[data-method={method}]").click())


def enrol_kiosk(site, page, name, lang=None):
    """Enrol the page's browser as a kiosk; with `lang`, open it in that language as its welcome screen does.

    (The kiosk is a shared screen: it ignores the `lang` cookie and takes ?lang= for one visit.)
    """
    with site.app.app_context():
        enrolment = enrol_terminal(name, "test", base_url=site.url)
        db.session.remove()
    page.goto(enrolment.url)
    page.locator("#enrol-button").click()
    page.wait_for_url(site.url + "/kiosk")
    if lang:
        page.goto(f"{site.url}/kiosk?lang={lang}")
    expect(page.locator("[data-screen=welcome]")).to_be_visible()


def kiosk_type_plate(page, vehicle):
    page.locator("#start").tap()
    expect(page.locator("[data-screen=plate]")).to_be_visible()
    type_plate(page, vehicle.plate)
    expect(page.locator("#plate-input")).to_have_value(vehicle.plate)


def staff_sign_in(page, base):
    send_sign_in(page, base)
    expect(page.locator("#signed-in-as")).to_be_visible()


def demo_payment_id(site):
    """The payment `demo seed` made for the paid demo violation."""
    with site.app.app_context():
        payment_id = db.session.execute(select(Payment.id).where(Payment.status == "succeeded")
                                        .order_by(Payment.created_at)).scalars().first()
        db.session.remove()
    return payment_id


# --- axe on every screen, in both languages ------------------------------------------------------


@pytest.mark.parametrize("lang", sorted(LANGUAGES))
def test_driver_pages_pass_axe(open_page, site, audit, lang):
    page = open_page(lang, **PHONE)
    page.goto(site.url + "/")
    audit(page, "home")

    assert look_up_demo(page, site.url, vin="A1234O").status == 422  # O is never in a VIN
    audit(page, "home-form-error")

    assert look_up_demo(page, site.url, vin="B12345").status == 404
    audit(page, "home-no-match")

    assert look_up_demo(page, site.url).status == 200
    audit(page, "results")

    keep_only_first_payable(page)
    wait_for_post(page, "/pay/review", lambda: page.locator("#review-button").click())
    audit(page, "review")

    page.locator("#continue-button").click()
    page.wait_for_url(re.compile(r"/pay/pay_[0-9a-f]+$"))
    audit(page, "pay")

    sandbox_card(page, SANDBOX_DECLINED)
    expect(page.locator("#failed")).to_be_visible()
    audit(page, "pay-declined")

    sandbox_card(page, SANDBOX_3DS)
    page.wait_for_url(re.compile(r"/sandbox/authenticate/[^/]+$"))
    audit(page, "sandbox-3ds")

    page.locator("#approve").click()
    page.wait_for_url(re.compile(r"/receipts/FP(-[0-9A-Z]{4}){4}$"))
    audit(page, "receipt")

    assert page.goto(site.url + "/no-such-page").status == 404
    audit(page, "error-404")

    audit.assert_clean()


@pytest.mark.parametrize("lang", sorted(LANGUAGES))
def test_kiosk_screens_pass_axe(open_page, site, audit, lang):
    page = open_page(lang, viewport=VIEWPORTS["portrait"], has_touch=True, device_scale_factor=1)
    page.add_init_script("window.print = function () {};")  # a kiosk prints silently
    vehicle = add_vehicle(site.app, fines=(20000, 15000))
    enrol_kiosk(site, page, f"a11y-{lang}-{uuid.uuid4().hex[:6]}", lang)
    audit(page, "welcome")

    page.locator("#start").click()
    expect(page.locator("[data-screen=plate]")).to_be_visible()
    audit(page, "plate-empty")
    type_plate(page, vehicle.plate)
    audit(page, "plate")

    page.locator("[data-action=submit-plate]").click()
    expect(page.locator("[data-screen=vin]")).to_be_visible()
    page.locator("[data-action=goto][data-path='/screens/notice']").click()
    expect(page.locator("[data-screen=notice]")).to_be_visible()
    audit(page, "notice")
    page.locator("[data-action=goto][data-path='/screens/payment']").click()
    expect(page.locator("[data-screen=payment]")).to_be_visible()
    audit(page, "payment-code")
    page.locator("[data-action=goto][data-path='/screens/vin']").click()
    expect(page.locator("[data-screen=vin]")).to_be_visible()
    type_vin(page, vehicle.vin)
    audit(page, "vin")

    page.locator("[data-action=submit-vin]").click()
    expect(page.locator("[data-screen=violations]")).to_be_visible()
    audit(page, "violations")

    page.locator("[data-action=review]").click()
    expect(page.locator("[data-screen=review]")).to_be_visible()
    audit(page, "review")

    page.locator("[data-action=pay]").click()
    expect(page.locator("[data-screen=reader]")).to_be_visible()
    audit(page, "reader")

    page.locator("[data-outcome=decline]").click()
    expect(page.locator("[data-outcome=failed]")).to_be_visible()
    audit(page, "result-declined")

    page.locator("[data-action=retry-payment]").click()
    expect(page.locator("[data-screen=reader]")).to_be_visible()
    page.locator("[data-outcome=approve]").click()
    expect(page.locator("[data-outcome=succeeded]")).to_be_visible()
    audit(page, "result-approved")

    page.locator("[data-path='/receipt']").click()
    expect(page.locator("[data-screen=receipt]")).to_be_visible()
    audit(page, "receipt")

    page.locator("#start-over").click()
    expect(page.locator("[data-screen=welcome]")).to_be_visible()
    audit.assert_clean()


@pytest.mark.parametrize("lang", sorted(LANGUAGES))
def test_staff_console_passes_axe(open_page, site, audit, lang):
    page = open_page(lang, **DESKTOP)
    page.goto(f"{site.url}/staff/login")
    audit(page, "login")
    page.click("#sign-in")  # nothing filled in
    expect(page.locator("#username-error")).to_be_visible()
    audit(page, "login-form-error")

    staff_sign_in(page, site.url)
    audit(page, "dashboard")
    page.goto(site.url + "/staff/search")
    page.fill("#q", DEMO_PLATE.replace("·", ""))
    with page.expect_navigation():
        page.locator("form.searchform button[type=submit]").click()
    assert "B12345" not in page.url  # posted: a plate never goes into a URL
    audit(page, "search")
    for screen, path in [("payment", f"/staff/payments/{demo_payment_id(site)}"),
                         ("reconciliation", "/staff/reconciliation"), ("terminals", "/staff/terminals"),
                         ("keys", "/staff/keys"), ("users", "/staff/users"), ("audit", "/staff/audit"),
                         ("imports", "/staff/imports"), ("sessions", "/staff/sessions")]:
        assert page.goto(site.url + path).status == 200, path
        audit(page, screen)
    # The refund's confirm screen (reviewing moves no money, so the demo payment stays as it is).
    page.goto(f"{site.url}/staff/payments/{demo_payment_id(site)}")
    page.fill("#amount", "1.00")
    page.fill("#reason", "checking the confirm screen")
    page.click("#refund-button")
    expect(page.locator("#refund-confirm")).to_be_visible()
    audit(page, "refund-confirm")
    audit.assert_clean()


# --- the page says which language it is in -------------------------------------------------------


@pytest.mark.parametrize("lang", sorted(LANGUAGES))
def test_html_lang_matches_the_chosen_language(open_page, site, lang):
    page = open_page(lang, **DESKTOP)
    for path in ["/", "/staff/login", "/no-such-page"]:
        page.goto(site.url + path)
        assert page.evaluate("document.documentElement.lang") == LANGUAGES[lang], path
    enrol_kiosk(site, page, f"lang-{lang}-{uuid.uuid4().hex[:6]}", lang)
    assert page.evaluate("document.documentElement.lang") == LANGUAGES[lang], "/kiosk"


# --- keyboard only --------------------------------------------------------------------------------


def focused(page):
    return page.evaluate(FOCUS_STYLE)


def assert_focus_visible(page):
    """The element with the keyboard focus shows it: an outline or a box-shadow ring."""
    style = focused(page)
    assert style["outline"] or style["shadow"] or style["picker"], f"no visible focus on {style}"


def tab_to(page, selector, limit=60, key="Tab", move=False):
    """Press Tab (or `key`) until the focused element matches `selector`; every stop must show its focus.

    Nothing to press when the focus is there already (a field with autofocus), unless `move`.
    """
    if not move and page.evaluate("s => document.activeElement.matches(s)", selector):
        assert_focus_visible(page)
        return
    for _ in range(limit):
        page.keyboard.press(key)
        assert_focus_visible(page)
        if page.evaluate("s => document.activeElement.matches(s)", selector):
            return
    raise AssertionError(f"{selector} not reached by {key} within {limit} presses; focus is on {focused(page)}")


def test_driver_pays_with_the_keyboard_alone(browser, site):
    context = _context(browser, site, "en", bypass_csp=False, **PHONE)
    try:
        page = context.new_page()
        page.goto(site.url + "/")
        tab_to(page, "#plate")
        page.keyboard.type(DEMO_PLATE)
        tab_to(page, "#vin_last6")
        page.keyboard.type(DEMO_VIN)
        wait_for_post(page, "/lookup", lambda: page.keyboard.press("Enter"))
        expect(page.locator("#total-payable")).to_be_visible()

        # Keep only the first fine: Space unticks each of the others.
        boxes = page.locator("input.select[name=violation_id]")
        tab_to(page, "input.select")
        for _ in range(boxes.count() - 1):
            tab_to(page, "input.select", move=True)
            page.keyboard.press("Space")
        expect(page.locator("input.select:checked")).to_have_count(1)
        tab_to(page, "#review-button")
        page.keyboard.press("Shift+Tab")  # one stop back and forth again: the same stops, in reverse
        assert_focus_visible(page)
        tab_to(page, "#review-button", limit=1)
        wait_for_post(page, "/pay/review", lambda: page.keyboard.press("Enter"))
        expect(page.locator("table.items tbody tr")).to_have_count(1)

        tab_to(page, "#continue-button")
        page.keyboard.press("Enter")
        page.wait_for_url(re.compile(r"/pay/pay_[0-9a-f]+$"))

        tab_to(page, f"#sandbox-methods button[data-method={SANDBOX_VISA}]")
        page.screenshot(path=str(SCREENSHOTS / "a11y-keyboard-driver-pay.png"))  # what the focus ring looks like
        page.keyboard.press("Enter")
        page.wait_for_url(re.compile(r"/receipts/FP(-[0-9A-Z]{4}){4}$"))
        expect(page.locator("#receipt-number")).to_have_text(re.compile(r"^FP(-[0-9A-Z]{4}){4}$"))
        tab_to(page, "a.button[href='/']")  # Done, on the receipt's stylesheet too
    finally:
        context.close()


def test_staff_signs_in_and_opens_reconciliation_with_the_keyboard_alone(browser, site):
    context = _context(browser, site, "en", bypass_csp=False, **DESKTOP)
    try:
        page = context.new_page()
        page.goto(f"{site.url}/staff/login")
        tab_to(page, "#username")
        page.keyboard.type("alice")
        tab_to(page, "#password")
        page.keyboard.type(PASSWORD)
        tab_to(page, "#sign-in")
        page.keyboard.press("Enter")
        expect(page.locator("#signed-in-as")).to_contain_text("alice")

        tab_to(page, "nav.staff-nav a[href$='/staff/reconciliation']")
        page.screenshot(path=str(SCREENSHOTS / "a11y-keyboard-staff-nav.png"))
        page.keyboard.press("Enter")
        page.wait_for_url(re.compile(r"/staff/reconciliation"))
        expect(page.locator("nav.staff-nav a[aria-current=page]")).to_have_attribute(
            "href", re.compile(r"/staff/reconciliation$"))
        tab_to(page, "#refresh-gateway")
    finally:
        context.close()


def test_kiosk_shows_keyboard_focus(browser, site):
    context = _context(browser, site, "en", bypass_csp=False, viewport=VIEWPORTS["landscape"],
                       device_scale_factor=1)
    try:
        page = context.new_page()
        enrol_kiosk(site, page, f"focus-{uuid.uuid4().hex[:6]}")
        tab_to(page, "#start")
        page.keyboard.press("Enter")
        expect(page.locator("[data-screen=plate]")).to_be_visible()
        tab_to(page, "button.kkey")
        page.screenshot(path=str(SCREENSHOTS / "a11y-keyboard-kiosk-key.png"))
    finally:
        context.close()


# --- form errors are announced -------------------------------------------------------------------


def assert_announced_error(page, field_id):
    """The field is marked invalid and described by an error that sits in a live region or alert."""
    field = page.locator(f"#{field_id}")
    expect(field).to_have_attribute("aria-invalid", "true")
    described = field.get_attribute("aria-describedby").split()
    errors = [i for i in described if page.locator(f"#{i}.error, #{i}.notice-error").count()]
    assert errors, f"#{field_id} is described by {described}, none of which is its error"
    expect(page.locator(f"#{errors[0]}")).not_to_be_empty()
    live = page.locator("[role=alert], [aria-live]:not([aria-live=off])").filter(has=page.locator(".notice-error"))
    expect(live).to_have_count(1)


def test_driver_form_errors_are_announced(browser, site):
    context = _context(browser, site, "en", bypass_csp=False, **PHONE)
    try:
        page = context.new_page()
        assert look_up_demo(page, site.url, vin="A1234O").status == 422
        assert_announced_error(page, "vin_last6")
        expect(page.locator("#vin_last6")).to_be_focused()  # where a screen reader starts reading

        assert look_up_demo(page, site.url).status == 200
        keep_only_first_payable(page)
        wait_for_post(page, "/pay/review", lambda: page.locator("#review-button").click())
        page.locator("#continue-button").click()
        page.wait_for_url(re.compile(r"/pay/pay_[0-9a-f]+$"))
        sandbox_card(page, SANDBOX_DECLINED)
        failed = page.locator("#failed")
        expect(failed).to_have_attribute("role", "alert")
        expect(failed).to_contain_text("Your card was declined")
    finally:
        context.close()


def test_staff_sign_in_errors_are_announced(browser, site):
    context = _context(browser, site, "en", bypass_csp=False, **DESKTOP)
    try:
        page = context.new_page()
        page.goto(f"{site.url}/staff/login")
        page.click("#sign-in")  # empty
        assert_announced_error(page, "username")
        assert_announced_error(page, "password")
        expect(page.locator("#username")).to_be_focused()

        page.fill("#username", "alice")
        page.fill("#password", "not the password")
        page.click("#sign-in")
        expect(page.locator("#sign-in-failed")).to_be_visible()
        assert_announced_error(page, "password")
    finally:
        context.close()


# --- the kiosk's larger text ----------------------------------------------------------------------


@pytest.mark.parametrize("orientation", sorted(VIEWPORTS))
def test_kiosk_larger_text_fits_and_resets_with_the_visit(browser, site, orientation):
    context = _context(browser, site, "en", bypass_csp=False, viewport=VIEWPORTS[orientation],
                       has_touch=True, device_scale_factor=1)
    errors = []
    try:
        page = context.new_page()
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.on("console", lambda m: m.type == "error" and not m.text.startswith("Failed to load resource")
                and errors.append(m.text))
        vehicle = add_vehicle(site.app, fines=(20000, 15000, 5000))
        enrol_kiosk(site, page, f"large-{orientation}-{uuid.uuid4().hex[:6]}")
        toggle = page.locator("#large-text")
        expect(toggle).to_have_attribute("aria-pressed", "false")
        normal = page.evaluate("parseFloat(getComputedStyle(document.documentElement).fontSize)")

        toggle.tap()
        expect(toggle).to_have_attribute("aria-pressed", "true")
        large = page.evaluate("parseFloat(getComputedStyle(document.documentElement).fontSize)")
        assert large >= normal * 1.2, (normal, large)
        other_language = page.locator("[data-action=language][aria-pressed=false]")
        if other_language.count():  # picking a language reloads the page: the larger text stays on
            other_language.first.tap()
            page.wait_for_url(re.compile(r"[?&]text=large"))
            expect(page.locator("#large-text")).to_have_attribute("aria-pressed", "true")

        def fits(screen):
            width = page.evaluate("document.documentElement.scrollWidth")
            assert width <= page.evaluate("window.innerWidth"), f"{screen} scrolls sideways with large text: {width}px"
            for control in page.locator("button:visible, input:visible").all():
                box = control.bounding_box()
                assert box["x"] >= 0 and box["x"] + box["width"] <= VIEWPORTS[orientation]["width"] + 0.5, \
                    f"{screen}: {control.evaluate('e => e.outerHTML')[:80]} sticks out: {box}"
            page.screenshot(path=str(SCREENSHOTS / f"a11y-kiosk-{orientation}-large-{screen}.png"))

        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        fits("welcome")
        kiosk_type_plate(page, vehicle)
        expect(toggle).to_have_attribute("aria-pressed", "true")  # it stays on through the visit
        fits("plate")
        page.locator("[data-action=submit-plate]").tap()
        expect(page.locator("[data-screen=vin]")).to_be_visible()
        type_vin(page, vehicle.vin)
        fits("vin")
        page.locator("[data-action=submit-vin]").tap()
        expect(page.locator("[data-screen=violations]")).to_be_visible()
        fits("violations")
        page.locator("[data-action=review]").tap()
        expect(page.locator("[data-screen=review]")).to_be_visible()
        fits("review")
        page.locator("[data-action=pay]").tap()
        expect(page.locator("[data-screen=reader]")).to_be_visible()
        fits("reader")
        page.locator("[data-outcome=approve]").tap()
        expect(page.locator("[data-outcome=succeeded]")).to_be_visible()
        fits("result")

        # The next driver starts with normal text.
        page.locator("#start-over").tap()
        expect(page.locator("[data-screen=welcome]")).to_be_visible()
        expect(page.locator("#large-text")).to_have_attribute("aria-pressed", "false")
        assert page.evaluate("parseFloat(getComputedStyle(document.documentElement).fontSize)") == normal
        assert errors == []
    finally:
        context.close()
