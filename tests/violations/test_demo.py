"""`flask demo seed`: Chinese demo data with real offense codes, one vehicle for each case a driver meets."""
import re

from sqlalchemy import func, select

from finepay.extensions import db
from payments.models import Payment, Refund
from violations.demo import (
    IN_PERSON,
    NOTHING,
    OTHER_NOTICE,
    PAID,
    PAYABLE,
    REFUNDED,
    VEHICLES,
)
from violations.plates import normalize_plate
from violations.services import lookup_vehicle

CHINESE = re.compile(r"[\u4e00-\u9fff]")
# Codes of the national offense code table with their official descriptions; a code's second digit is its points.
OFFICIAL = {
    "1625": "驾驶机动车违反道路交通信号灯通行的",
    "1352": "驾驶中型以上载客载货汽车、危险物品运输车辆以外的其他机动车行驶超过规定时速未达20%的",
    "1344": "机动车违反禁令标志指示的",
    "1345": "机动车违反禁止标线指示的",
    "1208": "机动车通过有灯控路口时，不按所需行进方向驶入导向车道的",
}


def seeded(runner):
    result = runner.invoke(args=["demo", "seed"])
    assert result.exit_code == 0, result.output
    return result.output


def statement(vehicle):
    return lookup_vehicle(normalize_plate(vehicle.plate), vin_last6=vehicle.vin)


def test_demo_descriptions_and_places_are_chinese_with_official_codes_and_points(runner):
    seeded(runner)
    lines = [line for vehicle in (PAYABLE, IN_PERSON, PAID, REFUNDED) for line in statement(vehicle).violations]
    lines += lookup_vehicle(normalize_plate("京A·D8888"), notice_number=OTHER_NOTICE).violations

    assert all(CHINESE.search(line.description) and CHINESE.search(line.location) for line in lines)
    for line in lines:
        assert re.fullmatch(r"\d{4}", line.offense_code)
        assert line.points == int(line.offense_code[1]), line.offense_code  # the points class of the code
        if line.offense_code in OFFICIAL:
            assert line.description == OFFICIAL[line.offense_code]
    codes = {line.offense_code for line in lines}
    assert {"1625", "1352", "1039", "1345"} <= codes
    assert not codes & {"13036", "16252"}


def test_each_typical_case_has_its_own_vehicle(runner):
    seeded(runner)

    payable = statement(PAYABLE).violations
    assert all(line.status == "unpaid" and line.payable for line in payable)
    assert any(line.days_overdue == 0 for line in payable)  # on time
    assert any(0 < line.late_fee < line.fine for line in payable)  # late fee running
    assert any(line.late_fee == line.fine for line in payable)  # capped

    in_person = statement(IN_PERSON).violations
    assert sorted(line.payable_online for line in in_person) == [False, True]
    assert all(line.status == "unpaid" for line in in_person)

    paid = statement(PAID).violations
    assert len(paid) == 2 and all(line.status == "paid" and line.receipt_number for line in paid)
    assert len({line.receipt_number for line in paid}) == 1  # one payment, one receipt

    refunded = statement(REFUNDED).violations
    assert [line.status for line in refunded] == ["unpaid"]  # refunded in full: owed again

    assert lookup_vehicle(normalize_plate(NOTHING.plate), vin_last6=NOTHING.vin) is None


def test_the_seed_lists_every_demo_vehicle_with_its_proof_and_the_receipts(runner):
    output = seeded(runner)

    for vehicle in VEHICLES:
        assert vehicle.plate in output
    assert "蒙B·12345  VIN code A12345" in output
    assert f"京A·D8888  notice number {OTHER_NOTICE}" in output
    assert re.search(r"蒙B·3K521: receipt FP(-[0-9A-Z]{4}){4}", output)
    assert re.search(r"蒙B·R9Q17: refunded receipt FP(-[0-9A-Z]{4}){4}", output)


def test_seeding_twice_pays_and_refunds_once(runner):
    seeded(runner)
    seeded(runner)
    assert db.session.execute(select(func.count()).select_from(Payment)).scalar() == 2
    assert db.session.execute(select(func.count()).select_from(Refund)).scalar() == 1
