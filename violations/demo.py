"""Demo data for `flask --app wsgi demo seed`: one vehicle per case a driver meets, dated relative to today.

Offense codes are those of the national traffic offense code table, with its
official description and points (the code's second digit is its points
class); fines are the demo city's. English pages show the imported
descriptions as they are.
"""
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from flask import current_app

from violations.fees import business_today
from violations.importer import import_rows
from violations.plates import in_regions

RED_LIGHT = ("1625", "驾驶机动车违反道路交通信号灯通行的", 6)
SPEEDING = ("1352", "驾驶中型以上载客载货汽车、危险物品运输车辆以外的其他机动车行驶超过规定时速未达20%的", 3)
PARKING = ("1039", "机动车违反规定停放、临时停车且驾驶人不在现场或驾驶人虽在现场拒绝立即驶离，妨碍其他车辆、行人通行的", 0)
NO_ENTRY_SIGN = ("1344", "机动车违反禁令标志指示的", 3)
SOLID_LINE = ("1345", "机动车违反禁止标线指示的", 3)
WRONG_LANE = ("1208", "机动车通过有灯控路口时，不按所需行进方向驶入导向车道的", 2)


@dataclass(frozen=True)
class DemoVehicle:
    """A demo vehicle: its case, its plate as printed, its VIN code, and (notice suffix, days since decision,
    fine in minor units, offense, where, payable online) for each violation."""

    case: str
    plate: str
    vin: str
    violations: tuple = ()
    notice_proof: bool = False  # listed with its notice number rather than its VIN code

    @property
    def notices(self):
        return [notice(line[0]) for line in self.violations]


def notice(suffix):
    """The demo's notice numbers: issued by the Baotou traffic police (150203) in November 2026."""
    return "1502032026" + "1100" + suffix


# The main vehicle (README, tests): payable fines at every fee stage.
PAYABLE = DemoVehicle("payable", "蒙B·12345", "A12345", (
    ("0001", 3, 20000, RED_LIGHT, "昆都仑区钢铁大街与林荫路交叉口", True),  # on time: no late fee yet
    ("0002", 15, 10000, SPEEDING, "青山区幸福路与青年路交叉口", True),  # the last day without a late fee
    ("0003", 16, 5000, PARKING, "东河区巴彦塔拉大街东河区人民医院门前", True),  # one day of late fee
    ("0004", 30, 20000, SOLID_LINE, "昆都仑区阿尔丁大街与友谊大街交叉口", True),  # the late fee growing
    ("0005", 60, 15000, WRONG_LANE, "稀土高新区黄河大街与曙光路交叉口", True),  # late fee capped
))
IN_PERSON = DemoVehicle("in_person", "蒙B·6M207", "C70316", (
    ("0006", 20, 20000, RED_LIGHT, "110国道昆都仑区卜尔汉图镇段", False),  # settled at the hall only
    ("0008", 5, 5000, PARKING, "青山区文化路包头市第四医院门前", True),
))
PAID = DemoVehicle("paid", "蒙B·3K521", "D52103", (
    ("0007", 40, 10000, NO_ENTRY_SIGN, "九原区建华南路与建设路交叉口", True),  # paid by the seed (payments.demo)
    ("0009", 12, 5000, PARKING, "昆都仑区少先路万达广场北门", True),
))
REFUNDED = DemoVehicle("refunded", "蒙B·R9Q17", "E91720", (
    ("0010", 10, 20000, SOLID_LINE, "东河区南门外大街与西脑包大街交叉口", True),  # paid, then refunded by the seed
))
BY_NOTICE = DemoVehicle("notice", "京A·D8888", "4F2C91", (), notice_proof=True)  # its line is BEIJING_LINE
NOTHING = DemoVehicle("nothing", "蒙B·88888", "B88888")  # no violations on record
VEHICLES = (PAYABLE, IN_PERSON, PAID, REFUNDED, BY_NOTICE, NOTHING)

