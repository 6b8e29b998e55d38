"""Demo violations for `flask --app wsgi demo seed`: two vehicles, dated relative to today so every fee stage shows."""
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from flask import current_app

from violations.fees import business_today
from violations.importer import import_rows

DEMO_PLATE, DEMO_VIN = "蒙B·12345", "A12345"
OTHER_PLATE, OTHER_VIN = "京A·D8888", "4F2C91"
PAID_NOTICE = "150203202611000007"

# (notice suffix, days since decision, fine in minor units, points, offense, description, online)
_DEMO = [
    ("0001", 3, 20000, 6, "1352", "Speeding 20-50% over the limit", True),
    ("0002", 15, 10000, 3, "1625", "Running a red light", True),
    ("0003", 16, 5000, 0, "1039", "Parking where prohibited", True),
    ("0004", 30, 20000, 3, "1345", "Speeding 10-20% over the limit", True),
    ("0005", 60, 15000, 2, "1301", "Driving in a bus lane", True),
    ("0006", 20, 200000, 12, "1711", "Drink driving (must be handled in person)", False),
    ("0007", 40, 10000, 1, "1042", "Not wearing a seat belt", True),
]
_PLACES = ["Jianshe Road / Gangtie Ave", "Youyi Ave 88", "Altan Road near No. 3 Middle School"]


def demo_rows(today):
    """CSV-shaped rows, dated relative to today so every fee stage is always shown."""
    rows = []
    for i, (suffix, days, fine, points, code, text, online) in enumerate(_DEMO):
        decided = today - timedelta(days=days)
        occurred = datetime.combine(decided - timedelta(days=3), time(8 + i, 15), ZoneInfo("Asia/Shanghai"))
        rows.append({
            "notice_number": "1502032026" + "1100" + suffix, "plate": DEMO_PLATE, "vin_last6": DEMO_VIN,
            "occurred_at": occurred.isoformat(), "location": _PLACES[i % len(_PLACES)],
            "offense_code": code, "description": text, "fine": str(fine), "points": str(points),
            "decision_date": decided.isoformat(), "payable_online": "true" if online else "false",
        })
    rows.append({
        "notice_number": "110105202611009999", "plate": OTHER_PLATE, "vin_last6": OTHER_VIN,
        "occurred_at": datetime.combine(today - timedelta(days=10), time(17, 40),
                                        ZoneInfo("Asia/Shanghai")).isoformat(),
        "location": "Chang'an Ave / Xidan", "offense_code": "1208",
        "description": "Using a phone while driving", "fine": "5000", "points": "3",
        "decision_date": (today - timedelta(days=7)).isoformat(), "payable_online": "true",
    })
    return rows


def seed_violations():
    """Load (or refresh) the demo vehicles; the lines that say what to type."""
    today = business_today(current_app.config["BUSINESS_TIMEZONE"])
    report = import_rows(enumerate(demo_rows(today), start=2), source="demo seed", actor="demo")
    return [
        f"Demo data: {report.inserted} new, {report.updated} refreshed.",
        f"Try plate {DEMO_PLATE} with VIN code {DEMO_VIN}"
        f" (or plate {OTHER_PLATE} with notice number 110105202611009999).",
    ]
