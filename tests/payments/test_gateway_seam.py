"""The gateway seam is real: a third adapter installed through an entry point, and faults
at the gateway that leave payments for sync to resolve without ever charging twice."""
import uuid

import pytest
from sqlalchemy import func, select

from finepay.extensions import db
from payments import states
from payments.gateways import available_gateways, gateway_named
from payments.gateways.sandbox import SandboxIntent
from payments.models import Payment
from payments.services import sync_payments
from tests.factories import make_violation
from tests.payments import scripted_gateway
from tests.payments.scripted_gateway import ScriptedGateway


@pytest.fixture
def app_config(tmp_path, monkeypatch):
    """Run these tests' app on the scripted adapter, installed through an entry point."""
    return scripted_gateway.install(tmp_path, monkeypatch)


def create(client, violation, key=None):
    return client.post("/api/v1/payments", headers={"Idempotency-Key": key or str(uuid.uuid4())},
                       json={"plate": violation.plate, "vin_last6": violation.vin_last6,
                             "violation_ids": [violation.id]})


def captures():
    return db.session.execute(
        select(func.count()).select_from(SandboxIntent).where(SandboxIntent.status == "succeeded")
    ).scalar()


def test_a_third_adapter_is_found_through_its_entry_point(app):
    assert "scripted" in available_gateways()
    assert isinstance(gateway_named("scripted"), ScriptedGateway)


def test_gateway_down_at_create_is_a_503_and_the_same_key_retries_cleanly(client):
    violation = make_violation()
    ScriptedGateway.script = {"create": ["down"]}

    first = create(client, violation, key="retry-key-0001")
    second = create(client, violation, key="retry-key-0001")

    assert first.status_code == 503
    assert first.get_json()["code"] == "gateway_unavailable"
    assert second.status_code == 201
    assert db.session.execute(select(func.count()).select_from(Payment)).scalar() == 1
    assert db.session.execute(select(func.count()).select_from(SandboxIntent)).scalar() == 1


def test_gateway_down_at_confirm_charges_nothing_and_lets_the_driver_retry(client):
    violation = make_violation()
    payment = create(client, violation).get_json()
    ScriptedGateway.script = {"confirm": ["down"]}

    down = client.post(f"/api/v1/payments/{payment['id']}/confirm", json={"payment_method": "pm_card_visa"})
    retry = client.post(f"/api/v1/payments/{payment['id']}/confirm", json={"payment_method": "pm_card_visa"})

    assert down.status_code == 503
    assert "Nothing was charged" in down.get_json()["message"]
    assert retry.get_json()["status"] == "succeeded"
    assert captures() == 1


def test_a_lost_answer_after_the_charge_is_resolved_by_sync_with_one_charge(client):
    violation = make_violation()
    payment = create(client, violation).get_json()
    ScriptedGateway.script = {"confirm": ["timeout_after"]}

    lost = client.post(f"/api/v1/payments/{payment['id']}/confirm", json={"payment_method": "pm_card_visa"})
    again = client.post(f"/api/v1/payments/{payment['id']}/confirm", json={"payment_method": "pm_card_visa"})
    second_payment = create(client, violation)

    assert lost.status_code == 503
    assert lost.get_json()["code"] == "gateway_timeout"
    assert "Do not pay again" in lost.get_json()["message"]
    assert again.status_code == 409  # still being confirmed: no second attempt
    assert second_payment.status_code == 409
    assert db.session.get(Payment, payment["id"]).status == states.PROCESSING

    counts = sync_payments()

    db.session.expire_all()
    assert counts["changed"] == 1
    assert db.session.get(Payment, payment["id"]).status == states.SUCCEEDED
    db.session.refresh(violation)
    assert violation.status == "paid"
    assert captures() == 1
