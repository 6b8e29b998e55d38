"""The finance bureau's payment code (缴款码): its format, its import column, and plate + payment code as a proof.

Integration tests run on SQLite and on PostgreSQL (the client fixture).
"""
import re
from html import unescape

import pytest
import sqlalchemy as sa

from finepay.extensions import db
from finepay.settings import SettingsError, from_env
from payments.models import Payment
from staff import services as staff_services
from tests.conftest import in_both_languages, translated
from tests.factories import CSV_HEADER, csv_row, make_violation
from tests.payments.helpers import PLATE, VIN, confirm, new_key, overdue_violation
from tests.staff.helpers import make_supervisor, paid_payment, sign_in_as
from violations.demo import DEMO_PAYMENT_CODE, DEMO_PLATE, PAYABLE, VEHICLES
from violations.importer import import_rows, read_csv
from violations.models import Violation
from violations.plates import (
    InvalidIdentifier,
    in_regions,
    normalize_local_payment_code,
    normalize_payment_code,
    normalize_plate,
)
from violations.services import lookup_vehicle

CODE = "15020326110000000123"  # 昆都仑区 (150203), within 包头市 (150200)
OTHER_CODE = "15020726110000000456"  # 九原区 (150207), also 包头市


# --- the format ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("typed", [CODE, " 1502 0326 1100 0000 0123 ", "1502-0326-1100-0000-0123",
                                   "１５０２０３２６１１０００００００１２３"])
def test_a_payment_code_is_20_digits_with_spaces_hyphens_and_full_width_digits_folded(typed):
    assert normalize_payment_code(typed) == CODE


@pytest.mark.parametrize("typed, problem", [
    ("", "empty"), ("1502032611000000012", "wrong_length"), ("150203261100000001234", "wrong_length"),
    ("1502032611000000012A", "not_digits"), ("15020326110000000１2X", "not_digits"),
])
def test_a_payment_code_that_is_not_20_digits_is_refused_with_why(typed, problem):
    with pytest.raises(InvalidIdentifier) as refused:
        normalize_payment_code(typed)
    assert refused.value.code == problem


@pytest.mark.parametrize("code, regions, taken", [
    (CODE, ("150203",), True),  # the district itself
    (CODE, ("150200",), True),  # its city covers it
    (CODE, ("150000",), True),  # its province covers it
    (CODE, ("150207",), False),  # another district of the same city
    (CODE, ("150100",), False),  # another city (呼和浩特)
    (CODE, ("110000", "150200"), True),  # one of several
    (CODE, (), False),  # no region configured: none is taken
])
def test_the_region_prefix_must_be_one_the_deployment_takes(code, regions, taken):
    assert in_regions(code, regions) is taken


def test_the_region_check_reads_the_setting(app):
    assert app.config["PAYMENT_CODE_REGIONS"] == ("150200",)  # the demo authority's, in development
    assert normalize_local_payment_code(CODE) == CODE
    app.config["PAYMENT_CODE_REGIONS"] = ("110000",)
    with pytest.raises(InvalidIdentifier) as refused:
        normalize_local_payment_code(CODE)
    assert refused.value.code == "other_region"


def test_the_setting_is_a_list_of_6_digit_region_codes(tmp_path):
    env = {"PAYMENT_CODE_REGIONS": " 150200, 150100 "}
    assert from_env(str(tmp_path), env)["PAYMENT_CODE_REGIONS"] == ("150200", "150100")
    assert from_env(str(tmp_path), {"FINEPAY_ENV": "production"})["PAYMENT_CODE_REGIONS"] == ()
    for wrong in ("1502", "15020A", "包头", "050200"):
        with pytest.raises(SettingsError, match="PAYMENT_CODE_REGIONS"):
            from_env(str(tmp_path), {"PAYMENT_CODE_REGIONS": wrong})


# --- the import column --------------------------------------------------------------------------------

HEADER = CSV_HEADER.rstrip("\n") + ",payment_code\n"


def with_code(code, **fields):
    return csv_row(**fields).rstrip("\n") + f",{code}\n"


def run(*lines, header=HEADER):
    return import_rows(read_csv((header + "".join(lines)).splitlines(keepends=True)))


def codes():
    rows = db.session.execute(sa.select(Violation.notice_number, Violation.payment_code)).all()
    db.session.commit()
    return dict(rows)


