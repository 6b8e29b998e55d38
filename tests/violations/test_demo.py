"""`flask demo seed`: Chinese demo data with real offense codes, one line for each case a driver meets."""
import re

from violations.demo import DEMO_PLATE, DEMO_VIN, OTHER_PLATE, OTHER_VIN
from violations.plates import normalize_plate
from violations.services import lookup_vehicle

CHINESE = re.compile(r"[\u4e00-\u9fff]")


def seeded(runner):
    result = runner.invoke(args=["demo", "seed"])
    assert result.exit_code == 0, result.output
    return lookup_vehicle(normalize_plate(DEMO_PLATE), vin_last6=DEMO_VIN)


def test_demo_descriptions_and_places_are_chinese_with_official_codes(runner):
    statement = seeded(runner)
    other = lookup_vehicle(normalize_plate(OTHER_PLATE), vin_last6=OTHER_VIN)

    lines = statement.violations + other.violations
    assert all(CHINESE.search(line.description) and CHINESE.search(line.location) for line in lines)
    assert all(re.fullmatch(r"\d{4,5}", line.offense_code) for line in lines)
    codes = {line.offense_code: line.description for line in lines}
    assert codes["1352"] == "机动车违反禁令标志指示的"
    assert codes["1625"] == "驾驶机动车违反道路交通信号灯通行的"
    assert codes["1039"].startswith("机动车违反规定停放、临时停车且驾驶人不在现场")
    assert "超过规定时速50%以上" in codes["13036"]


def test_the_demo_vehicle_shows_every_case_a_driver_meets(runner):
    statement = seeded(runner)

    unpaid = [line for line in statement.violations if line.status == "unpaid"]
    assert any(line.payable and line.days_overdue == 0 for line in unpaid)  # on time
    assert any(line.payable and 0 < line.late_fee < line.fine for line in unpaid)  # late fee growing
    assert any(line.payable and line.late_fee == line.fine for line in unpaid)  # capped
    assert [line.offense_code for line in unpaid if not line.payable_online] == ["13036"]  # in person only
    assert [line.status for line in statement.violations].count("paid") == 1
