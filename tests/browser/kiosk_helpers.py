"""The kiosk steps the browser tests share: a vehicle of its own, enrolment, taps on the keyboards, the flow.

The kiosk's fixtures (kiosk_server, timings, screen) are in tests/browser/conftest.py.
"""
import itertools
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from playwright.sync_api import expect

from finepay.extensions import db
from kiosk.services import enrol_terminal
from tests.browser.conftest import SCREENSHOTS
from tests.factories import make_violation
from violations.fees import business_today

MIN_TARGET = 48
_plates = itertools.count(20001)
_notices = itertools.count(1)


def shot(page, name):
    """A viewport screenshot: what the driver sees."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"kiosk-{page.orientation}-{name}.png"))


@dataclass
class Vehicle:
    """A kiosk test's own vehicle: what the driver types and what must never linger on screen."""

    plate: str
    vin: str
    descriptions: list
    notices: list


def add_vehicle(app, fines=(20000, 15000, 5000)):
    """A vehicle of its own: decided 10, 20 and 30 days ago, so 0, 5 and 15 days overdue (3 % a day)."""
    plate, vin = f"蒙B{next(_plates)}", "K7M2P9"
    descriptions = ["Speeding 20-50% over the limit", "Parking where prohibited", "Running a red light"]
    notices = []
    with app.app_context():
        today = business_today(app.config["BUSINESS_TIMEZONE"])
        for i, fine in enumerate(fines):
            notice = f"7700{next(_notices):014d}"
            decided = today - timedelta(days=10 + 10 * i)
            occurred = datetime.combine(decided - timedelta(days=3), time(9), ZoneInfo("Asia/Shanghai"))
            make_violation(notice_number=notice, plate=plate, vin_last6=vin, fine=fine, occurred_at=occurred,
                           description=descriptions[i], decision_date=decided)
            notices.append(notice)
        db.session.remove()
    return Vehicle(plate, vin, descriptions[:len(fines)], notices)


def enrol(kiosk, page, name):
    """Enrol the page's browser as kiosk `name` through its one-time link; returns the terminal id."""
    with kiosk.app.app_context():
        enrolment = enrol_terminal(name, "test", base_url=kiosk.url)
        db.session.remove()
    page.goto(enrolment.url)
    shot(page, "enrol")
    page.locator("#enrol-button").tap()
    page.wait_for_url(kiosk.url + "/kiosk")
    expect(page.locator("[data-screen=welcome]")).to_be_visible()
    return enrolment.terminal_id


def tap(page, selector):
    page.locator(selector).tap()


def assert_kiosk_rules(page):
    """Touch targets at least 48 px, no links anywhere, no sideways scrolling, no script errors."""
    for control in page.locator("button:visible, input:visible").all():
        box = control.bounding_box()
        label = control.evaluate("e => e.outerHTML")[:80]
        assert box["height"] >= MIN_TARGET and box["width"] >= MIN_TARGET, f"{label} is {box}"
    assert page.locator("a").count() == 0, "a link leads out of the kiosk flow"
    scroll_width = page.evaluate("document.scrollingElement.scrollWidth")
    assert scroll_width <= page.viewport_size["width"], f"scrolls sideways: {scroll_width}px"
    assert page.errors == [], page.errors


def type_plate(page, plate):
    tap(page, f'[data-screen=plate] [data-grid=province] [data-key="{plate[0]}"]')
    for char in plate[1:]:
        tap(page, f'[data-screen=plate] [data-grid=alnum] [data-key="{char}"]')


def type_vin(page, vin):
    for char in vin:
        tap(page, f'[data-screen=vin] [data-key="{char}"]')


def open_violations(page, vehicle, shoot=False):
    """Welcome → plate → VIN → the vehicle's violations, by taps."""
    tap(page, "#start")
    expect(page.locator("[data-screen=plate]")).to_be_visible()
    if shoot:
        shot(page, "plate-empty")
    type_plate(page, vehicle.plate)
    expect(page.locator("#plate-input")).to_have_value(vehicle.plate)
    if shoot:
        assert_kiosk_rules(page)
        shot(page, "plate")
    tap(page, "[data-action=submit-plate]")
    expect(page.locator("[data-screen=vin]")).to_be_visible()
    type_vin(page, vehicle.vin)
    expect(page.locator("#vin-input")).to_have_value(vehicle.vin)
    if shoot:
        assert_kiosk_rules(page)
        shot(page, "vin")
    tap(page, "[data-action=submit-vin]")
    expect(page.locator("[data-screen=violations]")).to_be_visible()


def pay_on_reader(page, shoot=False, waiting="Waiting for your card…"):
    """Violations → review → the reader screen, which says `waiting` (in the kiosk's language)."""
    tap(page, "[data-action=review]")
    expect(page.locator("[data-screen=review]")).to_be_visible()
    if shoot:
        assert_kiosk_rules(page)
        shot(page, "review")
    tap(page, "[data-action=pay]")
    expect(page.locator("[data-screen=reader]")).to_be_visible()
    expect(page.locator("[data-role=reader-status]")).to_have_text(waiting)


def private_traces(page, vehicle, extra=()):
    """Every place a driver's details could linger in the browser, and which of them appear there."""
    found = page.evaluate("""() => ({
        html: document.documentElement.outerHTML,
        text: document.body.innerText,
        local: JSON.stringify(Object.assign({}, localStorage)),
        session: JSON.stringify(Object.assign({}, sessionStorage)),
        cookie: document.cookie,
    })""")
    secrets = [vehicle.plate, vehicle.plate[1:], vehicle.vin, *vehicle.descriptions, *vehicle.notices, *extra]
    return {place: [s for s in secrets if s in value] for place, value in found.items() if
            any(s in value for s in secrets)}, found
