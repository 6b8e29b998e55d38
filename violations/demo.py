"""Demo violations for `flask --app wsgi demo seed`: two vehicles, dated relative to today so every fee stage shows."""
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from flask import current_app

from violations.fees import business_today
from violations.importer import import_rows
from violations.plates import in_regions

DEMO_PLATE, DEMO_VIN = "蒙B·12345", "A12345"
OTHER_PLATE, OTHER_VIN = "京A·D8888", "4F2C91"
PAID_NOTICE = "150203202611000007"
# The finance bureau's payment codes (缴款码) of the demo vehicle's notices: 昆都仑区's finance bureau (150203),
# within 包头市 (150200, the demo's PAYMENT_CODE_REGIONS), the year, then a serial number.
PAYMENT_CODE_PREFIX = "1502032026110000"
DEMO_PAYMENT_CODE = PAYMENT_CODE_PREFIX + "0001"

# (notice suffix, days since decision, fine in minor units, points, offense code, its official description,
#  where, online): one line per case a driver meets. Codes and descriptions as the traffic police's
# system imports them, so English pages show them as they are.
_DEMO = [
    ("0001", 3, 20000, 6, "1625", "驾驶机动车违反道路交通信号灯通行的",  # on time: no late fee yet
     "昆都仑区钢铁大街与林荫路交叉口", True),
    ("0002", 15, 10000, 3, "1352", "机动车违反禁令标志指示的",  # the last day without a late fee
     "青山区幸福路与青年路交叉口", True),
    ("0003", 16, 5000, 0, "1039", "机动车违反规定停放、临时停车且驾驶人不在现场或驾驶人虽在现场拒绝立即驶离，"
     "妨碍其他车辆、行人通行的", "东河区巴彦塔拉大街东河区人民医院门前", True),  # one day of late fee
    ("0004", 30, 20000, 3, "1345", "机动车违反禁止标线指示的",  # in the late-fee stage
     "昆都仑区阿尔丁大街与友谊大街交叉口", True),
    ("0005", 60, 15000, 2, "1208", "机动车通过有灯控路口时，不按所需行进方向驶入导向车道的",  # late fee capped
     "稀土高新区黄河大街与曙光路交叉口", True),
    ("0006", 20, 200000, 12, "13036", "驾驶中型以上载客载货汽车在高速公路、城市快速路以外的道路上"
     "行驶超过规定时速50%以上的", "110国道昆都仑区卜尔汉图镇段", False),  # licence at stake: in person only
    ("0007", 40, 10000, 6, "16252", "机动车不按方向指示信号灯通行的",  # paid by the seed (PAID_NOTICE)
     "九原区建华南路与建设路交叉口", True),
]


def demo_rows(today, regions=("150200",)):
    """CSV-shaped rows, dated relative to today so every fee stage is always shown.

    The demo vehicle's notices carry payment codes when ``regions`` (PAYMENT_CODE_REGIONS) takes 包头市's.
    """
    rows = []
    for i, (suffix, days, fine, points, code, text, place, online) in enumerate(_DEMO):
        decided = today - timedelta(days=days)
        occurred = datetime.combine(decided - timedelta(days=3), time(8 + i, 15), ZoneInfo("Asia/Shanghai"))
        rows.append({
            "notice_number": "1502032026" + "1100" + suffix, "plate": DEMO_PLATE, "vin_last6": DEMO_VIN,
            "occurred_at": occurred.isoformat(), "location": place,
            "offense_code": code, "description": text, "fine": str(fine), "points": str(points),
            "decision_date": decided.isoformat(), "payable_online": "true" if online else "false",
            "payment_code": PAYMENT_CODE_PREFIX + suffix if in_regions(PAYMENT_CODE_PREFIX, regions) else "",
        })
    rows.append({
        "notice_number": "110105202611009999", "plate": OTHER_PLATE, "vin_last6": OTHER_VIN,
        "occurred_at": datetime.combine(today - timedelta(days=10), time(17, 40),
                                        ZoneInfo("Asia/Shanghai")).isoformat(),
        "location": "西城区西长安街与西单北大街交叉口", "offense_code": "1345",
        "description": "机动车违反禁止标线指示的", "fine": "5000", "points": "3",
        "decision_date": (today - timedelta(days=7)).isoformat(), "payable_online": "true",
    })
    return rows


def seed_violations():
    """Load (or refresh) the demo vehicles; the lines that say what to type."""
    today = business_today(current_app.config["BUSINESS_TIMEZONE"])
    regions = current_app.config["PAYMENT_CODE_REGIONS"]
    report = import_rows(enumerate(demo_rows(today, regions), start=2), source="demo seed", actor="demo")
    lines = [
        f"Demo data: {report.inserted} new, {report.updated} refreshed.",
        f"Try plate {DEMO_PLATE} with VIN code {DEMO_VIN}"
        f" (or plate {OTHER_PLATE} with notice number 110105202611009999).",
    ]
    if in_regions(DEMO_PAYMENT_CODE, regions):
        lines.append(f"Or pay by the finance bureau's payment code: plate {DEMO_PLATE} with {DEMO_PAYMENT_CODE}.")
    return lines
