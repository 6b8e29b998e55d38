"""Steps and checks the browser tests share: the driver's pages, the staff console's sign-in, axe audits.

The kiosk's steps are in tests/browser/kiosk_helpers.py; fixtures in tests/browser/conftest.py.
"""
import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from urllib.parse import urlsplit

from tests.browser.conftest import AXE, SCREENSHOTS
from tests.factories import make_violation
from violations.fees import business_today

PHONE_WIDTH = 360
RECEIPT_NUMBER = re.compile(r"^FP(-[0-9A-Z]{4}){4}$")
PAY_PAGE = re.compile(r"/pay/pay_[0-9a-f]+$")
RECEIPT_PAGE = re.compile(r"/receipts/FP(-[0-9A-Z]{4}){4}$")
# The supervisor the console's tests create with the CLI.
PASSWORD = "a long supervisor password"
AXE_REPORTS = SCREENSHOTS.parent / "axe"
WCAG_AA = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]
BLOCKING = ("serious", "critical")


# --- the driver's pages -----------------------------------------------------------------------


@dataclass
class Vehicle:
    """One test's vehicle: what the driver types, and its violations by notice number."""

    plate: str  # as typed, with the middle dot printed on the plate
    vin: str
    ids: dict = field(default_factory=dict)  # notice number -> violation id

    @property
    def normalized(self):
        return self.plate.replace("·", "")

    @property
    def private(self):
        """What must never show in a URL: the plate, the VIN code, the notice numbers."""
        words = [self.normalized[1:], self.vin, self.normalized[0], *self.ids]
        return re.compile("|".join(map(re.escape, words)), re.IGNORECASE)


def add_vehicle(app, plate, vin, fines):
    """Insert `fines`, a list of (notice, description, fine in fen, days since the decision, payable online)."""
    vehicle = Vehicle(plate, vin)
    with app.app_context():
        today = business_today(app.config["BUSINESS_TIMEZONE"])
        for notice, description, fine, days, online in fines:
            decided = today - timedelta(days=days)
            violation = make_violation(
                notice_number=notice, plate=vehicle.normalized, vin_last6=vin, description=description,
                fine=fine, decision_date=decided, payable_online=online,
                occurred_at=datetime.combine(decided - timedelta(days=3), time(1, 30), UTC),
            )
            vehicle.ids[notice] = violation.id
    return vehicle


def assert_fits(page, width=PHONE_WIDTH):
    """No sideways scrolling at `width` CSS pixels."""
    scroll_width = page.evaluate("document.scrollingElement.scrollWidth")
    assert scroll_width <= width, f"{page.url} scrolls sideways: {scroll_width}px wide"


def assert_touch_targets(page, minimum=44, summaries=False):
    """Every visible control in the page's main part is at least `minimum` CSS pixels tall, for thumbs.

    With `summaries`, the <summary> of each <details> too (the lookup page's are buttons to tap; the pay
    page's violation count is a smaller disclosure under the total).
    """
    controls = "main input:visible, main button:visible, main a.button:visible"
    if summaries:
        controls += ", main summary:visible"
    for control in page.locator(controls).all():
        box = control.bounding_box()
        assert box["height"] >= minimum, f"{control.evaluate('e => e.outerHTML')[:80]} is {box['height']}px tall"


def viewport_shot(page, name):
    """What the driver sees without scrolling (full-page shots of tall pages get shrunk when viewed)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=False)


def wait_for_post(page, path, action):
    """Run `action` (which submits a form to `path`) and return the answer once the page has loaded."""
    with page.expect_response(lambda r: urlsplit(r.url).path == path and r.request.method == "POST") as info:
        action()
    page.wait_for_load_state()
    return info.value


# --- the staff console -----------------------------------------------------------------------


def sign_in(page, base, username="alice", password=PASSWORD):
    """Fill in and send the console's sign-in form (whether it succeeds is the caller's to check)."""
    page.goto(f"{base}/staff/login")
    page.fill("#username", username)
    page.fill("#password", password)
    page.click("#sign-in")


# --- axe -------------------------------------------------------------------------------------


@dataclass
class Audit:
    """The serious and critical axe violations of each screen audited in one test."""

    prefix: str
    found: dict

    def __call__(self, page, screen):
        """Run axe on what `page` shows now, keep its blocking violations and a screenshot under `screen`."""
        if not page.evaluate("typeof window.axe === 'object'"):
            page.add_script_tag(path=str(AXE))
        answer = page.evaluate("""tags => {
            const brief = list => list.map(v => ({id: v.id, impact: v.impact, help: v.help, helpUrl: v.helpUrl,
                nodes: v.nodes.map(n => ({target: n.target.join(' '), html: n.html.slice(0, 160),
                                          summary: n.failureSummary || ''}))}));
            return axe.run(document, {runOnly: {type: 'tag', values: tags}, resultTypes: ['violations']})
                .then(r => ({violations: brief(r.violations), incomplete: brief(r.incomplete)}));
        }""", WCAG_AA)
        name = f"{self.prefix}-{screen}"
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)
        # Everything axe said, for a person to read: minor findings and what it could not decide (incomplete).
        AXE_REPORTS.mkdir(parents=True, exist_ok=True)
        (AXE_REPORTS / f"{name}.json").write_text(json.dumps(answer, ensure_ascii=False, indent=1), encoding="utf-8")
        self.found[screen] = [v for v in answer["violations"] if v["impact"] in BLOCKING]

    def assert_clean(self):
        problems = {screen: found for screen, found in self.found.items() if found}
        assert not problems, "axe found serious or critical WCAG 2.1 AA violations:\n" + describe(problems)


def describe(problems):
    """One line per violation (id, impact, help) and one per offending element, for the assertion message."""
    lines = []
    for screen, violations in problems.items():
        for v in violations:
            lines.append(f"[{screen}] {v['id']} ({v['impact']}): {v['help']}  <{v['helpUrl']}>")
            for node in v["nodes"][:8]:
                summary = " ".join(node["summary"].split())
                lines.append(f"    at {node['target']}: {node['html']}\n      {summary}")
            if len(v["nodes"]) > 8:
                lines.append(f"    ... and {len(v['nodes']) - 8} more")
    return "\n".join(lines)
