"""At the kiosk, the finance bureau's payment code proves the vehicle as a notice number does; the printout shows it."""
from html import unescape

import pytest
from sqlalchemy import update

from finepay.extensions import db
from tests.conftest import in_both_languages, translated
from tests.kiosk.helpers import PLATE, enrol, pay, simulate, start_visit, vehicle
from violations.models import Violation

CODE = "15020326110000000123"


@pytest.fixture
def kiosk(client):
    """An enrolled kiosk."""
    return enrol(client)


def with_code(ids):
    db.session.execute(update(Violation).where(Violation.id == ids[0]).values(payment_code=CODE))
    db.session.commit()


def by_code(client, headers, code, plate=PLATE):
    client.post("/kiosk/api/plate", json={"plate": plate}, headers=headers)
    return client.post("/kiosk/api/lookup-payment-code", json={"payment_code": code}, headers=headers)


@in_both_languages
def test_the_notice_screen_offers_the_payment_code_and_its_keypad_names_it(app, kiosk, client):
    vehicle()
    headers = start_visit(client)
    client.post("/kiosk/api/plate", json={"plate": PLATE}, headers=headers)

    notice = client.get("/kiosk/api/screens/notice", headers=headers).get_json()
    keypad = client.get("/kiosk/api/screens/payment", headers=headers).get_json()

    assert 'data-path="/screens/payment"' in notice["html"]
    assert translated(app, "Use the payment code (缴款码)") in unescape(notice["html"])
    assert keypad["screen"] == "payment"
    assert translated(app, "Enter the payment code") in unescape(keypad["html"])
    assert translated(app, "Step %(step)d of %(steps)d", step=2, steps=5) in unescape(keypad["html"])


@in_both_languages
def test_a_payment_code_proves_the_vehicle_pays_and_is_printed_on_the_receipt(app, kiosk, client):
    ids = vehicle()
    with_code(ids)
    headers = start_visit(client)

    listing = by_code(client, headers, CODE)
    assert listing.status_code == 200 and listing.get_json()["screen"] == "violations"
    assert pay(client, headers, ids).status_code == 201
    assert simulate(client, headers, "approve").get_json()["state"] == "succeeded"

    printout = unescape(client.get("/kiosk/api/receipt", headers=headers).get_json()["html"])
    assert f'{translated(app, "Payment code (缴款码)")} {CODE}' in printout
    assert printout.count(CODE) == 1  # the other line had none


def test_a_wrong_code_and_an_unknown_plate_get_the_same_answer(kiosk, client):
    with_code(vehicle())

    wrong_code = by_code(client, start_visit(client), "15020326110000009999")
    unknown_plate = by_code(client, start_visit(client), CODE, plate="京A99999")

    assert wrong_code.status_code == unknown_plate.status_code == 404
    assert wrong_code.get_data() == unknown_plate.get_data()


def test_the_payment_code_keypad_needs_a_plate_first(kiosk, client):
    headers = start_visit(client)

    assert client.get("/kiosk/api/screens/payment", headers=headers).status_code == 409
    assert client.post("/kiosk/api/lookup-payment-code", json={"payment_code": CODE},
                       headers=headers).status_code == 409


@pytest.mark.parametrize("body", [{"payment_code": "1502032611000000012"}, {"payment_code": None}, {},
                                  {"payment_code": "11010526110000000789"},
                                  {"payment_code": CODE, "notice_number": "150203202611000001"}])
def test_a_malformed_code_is_refused(kiosk, client, body):
    headers = start_visit(client)
    client.post("/kiosk/api/plate", json={"plate": PLATE}, headers=headers)

    assert client.post("/kiosk/api/lookup-payment-code", json=body, headers=headers).status_code == 422
