"""Test data builders."""
import itertools
from datetime import UTC, date, datetime

from finepay.extensions import db
from violations.models import Violation

_numbers = itertools.count(1)


def make_violation(**fields):
    """Insert a violation with sensible defaults; any column can be overridden."""
    n = next(_numbers)
    values = {
        "notice_number": f"1502032026110{n:05d}",
        "plate": "蒙B12345",
        "vin_last6": "A12345",
        "occurred_at": datetime(2026, 11, 2, 0, 15, tzinfo=UTC),
        "location": "Jianshe Road / Gangtie Ave",
        "offense_code": "1352",
        "description": "Speeding 20-50% over limit",
        "fine": 20000,
        "points": 6,
        "decision_date": date(2026, 11, 5),
        "status": "unpaid",
        "payable_online": True,
    }
    values.update(fields)
    violation = Violation(**values)
    db.session.add(violation)
    db.session.commit()
    return violation


CSV_HEADER = "notice_number,plate,vin_last6,occurred_at,location,offense_code,description,fine,points,decision_date,payable_online\n"


def csv_row(notice="150203202611000123", plate="蒙B12345", vin="A12345", occurred="2026-11-02T08:15:00+08:00",
            location="Jianshe Road / Gangtie Ave", code="1352", description="Speeding 20-50% over limit",
            fine="20000", points="6", decision="2026-11-05", online="true"):
    """One CSV line in the import format."""
    return ",".join([notice, plate, vin, occurred, location, code, description, fine, points, decision, online]) + "\n"