def test_the_import_stores_a_good_payment_code_and_refuses_bad_ones_with_the_reason(app):
    report = run(
        with_code(CODE, notice="150203202611000001"),
        with_code(" 1502 0726 1100 0000 0456", notice="150203202611000002"),
        with_code("", notice="150203202611000003"),  # none: fine
        with_code("1502032611000000012", notice="150203202611000004"),
        with_code("1502032611000000012X", notice="150203202611000005"),
        with_code("1101 0526 1100 0000 0789", notice="150203202611000006"),
        with_code(CODE, notice="150203202611000007"),  # the same code twice in one file
    )

    assert report.inserted == 3
    assert codes() == {"150203202611000001": CODE, "150203202611000002": OTHER_CODE, "150203202611000003": None}
    reasons = dict(report.rejected)
    assert reasons[5] == "payment_code: Payment code must be exactly 20 digits."
    assert reasons[6] == "payment_code: Payment code must be digits only."
    assert reasons[7] == ("payment_code starts with region 110105, not one this service takes "
                          "(PAYMENT_CODE_REGIONS: 150200)")
    assert reasons[8] == "payment_code repeats line 2"


def test_a_file_without_the_column_imports_as_before_and_keeps_the_codes_on_record(app):
    run(with_code(CODE, notice="150203202611000001"))

    report = run(csv_row(notice="150203202611000001", fine="30000"), header=CSV_HEADER)
    blank = run(with_code("", notice="150203202611000001", fine="40000"))

    assert report.updated == blank.updated == 1
    assert codes() == {"150203202611000001": CODE}


def test_a_later_import_may_give_a_violation_its_code_but_not_one_of_another_notice(app):
    run(with_code(CODE, notice="150203202611000001"), with_code("", notice="150203202611000002"))

    added = run(with_code(OTHER_CODE, notice="150203202611000002"))
    taken = run(with_code(CODE, notice="150203202611000003"))

    assert added.updated == 1
    assert taken.inserted == 0
    assert taken.rejected == [(2, "payment_code is already that of notice 150203202611000001")]
    assert codes() == {"150203202611000001": CODE, "150203202611000002": OTHER_CODE}


# --- plate + payment code, through HTTP -----------------------------------------------------------------


def lookup(client, **body):
    return client.post("/api/v1/lookups", json=body)


def test_plate_and_payment_code_show_all_the_vehicles_violations_as_a_notice_number_does(client):
    make_violation(notice_number="150203202611000123", payment_code=CODE)
    make_violation(notice_number="150203202611000124")
    make_violation(notice_number="150203202611000125", vin_last6="Z99999")  # the plate reissued: never shown

    response = lookup(client, plate="蒙B·12345", payment_code="1502 0326 1100 0000 0123")

    assert response.status_code == 200
    lines = {v["notice_number"]: v["payment_code"] for v in response.get_json()["violations"]}
    assert lines == {"150203202611000123": CODE, "150203202611000124": None}


def test_a_wrong_code_another_plates_code_and_an_unknown_plate_get_the_same_404(client):
    make_violation(payment_code=CODE)
    make_violation(plate="京A00001", vin_last6="B22222", payment_code=OTHER_CODE)

    answers = [
        lookup(client, plate="蒙B12345", payment_code="15020326110000009999"),  # no such code
        lookup(client, plate="蒙B12345", payment_code=OTHER_CODE),  # another vehicle's code
        lookup(client, plate="蒙B99999", payment_code=CODE),  # unknown plate
        lookup(client, plate="蒙B12345", vin_last6="B12345"),  # and a wrong VIN code, for comparison
    ]

    assert {a.status_code for a in answers} == {404}
    assert len({a.data for a in answers}) == 1


@pytest.mark.parametrize("body", [
    {"plate": "蒙B12345", "payment_code": "1502032611000000012"},  # 19 digits
    {"plate": "蒙B12345", "payment_code": "11010526110000000789"},  # another region's finance bureau
    {"plate": "蒙B12345", "payment_code": CODE, "vin_last6": "A12345"},  # two proofs
    {"plate": "蒙B12345", "payment_code": CODE, "notice_number": "150203202611000123"},
])
def test_a_malformed_code_or_two_proofs_are_refused_before_any_lookup(client, body):
    assert lookup(client, **body).status_code == 422


def test_failed_codes_spend_the_plates_budget_like_failed_vin_codes(client, app):
    app.config["PLATE_FAILURE_RATE_LIMIT"] = "2/hour"
    make_violation(payment_code=CODE)

    for _ in range(2):
        assert lookup(client, plate="蒙B12345", payment_code="15020326110000009999").status_code == 404
    spent = lookup(client, plate="蒙B12345", payment_code=CODE)

    assert spent.status_code == 429 and spent.get_json()["code"] == "challenge_required"
    # The budget is the plate's, whichever proof is tried next.
    assert lookup(client, plate="蒙B12345", vin_last6="A12345").get_json()["code"] == "challenge_required"


