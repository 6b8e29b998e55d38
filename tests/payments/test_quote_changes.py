"""A payment settles only the price and payability that hold when the money is captured.

An import that changes a violation held by an open payment cancels that
payment first (at the gateway too) or refuses the row; whatever slips past
(a change made between the quote and the capture) is refunded at capture,
never settled at a price that no longer exists. A fine of 0 is not payable.
"""
import pytest
from sqlalchemy import select, update

from finepay.extensions import db
from payments.gateways import GatewayError, gateway_named
from payments.models import Refund
from tests.factories import csv_row
from tests.payments.helpers import (
    audit_entries,
    capture_at_sandbox,
    confirm,
    create,
    create_ok,
    end_session_after_each_request,
    fresh_violation,
    lookup,
    payment_row,
    sandbox_intents,
    sandbox_refunds,
    set_payment,
    today,
)
from tests.violations.test_import import run_import, write_csv
from violations.models import Violation

NOTICE = "150203202611000123"
QUOTED_FINE = 40000  # ¥400


@pytest.fixture(autouse=True)
def _clean_requests(app):
    end_session_after_each_request(app)


@pytest.fixture
def quoted(client):
    """A ¥400 violation (no late fee) with an open payment whose intent exists at the gateway."""
    violation = fresh_violation(notice_number=NOTICE, fine=QUOTED_FINE)
    payment = create_ok(client, [violation.id])
    assert payment["amount"] == QUOTED_FINE
    return violation.id, payment["id"]


def reimport(runner, tmp_path, *options, **changes):
    """Import the quoted violation's notice again, with changed columns; returns the CLI result."""
    fields = {"notice": NOTICE, "fine": str(QUOTED_FINE), "decision": today().isoformat(), **changes}
    return run_import(runner, write_csv(tmp_path, csv_row(**fields)), *options)


def stored(violation_id):
    db.session.expire_all()
    return db.session.get(Violation, violation_id)


@pytest.mark.parametrize("changes", [{"fine": "50000"}, {"online": "false"}], ids=["new_fine", "in_person_only"])
def test_a_reimport_that_changes_a_quoted_violation_cancels_its_payment_at_the_gateway_too(
        client, runner, tmp_path, quoted, changes):
    violation_id, payment_id = quoted

    result = reimport(runner, tmp_path, **changes)
    # The driver who confirms the old quote pays nothing at the old price.
    response = confirm(client, payment_id)

    assert response.status_code == 409 and response.get_json()["code"] == "payment_closed", response.get_json()
    assert not sandbox_intents(status="succeeded")
    assert stored(violation_id).status == "unpaid"
    assert stored(violation_id).fine == int(changes.get("fine", QUOTED_FINE))
    assert payment_row(payment_id).status == "canceled"
    (intent,) = sandbox_intents(payment_id=payment_id)
    assert intent.status == "canceled"
    assert result.exit_code == 0, result.output
    assert f"line 2: open payment {payment_id} cancelled" in result.stdout
    assert "1 open payments cancelled" in result.stdout


def test_after_a_new_fine_the_driver_pays_the_new_amount(client, runner, tmp_path, quoted):
    violation_id, _payment_id = quoted
    reimport(runner, tmp_path, fine="50000")

    payment = create_ok(client, [violation_id])
    response = confirm(client, payment["id"])

    assert payment["amount"] == 50000
    assert response.get_json()["status"] == "succeeded"
    assert stored(violation_id).status == "paid"


def test_an_in_person_only_violation_cannot_be_paid_online_after_the_reimport(client, runner, tmp_path, quoted):
    violation_id, _payment_id = quoted
    reimport(runner, tmp_path, online="false")

    response = create(client, [violation_id])

    assert response.status_code == 422 and response.get_json()["code"] == "not_payable_online"


def test_an_identical_reimport_leaves_the_open_payment_alone(client, runner, tmp_path, quoted):
    violation_id, payment_id = quoted

    result = reimport(runner, tmp_path)

    assert result.exit_code == 0, result.output
    assert "0 open payments cancelled" in result.stdout
    assert confirm(client, payment_id).get_json()["status"] == "succeeded"
    assert stored(violation_id).status == "paid"