DEMO_PLATE, DEMO_VIN = PAYABLE.plate, PAYABLE.vin
OTHER_PLATE, OTHER_VIN = BY_NOTICE.plate, BY_NOTICE.vin
OTHER_NOTICE = "110105202611009999"  # issued in Beijing (110105): the notice-number proof
PAID_NOTICES = tuple(PAID.notices)
PAID_NOTICE = PAID_NOTICES[0]
REFUNDED_NOTICES = tuple(REFUNDED.notices)

# The finance bureau's payment codes (缴款码) of the Baotou notices: 昆都仑区's finance bureau (150203),
# within 包头市 (150200, the demo's PAYMENT_CODE_REGIONS), the year, then the notice's serial number.
PAYMENT_CODE_PREFIX = "1502032026110000"
DEMO_PAYMENT_CODE = PAYMENT_CODE_PREFIX + PAYABLE.violations[0][0]

# What each case is, for the list `demo seed` and `make run` print.
CASES = {
    "payable": "payable online, one fee stage each (on time, last free day, late fee growing, capped)",
    "in_person": "one violation to settle in person at the service hall, beside a payable one",
    "paid": "everything paid, with a receipt",
    "refunded": "paid, then refunded (a refunded receipt)",
    "notice": "reached with the notice-number proof",
    "nothing": "no violations on record (any VIN code)",
}


def demo_rows(today, regions=("150200",)):
    """CSV-shaped rows, dated relative to today so every fee stage is always shown.

    The Baotou notices carry payment codes when ``regions`` (PAYMENT_CODE_REGIONS) takes 包头市's.
    """
    with_codes = in_regions(PAYMENT_CODE_PREFIX, regions)
    rows = []
    tz = ZoneInfo("Asia/Shanghai")
    hour = 8
    for vehicle in VEHICLES:
        for suffix, days, fine, (code, text, points), place, online in vehicle.violations:
            decided = today - timedelta(days=days)
            occurred = datetime.combine(decided - timedelta(days=3), time(hour % 24, 15), tz)
            hour += 1
            rows.append({
                "notice_number": notice(suffix), "plate": vehicle.plate, "vin_last6": vehicle.vin,
                "occurred_at": occurred.isoformat(), "location": place,
                "offense_code": code, "description": text, "fine": str(fine), "points": str(points),
                "decision_date": decided.isoformat(), "payable_online": "true" if online else "false",
                "payment_code": PAYMENT_CODE_PREFIX + suffix if with_codes else "",
            })
    code, text, points = SOLID_LINE
    rows.append({
        "notice_number": OTHER_NOTICE, "plate": OTHER_PLATE, "vin_last6": OTHER_VIN,
        "occurred_at": datetime.combine(today - timedelta(days=10), time(17, 40), tz).isoformat(),
        "location": "西城区西长安街与西单北大街交叉口", "offense_code": code,
        "description": text, "fine": "5000", "points": str(points),
        "decision_date": (today - timedelta(days=7)).isoformat(), "payable_online": "true",
    })
    return rows


def vehicle_lines():
    """One line per demo vehicle: its plate, the proof to type and its case."""
    lines = []
    for vehicle in VEHICLES:
        proof = f"notice number {OTHER_NOTICE}" if vehicle.notice_proof else f"VIN code {vehicle.vin}"
        lines.append(f"  {vehicle.plate}  {proof}: {CASES[vehicle.case]}")
    return lines


def seed_violations():
    """Load (or refresh) the demo vehicles; the lines that say what to type."""
    today = business_today(current_app.config["BUSINESS_TIMEZONE"])
    regions = current_app.config["PAYMENT_CODE_REGIONS"]
    report = import_rows(enumerate(demo_rows(today, regions), start=2), source="demo seed", actor="demo")
    lines = [f"Demo data: {report.inserted} new, {report.updated} refreshed. Demo vehicles (plate, proof: case):",
             *vehicle_lines()]
    if in_regions(DEMO_PAYMENT_CODE, regions):
        lines.append(f"Or pay by the finance bureau's payment code: plate {DEMO_PLATE} with {DEMO_PAYMENT_CODE}.")
    return lines
