"""POST /api/v1/lookups and the lookup service, on SQLite and PostgreSQL."""
from datetime import UTC, date, datetime, timedelta

import pytest

from tests.factories import make_violation
from violations.services import lookup_vehicle

# 2026-11-27 10:00 in Shanghai.
NOW = datetime(2026, 11, 27, 2, 0, tzinfo=UTC)


def lookup(client, **body):
    return client.post("/api/v1/lookups", json=body)


def test_lookup_by_plate_and_vin_lists_the_vehicles_violations(client):
    make_violation(notice_number="150203202611000123", fine=20000, decision_date=date.today())
    make_violation(notice_number="150203202611000124", fine=5000)
    make_violation(notice_number="150203202611000999", plate="京A00001", vin_last6="B22222")

    response = lookup(client, plate="蒙b·12345", vin_last6="a12345")

    assert response.status_code == 200
    body = response.get_json()
    assert body["plate"] == "蒙B12345"
    assert body["currency"] == "CNY"
    assert sorted(v["notice_number"] for v in body["violations"]) == ["150203202611000123", "150203202611000124"]
    first = body["violations"][0]
    assert set(first) == {
        "id", "notice_number", "occurred_at", "location", "offense_code", "description", "points", "fine",
        "late_fee", "amount_due", "due_date", "status", "payable_online", "receipt_number", "instalment_plan",
        "contest_case",  # the open contest holding it (cases/), null when none
        "payment_code",
    }
    assert first["instalment_plan"] is None  # none approved (docs/instalments.md)
    assert body["total_due"] == sum(v["amount_due"] for v in body["violations"])
    assert response.headers["Cache-Control"] == "no-store"


def test_lookup_by_notice_number_shows_all_violations_of_that_vehicle(client):
    make_violation(notice_number="150203202611000123")
    make_violation(notice_number="150203202611000124")
    # Same plate, another car (plates get reissued): never shown.
    make_violation(notice_number="150203202611000125", vin_last6="Z99999")

    response = lookup(client, plate="蒙B12345", notice_number="150203202611000124")

    assert response.status_code == 200
    assert sorted(v["notice_number"] for v in response.get_json()["violations"]) == [
        "150203202611000123", "150203202611000124",
    ]


def test_notice_number_of_another_plate_does_not_match(client):
    make_violation(notice_number="150203202611000123")
    make_violation(notice_number="150203202611000999", plate="京A00001", vin_last6="B22222")

    assert lookup(client, plate="蒙B12345", notice_number="150203202611000999").status_code == 404


def test_wrong_vin_and_unknown_plate_get_identical_404_bodies(client):
    make_violation()

    wrong_vin = lookup(client, plate="蒙B12345", vin_last6="B12345")
    unknown_plate = lookup(client, plate="蒙B99999", vin_last6="A12345")

    assert wrong_vin.status_code == unknown_plate.status_code == 404
    assert wrong_vin.data == unknown_plate.data
    assert wrong_vin.get_json()["code"] == "not_found"


def test_money_is_integer_minor_units(client):
    make_violation(fine=12345)

    violation = lookup(client, plate="蒙B12345", vin_last6="A12345").get_json()["violations"][0]

    for key in ("fine", "late_fee", "amount_due"):
        assert isinstance(violation[key], int)


class TestPricing:
    """The service prices each violation as of the business-zone date."""

    def test_unpaid_violation_on_day_16_owes_one_day_of_late_fee(self, app):
        make_violation(fine=20000, decision_date=date(2026, 11, 11))  # day 16 on the 27th

        line = lookup_vehicle("蒙B12345", vin_last6="A12345", now=NOW).violations[0]

        assert (line.fine, line.late_fee, line.amount_due) == (20000, 600, 20600)
        assert line.due_date == date(2026, 11, 26)
        assert line.days_overdue == 1

    def test_paid_violation_shows_what_was_paid_and_owes_nothing(self, app):
        make_violation(status="paid", fine=20000, decision_date=date(2026, 9, 1), late_fee_paid=1200,
                       paid_at=NOW - timedelta(days=40), receipt_number="R123")

        statement = lookup_vehicle("蒙B12345", vin_last6="A12345", now=NOW)

        line = statement.violations[0]
        assert (line.late_fee, line.amount_due, line.receipt_number) == (1200, 0, "R123")
        assert statement.total_due == 0

    def test_void_violation_owes_nothing(self, app):
        make_violation(status="void")

        statement = lookup_vehicle("蒙B12345", vin_last6="A12345", now=NOW)

        assert statement.total_due == 0
        assert statement.violations[0].amount_due == 0

    def test_not_payable_online_still_shows_its_amount_but_is_not_payable(self, app):
        v = make_violation(payable_online=False, fine=200000, decision_date=date(2026, 11, 20))

        statement = lookup_vehicle("蒙B12345", vin_last6="A12345", now=NOW)

        assert statement.violations[0].amount_due == 200000
        assert v.id not in statement.payable_ids

    def test_times_are_shown_in_the_business_time_zone(self, app):
        make_violation(occurred_at=datetime(2026, 11, 1, 20, 0, tzinfo=UTC))

        line = lookup_vehicle("蒙B12345", vin_last6="A12345", now=NOW).violations[0]

        assert line.occurred_at.isoformat() == "2026-11-02T04:00:00+08:00"

    def test_needs_exactly_one_proof(self, app):
        with pytest.raises(ValueError):
            lookup_vehicle("蒙B12345")


def test_openapi_document_describes_the_lookup(client):
    response = client.get("/api/openapi.json")

    assert response.status_code == 200
    spec = response.get_json()
    operation = spec["paths"]["/api/v1/lookups"]["post"]
    assert {"200", "404", "422", "429"} <= set(operation["responses"])


def test_lookup_page_shows_violations_for_the_vehicle(client):
    make_violation(description="Parking where prohibited")

    response = client.post("/lookup", data={"proof": "vin", "plate": "蒙B 12345", "vin_last6": "A12345"})

    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert "Parking where prohibited" in page
    assert "CN¥200.00" in page


def test_lookup_page_no_match_is_friendly_and_404(client):
    response = client.post("/lookup", data={"proof": "vin", "plate": "蒙B12345", "vin_last6": "A12345"})

    assert response.status_code == 404
    assert "Nothing found" in response.get_data(as_text=True)
