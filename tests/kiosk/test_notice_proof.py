"""At the kiosk, as on the web, a notice number proves the vehicle when the vehicle licence is not at hand."""
import re

import pytest

from finepay.extensions import db
from tests.conftest import in_both_languages, translated
from tests.kiosk.helpers import PLATE, enrol, pay, prove, simulate, start_visit, vehicle
from violations.models import Violation


@pytest.fixture
def kiosk(client):
    """An enrolled kiosk."""
    return enrol(client)


def a_notice(ids):
    return db.session.get(Violation, ids[0]).notice_number


def by_notice(client, headers, notice, plate=PLATE):
    client.post("/kiosk/api/plate", json={"plate": plate}, headers=headers)
    return client.post("/kiosk/api/lookup-notice", json={"notice_number": notice}, headers=headers)


@in_both_languages
def test_the_vin_screen_offers_the_notice_number_and_the_notice_keypad_names_it(app, kiosk, client):
    vehicle()
    headers = start_visit(client)

    vin = client.post("/kiosk/api/plate", json={"plate": PLATE}, headers=headers).get_json()
    notice = client.get("/kiosk/api/screens/notice", headers=headers).get_json()

    assert translated(app, "No vehicle licence at hand? Use a notice number") in vin["html"]
    assert 'data-path="/screens/notice"' in vin["html"]
    assert notice["screen"] == "notice"
    assert translated(app, "Enter a notice number") in notice["html"]
    assert translated(app, "Use the VIN code instead") in notice["html"]


def test_a_notice_number_proves_the_vehicle_and_the_visit_pays_as_after_a_vin(kiosk, client):
    ids = vehicle()
    headers = start_visit(client)

    listing = by_notice(client, headers, a_notice(ids))
    reader = pay(client, headers, ids)
    result = simulate(client, headers, "approve").get_json()

    assert listing.status_code == 200 and listing.get_json()["screen"] == "violations"
    assert reader.status_code == 201
    assert result["state"] == "succeeded"


def test_a_wrong_notice_and_an_unknown_plate_get_the_same_answer(kiosk, client):
    ids = vehicle()
    notice = a_notice(ids)

    wrong_notice = by_notice(client, start_visit(client), "150203209999999999")
    unknown_plate = by_notice(client, start_visit(client), notice, plate="京A99999")

    assert wrong_notice.status_code == unknown_plate.status_code == 404
    assert wrong_notice.get_data() == unknown_plate.get_data()


def test_the_notice_keypad_needs_a_plate_first(kiosk, client):
    headers = start_visit(client)

    assert client.get("/kiosk/api/screens/notice", headers=headers).status_code == 409
    assert client.post("/kiosk/api/lookup-notice", json={"notice_number": "150203202611000001"},
                       headers=headers).status_code == 409


@pytest.mark.parametrize("body", [{"notice_number": "12345"}, {"notice_number": None}, {}, {"notice_number": "1" * 33},
                                  {"notice_number": "150203202611000001", "vin_last6": "A12345"}])
def test_a_malformed_notice_is_refused(kiosk, client, body):
    headers = start_visit(client)
    client.post("/kiosk/api/plate", json={"plate": PLATE}, headers=headers)

    assert client.post("/kiosk/api/lookup-notice", json=body, headers=headers).status_code == 422


def test_the_notice_and_vin_screens_are_one_layout(kiosk, client):
    """Both proofs are drawn by one macro (kiosk/screens/_proof.html): same elements, same classes, in order."""
    vehicle()
    headers = start_visit(client)

    vin = client.post("/kiosk/api/plate", json={"plate": PLATE}, headers=headers).get_json()["html"]
    notice = client.get("/kiosk/api/screens/notice", headers=headers).get_json()["html"]

    def skeleton(html, name):
        section = html[html.index("<section"):html.index("</section>")]
        tags = [(tag, re.search(r'class="([^"]*)"', attributes))
                for tag, attributes in re.findall(r"<(\w+)([^>]*)>", section.replace(name, "PROOF"))]
        tags = [(tag, found.group(1) if found else "") for tag, found in tags]
        return [tag for tag in tags if tag != ("button", "kbtn")]  # the ways back differ

    assert skeleton(vin, "vin") == skeleton(notice, "notice")
    assert 'maxlength="6"' in vin and 'maxlength="32"' in notice


@pytest.mark.parametrize("app_config", [{"DEFAULT_LOCALE": "zh_CN"}], ids=["zh_CN"])
def test_the_kiosks_late_fee_says_its_days_in_full_width_brackets(kiosk, client):
    vehicle(fines=(20000,), days_since_decision=20)  # 5 days overdue
    headers = start_visit(client)

    html = prove(client, headers).get_json()["html"]

    assert "（逾期 5 天）" in html and "(逾期" not in html  # was 滞纳金 ¥30.00 (逾期 5 天)


@pytest.mark.parametrize("app_config", [{"DEFAULT_LOCALE": "zh_CN"}], ids=["zh_CN"])
def test_the_vin_hint_names_the_vehicle_licence_on_the_web_and_at_the_kiosk(kiosk, client):
    """The document drivers carry (行驶证), the same on every page that asks for the VIN code."""
    vehicle()
    headers = start_visit(client)

    web = client.get("/").get_data(as_text=True)
    vin_screen = client.post("/kiosk/api/plate", json={"plate": PLATE}, headers=headers).get_json()["html"]

    for page in (web, vin_screen):
        assert "行驶证" in page
        assert "登记证" not in page  # not the registration certificate, which stays at home