def test_pay_with_plate_and_payment_code_and_find_the_code_on_receipt_and_feed(client, app):
    violation = overdue_violation(payment_code=CODE)
    other = overdue_violation(notice_number="150203202611000999")  # the same vehicle's, without a code

    created = client.post("/api/v1/payments", headers={"Idempotency-Key": new_key()}, json={
        "plate": PLATE, "payment_code": CODE, "violation_ids": [violation.id, other.id]})
    assert created.status_code == 201, created.get_json()
    paid = confirm(client, created.get_json()["id"]).get_json()
    assert paid["status"] == "succeeded"

    payment = db.session.get(Payment, paid["id"])
    assert (payment.plate, payment.vin_last6) == (PLATE, VIN)  # the vehicle the code proved
    receipt = client.get(f"/api/v1/receipts/{payment.receipt_number}").get_json()
    assert {item["notice_number"]: item["payment_code"] for item in receipt["items"]} == {
        violation.notice_number: CODE, other.notice_number: None}
    page = client.get(f"/receipts/{payment.receipt_number}").get_data(as_text=True)
    assert CODE in page
    key = staff_services.create_api_key("authority system", "test")[1]
    events = client.get("/api/v1/settlements", headers={"X-API-Key": key}).get_json()["events"]
    assert {(e["notice_number"], e["payment_code"]) for e in events} == {
        (violation.notice_number, CODE), (other.notice_number, None)}


def test_paying_with_a_wrong_code_is_the_unknown_violation_answer_and_counts(client):
    violation = overdue_violation(payment_code=CODE)

    def create(**proof):
        return client.post("/api/v1/payments", headers={"Idempotency-Key": new_key()},
                           json={"plate": PLATE, "violation_ids": [violation.id], **proof})

    wrong_code = create(payment_code="15020326110000009999")
    wrong_vin = create(vin_last6="B12345")

    assert wrong_code.status_code == wrong_vin.status_code == 422
    assert wrong_code.data == wrong_vin.data
    assert create(payment_code=CODE, vin_last6=VIN).status_code == 422  # one proof, not two
    assert db.session.execute(sa.select(Payment)).first() is None


def test_the_openapi_document_describes_the_payment_code(client):
    spec = client.get("/api/openapi.json").get_json()
    schemas = spec["components"]["schemas"]

    assert "payment_code" in schemas["LookupRequest"]["properties"]
    assert "payment_code" in schemas["PaymentRequest"]["properties"]
    assert "payment_code" in schemas["ViolationLine"]["properties"]
    assert "payment_code" in schemas["ReceiptItem"]["properties"]
    assert "payment_code" in schemas["SettlementEvent"]["properties"]


# --- the pages --------------------------------------------------------------------------------------------


@in_both_languages
def test_the_lookup_page_offers_the_payment_code_and_the_results_show_it(app, client):
    make_violation(description="Parking where prohibited", payment_code=CODE)

    home = client.get("/").get_data(as_text=True)
    response = client.post("/lookup", data={"proof": "payment", "plate": "蒙B 12345",
                                            "payment_code": "1502 0326 1100 0000 0123"})

    assert 'name="proof" value="payment"' in home and 'name="payment_code"' in home
    assert response.status_code == 200
    page = unescape(response.get_data(as_text=True))
    assert "Parking where prohibited" in page
    assert f'{translated(app, "Payment code (缴款码)")} <span class="nowrap payment-code">{CODE}</span>' in page


@in_both_languages
def test_the_lookup_page_explains_a_miss_and_a_code_of_another_region(app, client):
    make_violation(payment_code=CODE)

    miss = client.post("/lookup", data={"proof": "payment", "plate": "蒙B12345", "payment_code": "15020326110000009999"})
    elsewhere = client.post("/lookup", data={"proof": "payment", "plate": "蒙B12345",
                                             "payment_code": "11010526110000000789"})
    both = client.post("/lookup", data={"proof": "payment", "plate": "蒙B12345", "payment_code": CODE,
                                        "vin_last6": "A12345"})

    assert miss.status_code == 404
    assert translated(app, "No violations match this plate and payment code. Check both and try again: the payment "
                           "code (缴款码) is the 20-digit number on the finance bureau's payment notice.") in unescape(
        miss.get_data(as_text=True))
    assert elsewhere.status_code == 422
    assert translated(app, "This payment code is from another region's finance bureau: this service takes only the "
                           "codes on this city's notices.") in unescape(elsewhere.get_data(as_text=True))
    assert both.status_code == 422
    assert translated(app, "Give one of the VIN code, a notice number or a payment code, not several.") in unescape(
        both.get_data(as_text=True))


