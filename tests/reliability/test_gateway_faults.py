"""A gateway that times out, answers 500 or answers slowly: no double charge, and sync resolves every payment."""
import itertools
import uuid
from collections import Counter
from datetime import timedelta

import pytest
from sqlalchemy import update

from finepay.dbtypes import utcnow
from finepay.extensions import db
from payments.models import Payment
from payments.services import sync_payments
from tests.payments import scripted_gateway
from tests.payments.helpers import end_session_after_each_request, overdue_violation
from tests.payments.scripted_gateway import ScriptedGateway
from tests.reliability.ledger import ledger_report

FAULTS = ["ok", "slow", "timeout_before", "timeout_after", "error500_before", "error500_after"]
PAYMENTS = 24


@pytest.fixture
def app_config(tmp_path, monkeypatch):
    """Run on the scripted adapter, installed as a distribution with an entry point."""
    # 24 drivers pay from one test client: creating a payment proves a vehicle and so spends the
    # per-client lookup budget, which this test is not about.
    return {**scripted_gateway.install(tmp_path, monkeypatch), "LOOKUP_RATE_LIMIT": "100000/minute"}


def test_gateway_faults_never_double_charge_and_sync_resolves_them(app, client):
    end_session_after_each_request(app)
    violations = [overdue_violation(notice_number=f"1502032026118{i:05d}") for i in range(PAYMENTS)]
    faults = list(itertools.islice(itertools.cycle(FAULTS), PAYMENTS))
    ScriptedGateway.script = {"confirm": list(faults)}
    answers = Counter()
    sent = 0

    def post(path, **kwargs):
        nonlocal sent
        sent += 1
        response = client.post(path, **kwargs)
        answers[f"{response.status_code} {(response.get_json() or {}).get('status') or (response.get_json() or {}).get('code')}"] += 1
        assert response.status_code < 500 or response.status_code in (502, 503), response.get_json()
        return response

    def attempt(violation):
        created = post("/api/v1/payments", headers={"Idempotency-Key": str(uuid.uuid4())},
                       json={"plate": violation.plate, "vin_last6": violation.vin_last6,
                             "violation_ids": [violation.id]})
        if created.status_code != 201:
            return None
        payment_id = created.get_json()["id"]
        first = post(f"/api/v1/payments/{payment_id}/confirm", json={"payment_method": "pm_card_visa"})
        if first.status_code != 200:
            # The impatient driver presses Pay again, then starts over.
            post(f"/api/v1/payments/{payment_id}/confirm", json={"payment_method": "pm_card_visa"})
            post("/api/v1/payments", headers={"Idempotency-Key": str(uuid.uuid4())},
                 json={"plate": violation.plate, "vin_last6": violation.vin_last6, "violation_ids": [violation.id]})
        return payment_id

    for violation in violations:
        attempt(violation)
    before_sync = ledger_report()
    first_sync = sync_payments()
    # Time passes (cron runs again later): confirms that never reached the gateway go stale and fail.
    db.session.execute(update(Payment).where(Payment.status == "processing")
                       .values(updated_at=utcnow() - timedelta(minutes=5)))
    db.session.commit()
    second_sync = sync_payments()
    after_sync = ledger_report()
    # Drivers whose payment failed pay again, with no fault this time.
    retried = 0
    for violation in violations:
        db.session.refresh(violation)
        if violation.status != "paid":
            retried += 1
            attempt(violation)
    final = ledger_report()

    print(f"\n[reliability] gateway faults: payments {PAYMENTS}, requests sent {sent}, faults injected "
          f"{dict(Counter(f for f in faults if f != 'ok'))}, answers {dict(answers)}; before sync {before_sync['statuses']}, "
          f"sync 1 {first_sync}, sync 2 {second_sync}, after sync {after_sync['statuses']}; drivers who paid again "
          f"{retried}; final: violations paid {final['violations_paid']}/{PAYMENTS}, payments lost "
          f"{final['payments_lost']}, double charges {final['double_charges']}")

    for report in (after_sync, final):
        assert report["double_charges"] == 0, report
        assert report["payments_lost"] == 0, report
        assert report["charged"] == report["settled"], report
        assert report["audit_disagreements"] == 0 and report["audit_chain_ok"], report
    assert "processing" not in after_sync["statuses"], after_sync
    assert final["violations_paid"] == PAYMENTS, final
