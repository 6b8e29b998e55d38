"""The stripe adapter's listing, against a real localstripe, feeding the reconciliation report."""
import uuid
from datetime import timedelta

import pytest

from finepay.dbtypes import utcnow
from payments import services as payment_services
from payments.gateways import gateway_named
from payments.reconciliation.fetch import fetch_gateway_records
from payments.reconciliation.lines import GATEWAY_ONLY, LEDGER_ONLY, MATCHED
from payments.reconciliation.report import reconcile
from staff import services
from tests.payments.conftest import localstripe, localstripe_server  # noqa: F401  (fixtures)
from tests.payments.helpers import PLATE, VIN, overdue_violation, payment_row, set_payment, today
from tests.payments.test_stripe_gateway import gateway_config
from tests.staff.helpers import csv_rows, make_supervisor, sign_in_as
from violations.fees import business_day_window


@pytest.fixture
def app_config(localstripe):  # noqa: F811  (the fixture imported above)
    """FinePay with PAYMENT_GATEWAY=stripe, pointed at localstripe."""
    return {"PAYMENT_GATEWAY": "stripe", **gateway_config(localstripe)}


def start(fine):
    violation = overdue_violation(fine=fine)
    return payment_services.start_payment(plate=PLATE, vin_last6=VIN, violation_ids=[violation.id],
                                          idempotency_key=f"test-{uuid.uuid4().hex}")


def test_stripe_charges_and_refunds_are_reconciled_against_the_ledger(app, client):
    assert gateway_named("stripe").name == "stripe"
    # Paid through FinePay, then part refunded by a supervisor.
    paid = payment_services.confirm_payment(start(20000).id, "pm_card_visa")
    assert paid.status == "succeeded"
    services.refund(paid.id, amount=3000, reason="late fee waived", form_key="a" * 32, actor_name="staff:boss")
    # Captured at Stripe behind FinePay's back: FinePay still shows it as created.
    unsettled = start(5000)
    gateway_named("stripe").confirm_intent(unsettled.gateway_intent_id, payment_method="pm_card_visa",
                                           idempotency_key=f"outside-{uuid.uuid4()}")
    # A charge made in the Stripe account by something else altogether.
    ghost = gateway_named("stripe").create_intent(payment_id="not-finepay", amount=4400, currency="CNY",
                                                  idempotency_key=f"ghost-{uuid.uuid4()}")
    gateway_named("stripe").confirm_intent(ghost.id, payment_method="pm_card_visa",
                                           idempotency_key=f"ghost-{uuid.uuid4()}")
    # Settled in the ledger with no money at Stripe.
    behind = start(6000)
    set_payment(behind.id, status="succeeded", amount_received=behind.amount, paid_at=utcnow())

    first, last = today() - timedelta(days=1), today()
    start_at, end_at = business_day_window((first, last))
    (fetched,) = fetch_gateway_records(start_at, end_at, actor="test")
    report = reconcile(first, last, limit=100)

    assert fetched.transactions == 4  # three charges and one refund
    lines = {(line["kind"], line["payment_id"] or line["intent_id"]): line for line in report.discrepancies}
    assert lines[("charge", unsettled.id)]["classification"] == GATEWAY_ONLY
    assert lines[("charge", ghost.id)]["classification"] == GATEWAY_ONLY
    assert lines[("charge", ghost.id)]["note"] == "no payment in the ledger for this charge (gateway says payment not-finepay)"
    assert lines[("charge", behind.id)]["classification"] == LEDGER_ONLY
    assert ("charge", paid.id) not in lines and ("refund", paid.id) not in lines
    assert report.classes[MATCHED].count == 2  # the paid charge and its refund
    refunded = payment_row(paid.id)
    assert report.refunds.amount == 3000
    assert sum(t.amount for _g, _c, t in report.gateway_refunds) == 3000
    assert sum(t.amount for _g, _c, t in report.gateway_charges) == refunded.amount_received + unsettled.amount + 4400

    sign_in_as(client, make_supervisor())
    rows = csv_rows(client.get(f"/staff/reconciliation.csv?start={first}&end={last}").get_data(as_text=True))
    by_payment = {(r["kind"], r["payment_id"] or r["intent_id"]): r["classification"] for r in rows}
    assert by_payment == {
        ("charge", paid.id): MATCHED, ("refund", paid.id): MATCHED, ("charge", unsettled.id): GATEWAY_ONLY,
        ("charge", ghost.id): GATEWAY_ONLY, ("charge", behind.id): LEDGER_ONLY,
    }
    assert all(r["gateway"] == "stripe" for r in rows)