def test_the_staff_violation_page_shows_the_code(client):
    violation = make_violation(payment_code=CODE)
    without = make_violation()
    staff = sign_in_as(client, make_supervisor("clerk"))

    assert f'id="payment-code" class="mono">{CODE}<' in staff.get(f"/staff/violations/{violation.id}").get_data(
        as_text=True)
    assert CODE not in staff.get(f"/staff/violations/{without.id}").get_data(as_text=True)


def test_staff_find_a_violation_and_its_payment_by_payment_code(client):
    payment, violation = paid_payment(payment_code=CODE)
    paid_payment(plate="京A00001", vin_last6="B22222", notice_number="110105202611000001")
    staff = sign_in_as(client, make_supervisor("finder"))

    page = staff.post("/staff/search", data={"q": "1502 0326 1100 0000 0123"}).get_data(as_text=True)

    assert payment.id in page and violation.notice_number in page
    assert "京A00001" not in page


@pytest.mark.parametrize("value", [
    15020326110000000123, None, [CODE], {"code": CODE}, True, "", "1502032026%", "' OR 1=1 --", "A" * 10_240,
    CODE[:10] + "\x00" + CODE[10:], "\u202e" + CODE, CODE + "\r\n",
])
def test_a_hostile_payment_code_is_a_422_on_every_route(client, value):
    make_violation(payment_code=CODE)

    lookup_answer = lookup(client, plate="蒙B12345", payment_code=value)
    payment_answer = client.post("/api/v1/payments", headers={"Idempotency-Key": new_key()},
                                 json={"plate": "蒙B12345", "payment_code": value, "violation_ids": [1]})

    assert lookup_answer.status_code == payment_answer.status_code == 422
    assert "payment_code" in lookup_answer.get_json()["errors"]
    if isinstance(value, str):  # what a form can carry
        page = client.post("/lookup", data={"proof": "payment", "plate": "蒙B12345", "payment_code": value})
        assert page.status_code in (400, 422)  # a NUL byte in a form is refused before it is read


def test_the_demo_vehicles_notices_carry_payment_codes_and_the_seed_says_how_to_use_one(app, runner):
    result = runner.invoke(args=["demo", "seed"])

    assert f"plate {DEMO_PLATE} with {DEMO_PAYMENT_CODE}" in result.output
    statement = lookup_vehicle(normalize_plate(DEMO_PLATE), payment_code=DEMO_PAYMENT_CODE)
    assert len(statement.violations) == len(PAYABLE.violations)
    assert all(line.payment_code and in_regions(line.payment_code, ("150200",)) for line in statement.violations)
    assert codes()["110105202611009999"] is None  # the Beijing notice: not a 包头 finance bureau's code


def test_a_deployment_of_another_region_seeds_the_demo_without_codes(app, runner):
    app.config["PAYMENT_CODE_REGIONS"] = ("110000",)

    result = runner.invoke(args=["demo", "seed"])

    assert result.exit_code == 0
    assert DEMO_PAYMENT_CODE not in result.output
    seeded = codes()
    every_notice = sum(len(vehicle.violations) for vehicle in VEHICLES) + 1  # and the Beijing notice
    assert len(seeded) == every_notice and set(seeded.values()) == {None}  # every notice imported, none with a code


def test_the_web_pages_pay_after_a_payment_code_lookup_as_after_a_vin(client):
    violation = overdue_violation(payment_code=CODE)

    results = client.post("/lookup", data={"proof": "payment", "plate": PLATE, "payment_code": CODE})
    token = re.search(r'name="vehicle" value="([^"]+)"', results.get_data(as_text=True)).group(1)
    review = client.post("/pay/review", data={"vehicle": token, "violation_id": str(violation.id)})
    started = client.post("/pay", data={"vehicle": token, "violation_id": str(violation.id),
                                        "idempotency_key": "a" * 32})

    assert review.status_code == 200 and violation.notice_number in review.get_data(as_text=True)
    assert started.status_code == 303
    payment = db.session.execute(sa.select(Payment)).scalar_one()
    assert (payment.plate, payment.vin_last6) == (PLATE, VIN)
