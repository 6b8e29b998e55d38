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


def paid_with_fee(client, *fines):
    violations = [make_violation(fine=fine) for fine in fines]
    payment = client.post("/api/v1/payments", headers={"Idempotency-Key": str(uuid.uuid4())}, json={
        "plate": "蒙B12345", "vin_last6": "A12345", "violation_ids": [v.id for v in violations],
    }).get_json()
    paid = client.post(f"/api/v1/payments/{payment['id']}/confirm", json={"payment_method": "pm_card_visa"}).get_json()
    assert paid["status"] == "succeeded"
    return paid, violations


def test_a_line_refunded_in_full_gives_back_its_share_of_the_fee(client):
    from finepay.extensions import db
    from payments import services
    from payments.models import Payment

    paid, (first, second) = paid_with_fee(client, 20000, 5000)
    fines = {item["violation_id"]: item["fine"] + item["late_fee"] for item in paid["items"]}
    payment = db.session.get(Payment, paid["id"])
    second_item = next(i.id for i in payment.items if i.violation_id == second.id)

    refund = services.refund_payment(paid["id"], item_ids=[second_item], reason="appeal upheld", actor="staff:x")

    receipt = client.get(f"/api/v1/receipts/{paid['receipt_number']}").get_json()
    lines = {line["violation_id"]: line for line in receipt["items"]}
    assert sum(line["service_fee"] for line in lines.values()) == paid["convenience_fee"]
    share = lines[second.id]["service_fee"]
    assert abs(share - paid["convenience_fee"] * fines[second.id] / sum(fines.values())) < 1  # in proportion
    assert refund.amount == fines[second.id] + share
    assert (lines[second.id]["state"], lines[second.id]["net"]) == ("refunded", 0)
    assert (lines[first.id]["state"], lines[first.id]["net"]) == ("paid", fines[first.id] + lines[first.id]["service_fee"])
    assert receipt["net_amount"] == paid["amount"] - refund.amount


def test_a_fine_refunded_without_its_fee_share_stays_paid(client):
    from payments import services

    paid, (violation,) = paid_with_fee(client, 20000)
    (item,) = paid["items"]

    services.refund_payment(paid["id"], item["fine"] + item["late_fee"], reason="fine waived", actor="staff:x")

    lookup = client.post("/api/v1/lookups", json={"plate": "蒙B12345", "vin_last6": "A12345"}).get_json()
    assert [v["status"] for v in lookup["violations"] if v["id"] == violation.id] == ["paid"]
