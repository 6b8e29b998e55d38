"""CONVENIENCE_FEE_BPS: an optional service fee, its own line, part of the locked amount."""
import uuid

import pytest

from tests.factories import make_violation


@pytest.fixture
def app_config():
    """1.5 % service fee."""
    return {"CONVENIENCE_FEE_BPS": 150}


def test_the_fee_is_added_to_the_amount_and_shown_separately(client):
    first, second = make_violation(fine=20000), make_violation(fine=5050)

    body = client.post("/api/v1/payments", headers={"Idempotency-Key": str(uuid.uuid4())}, json={
        "plate": "蒙B12345", "vin_last6": "A12345", "violation_ids": [first.id, second.id],
    }).get_json()

    fines = sum(item["fine"] + item["late_fee"] for item in body["items"])
    assert body["convenience_fee"] == (fines * 150 + 5000) // 10000  # rounded half up
    assert body["amount"] == fines + body["convenience_fee"]


def test_paying_with_a_fee_settles_without_a_surplus_refund(client):
    violation = make_violation(fine=20000)
    payment = client.post("/api/v1/payments", headers={"Idempotency-Key": str(uuid.uuid4())}, json={
        "plate": "蒙B12345", "vin_last6": "A12345", "violation_ids": [violation.id],
    }).get_json()

    paid = client.post(f"/api/v1/payments/{payment['id']}/confirm", json={"payment_method": "pm_card_visa"}).get_json()

    assert paid["status"] == "succeeded"
    assert paid["refunds"] == []


def test_without_the_setting_there_is_no_fee(app, client):
    app.config["CONVENIENCE_FEE_BPS"] = 0
    violation = make_violation(fine=20000)

    body = client.post("/api/v1/payments", headers={"Idempotency-Key": str(uuid.uuid4())}, json={
        "plate": "蒙B12345", "vin_last6": "A12345", "violation_ids": [violation.id],
    }).get_json()

    assert body["convenience_fee"] == 0