def test_a_dry_run_says_which_payment_would_be_cancelled_and_touches_nothing(runner, tmp_path, quoted):
    _violation_id, payment_id = quoted

    result = reimport(runner, tmp_path, "--dry-run", fine="50000")

    assert f"line 2: open payment {payment_id} would be cancelled" in result.stdout
    assert payment_row(payment_id).status == "created"
    assert sandbox_intents(payment_id=payment_id)[0].status == "requires_payment_method"


def test_a_row_whose_payment_is_being_processed_is_refused(client, runner, tmp_path, quoted):
    violation_id, payment_id = quoted
    set_payment(payment_id, status="processing")

    result = reimport(runner, tmp_path, fine="50000")

    assert result.exit_code == 1
    assert f"line 2: payment {payment_id} for this violation is being processed" in result.stderr
    assert stored(violation_id).fine == QUOTED_FINE
    assert payment_row(payment_id).status == "processing"


def test_a_row_whose_payment_the_gateway_already_captured_is_refused_and_the_capture_settles(
        client, runner, tmp_path, quoted):
    violation_id, payment_id = quoted
    (intent,) = sandbox_intents(payment_id=payment_id)
    capture_at_sandbox(intent.id)  # the money was taken before the import arrived

    result = reimport(runner, tmp_path, fine="50000")

    assert result.exit_code == 1
    assert f"line 2: payment {payment_id} for this violation was already captured" in result.stderr
    assert payment_row(payment_id).status == "succeeded"
    assert stored(violation_id).status == "paid" and stored(violation_id).fine == QUOTED_FINE
    assert not sandbox_refunds()


def test_a_row_whose_payment_cannot_be_cancelled_at_the_gateway_is_refused(
        client, runner, tmp_path, quoted, monkeypatch):
    violation_id, payment_id = quoted

    def unreachable(*args, **kwargs):
        raise GatewayError("down", code="gateway_unavailable", retryable=True)

    monkeypatch.setattr(gateway_named("sandbox"), "cancel_intent", unreachable)
    result = reimport(runner, tmp_path, fine="50000")

    assert result.exit_code == 1
    assert f"line 2: payment {payment_id} for this violation could not be cancelled at the gateway" in result.stderr
    assert stored(violation_id).fine == QUOTED_FINE
    assert payment_row(payment_id).status == "created"


CHANGED_BEHIND_THE_QUOTE = {
    "new_fine": {"fine": 50000},
    "in_person_only": {"payable_online": False},
    "void": {"status": "void"},
}


@pytest.mark.parametrize("change", CHANGED_BEHIND_THE_QUOTE.values(), ids=CHANGED_BEHIND_THE_QUOTE.keys())
def test_a_capture_never_settles_a_violation_changed_since_the_quote(client, quoted, change):
    violation_id, payment_id = quoted
    # A change that reached the database without cancelling the payment (a race with an import).
    db.session.execute(update(Violation).where(Violation.id == violation_id).values(**change))
    db.session.commit()

    response = confirm(client, payment_id)

    assert response.status_code == 200
    assert stored(violation_id).status == change.get("status", "unpaid")
    (intent,) = sandbox_intents(payment_id=payment_id)
    assert [r.amount for r in sandbox_refunds(intent.id)] == [QUOTED_FINE]  # all of it went back
    refund = db.session.execute(select(Refund).where(Refund.payment_id == payment_id)).scalar_one()
    assert refund.automatic and refund.status == "succeeded"
    assert "payment.items_not_settled" in [e.action for e in audit_entries(payment_id)]
    assert payment_row(payment_id).status == "refunded"


def test_a_violation_with_a_fine_of_zero_is_not_payable_and_reaches_no_gateway(client):
    violation = fresh_violation(fine=0)

    response = create(client, [violation.id])

    assert response.status_code == 409 and response.get_json()["code"] == "not_payable"
    assert not sandbox_intents()
    assert lookup(client)[violation.id]["amount_due"] == 0
