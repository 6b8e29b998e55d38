"""The results page as a driver reads it: counts, in-person violations, receipts; the lookup form's plate hints."""
from html import unescape

import pytest

from finepay.errors import wait_in_words
from finepay.formatting import format_money
from tests.conftest import both_languages, in_app_language, in_both_languages, translated, translated_plural
from tests.factories import make_violation
from tests.payments.helpers import confirm, create_ok, fresh_violation, overdue_violation

PLATE, VIN = "蒙B12345", "A12345"
HALL = {"SERVICE_HALL_ADDRESS": "包头市昆都仑区钢铁大街 12 号车管所服务大厅", "SERVICE_HALL_HOURS": "周一至周五 9:00–17:00"}


def results(client, plate=PLATE, vin=VIN):
    response = client.post("/lookup", data={"proof": "vin", "plate": plate, "vin_last6": vin})
    return response.status_code, unescape(response.get_data(as_text=True))


def counted(app, online, in_person, amount):
    with in_app_language(app):
        money = format_money(amount)
    return (translated_plural(app, "%(num)d violation can be paid online.", "%(num)d violations can be paid online.",
                              online),
            translated_plural(app, "%(num)d violation must be handled in person (%(amount)s).",
                              "%(num)d violations must be handled in person (%(amount)s).", in_person, amount=money))


@in_both_languages
def test_each_unpaid_violation_is_counted_once_before_and_after_paying(app, client):
    payable = [make_violation(notice_number=f"15020320261100001{i}", fine=5000) for i in range(5)]
    in_person = fresh_violation(notice_number="150203202611000200", fine=200000, payable_online=False)

    _status, page = results(client)
    online_text, in_person_text = counted(app, 5, 1, in_person.fine)
    assert online_text in page and in_person_text in page
    assert "unpaid violations" not in page and "未缴违法" not in page

    payment = create_ok(client, [v.id for v in payable[:3]])
    assert confirm(client, payment["id"]).status_code == 200

    _status, page = results(client)
    online_text, in_person_text = counted(app, 2, 1, in_person.fine)
    assert online_text in page and in_person_text in page


@in_both_languages
def test_nothing_owed_says_so_instead_of_counting_zero(app, client):
    violation = make_violation()
    assert confirm(client, create_ok(client, [violation.id])["id"]).status_code == 200

    _status, page = results(client)

    assert translated(app, "Nothing is owed for this vehicle.") in page


@both_languages(**HALL)
def test_an_in_person_violation_says_where_and_when_to_settle_it_not_pay_today(app, client):
    violation = overdue_violation(payable_online=False)

    _status, page = results(client)

    assert translated(app, "Service hall: %(address)s. Open %(hours)s.", address=HALL["SERVICE_HALL_ADDRESS"],
                      hours=HALL["SERVICE_HALL_HOURS"]) in page
    assert violation.notice_number in page
    assert after_the_date(app, "The payment was due on %(date)s. The late fee is added until it is settled at a "
                               "service hall.") in page
    assert after_the_date(app, "The payment was due on %(date)s. Paying today stops the late fee from growing "
                               "further.") not in page


def after_the_date(app, message):
    """The catalogue's text of ``message`` after its date: what the page shows whatever the date's format."""
    return translated(app, message, date="\0").split("\0")[1]


@both_languages(SERVICE_HALL_ADDRESS="", SERVICE_HOTLINE="12122")
def test_without_a_hall_configured_the_driver_is_told_how_to_find_one(app, client):
    overdue_violation(payable_online=False)

    _status, page = results(client)

    assert translated(app, "Call the traffic police hotline %(hotline)s to find the service hall nearest to you "
                           "and its opening hours.", hotline="12122") in page


@in_both_languages
def test_a_paid_violation_links_to_its_receipt(app, client):
    violation = make_violation()
    paid = confirm(client, create_ok(client, [violation.id])["id"]).get_json()

    _status, page = results(client)

    assert f'href="/receipts/{paid["receipt_number"]}"' in page
    assert translated(app, "Receipt %(number)s", number=paid["receipt_number"]) in page


@pytest.mark.parametrize("plate, hint", [
    ("B12345", "A plate starts with the province character, such as 蒙 or 京, then the city's letter: e.g. 蒙B·12345."),
    ("12345", "A plate starts with the province character, such as 蒙 or 京, then the city's letter: e.g. 蒙B·12345."),
    ("蒙112345", "After the province character comes the city's letter (the B in 蒙B·12345)."),
    ("蒙B1234", "After the province character and the city's letter come 5 letters and digits, "
                "or 6 on a green new-energy plate: e.g. 蒙B·12345 or 蒙B·D12345."),
])
@in_both_languages
def test_a_plate_that_cannot_be_chinese_gets_a_format_hint_not_no_record(app, client, plate, hint):
    make_violation()

    status, page = results(client, plate=plate)

    assert status == 422
    assert translated(app, hint) in page
    assert translated(app, "Nothing found") not in page


@in_both_languages
def test_a_well_formed_unknown_plate_and_a_wrong_vin_get_the_same_answer(app, client):
    make_violation()

    unknown = client.post("/lookup", data={"proof": "vin", "plate": "蒙B99999", "vin_last6": VIN})
    wrong_vin = client.post("/lookup", data={"proof": "vin", "plate": PLATE, "vin_last6": "B12345"})

    assert unknown.status_code == wrong_vin.status_code == 404
    strip = lambda response, plate: response.get_data(as_text=True).replace(plate, "").replace(  # noqa: E731
        "B12345", "").replace(VIN, "")
    assert strip(unknown, "蒙B99999") == strip(wrong_vin, PLATE)
    assert translated(app, "Nothing found") in unknown.get_data(as_text=True)


@both_languages(LOOKUP_RATE_LIMIT="1/minute", PLATE_FAILURE_RATE_LIMIT="1000/hour")
def test_the_rate_limit_page_says_how_long_to_wait(app, client):
    make_violation()
    assert results(client)[0] == 200

    response = client.post("/lookup", data={"proof": "vin", "plate": PLATE, "vin_last6": VIN})

    assert response.status_code == 429
    seconds = int(response.headers["Retry-After"])
    wait = (translated_plural(app, "Please wait %(num)d second before trying again.",
                              "Please wait %(num)d seconds before trying again.", seconds) if seconds < 60 else
            translated_plural(app, "Please wait %(num)d minute before trying again.",
                              "Please wait %(num)d minutes before trying again.", -(-seconds // 60)))
    assert wait in unescape(response.get_data(as_text=True))


@pytest.mark.parametrize("retry_after, minutes", [("60", 1), ("61", 2), ("3600", 60)])
@in_both_languages
def test_waits_of_a_minute_or_more_are_said_in_whole_minutes_rounded_up(app, retry_after, minutes):
    with in_app_language(app):
        said = wait_in_words(retry_after)

    assert said == translated_plural(app, "Please wait %(num)d minute before trying again.",
                                     "Please wait %(num)d minutes before trying again.", minutes)
