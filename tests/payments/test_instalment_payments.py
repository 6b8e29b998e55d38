"""Paying an approved instalment plan through the JSON API: each instalment once, the violation paid with the last."""
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from finepay.audit import AuditEntry
from finepay.extensions import db
from payments import services
from payments.models import PaymentItem
from tests.payments.helpers import (
    captures,
    confirm,
    create,
    create_ok,
    lookup,
    new_key,
    overdue_violation,
    payment_row,
    today,
)
from violations.fees import current_policy
from violations.instalments import monthly_due_dates
from violations.models import Instalment, Violation
from violations.services import approve_plan


def plan_for(violation, count=3, approved_on=None):
    """Approve a plan of ``count`` monthly instalments (approved ``approved_on``, today by default)."""
    approved_on = approved_on or today()
    return approve_plan(violation.id, due_dates=monthly_due_dates(count, approved_on), actor="supervisor",
                        today=approved_on)


def pay_instalment(client, instalment_id, key=None):
    """Create and confirm a payment for one instalment; returns the confirmed body."""
    created = create_ok(client, [], instalment_ids=[instalment_id], key=key)
    response = confirm(client, created["id"])
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def instalment_rows(plan_id):
    db.session.expire_all()
    return db.session.execute(select(Instalment).where(Instalment.plan_id == plan_id)
                              .order_by(Instalment.number)).scalars().all()


def test_lookup_shows_the_plan_and_only_the_next_instalment_is_payable(client):
    violation = overdue_violation()  # 5 days overdue: a late fee of 15 % at approval
    plan = plan_for(violation)
    found = lookup(client)[violation.id]
    schedule = found["instalment_plan"]
    assert schedule["kept"] is True
    assert [i["number"] for i in schedule["instalments"]] == [1, 2, 3]
    assert [i["amount"] for i in schedule["instalments"]] == [7800, 7600, 7600]  # 23000 in whole yuan, the remainder first
    assert found["late_fee"] == 3000 == plan.late_fee
    assert found["amount_due"] == 23000
    assert schedule["next_instalment_id"] == schedule["instalments"][0]["id"]


def test_paying_each_instalment_once_pays_the_violation_with_the_last(client):
    violation = overdue_violation()
    plan = plan_for(violation)
    ids = [i.id for i in plan.instalments]
    receipts = []
    for number, instalment_id in enumerate(ids, start=1):
        body = pay_instalment(client, instalment_id)
        assert body["status"] == "succeeded"
        assert body["items"][0]["instalment"] == {"id": instalment_id, "number": number, "count": 3}
        receipts.append(body["receipt_number"])
        stored = db.session.get(Violation, violation.id, populate_existing=True)
        assert stored.status == ("paid" if number == 3 else "unpaid")
    assert [i.status for i in instalment_rows(plan.id)] == ["paid"] * 3
    assert [i.receipt_number for i in instalment_rows(plan.id)] == receipts
    assert sum(c.amount for c in captures()) == 23000
    stored = db.session.get(Violation, violation.id, populate_existing=True)
    assert (stored.late_fee_paid, stored.receipt_number) == (3000, receipts[-1])
    receipt = client.get(f"/api/v1/receipts/{receipts[1]}").get_json()
    assert receipt["items"][0]["instalment"] == {"id": ids[1], "number": 2, "count": 3}


def test_a_paid_instalment_is_not_charged_again_from_a_second_tab(client):
    violation = overdue_violation()
    plan = plan_for(violation)
    first = plan.instalments[0].id
    pay_instalment(client, first)
    again = create(client, [], instalment_ids=[first])
    assert again.status_code == 409
    assert again.get_json()["code"] == "already_paid"
    assert len(captures()) == 1


def test_only_the_next_unpaid_instalment_can_be_paid(client):
    violation = overdue_violation()
    plan = plan_for(violation)
    response = create(client, [], instalment_ids=[plan.instalments[1].id])
    assert response.status_code == 409
    assert response.get_json()["code"] == "instalment_not_next"


def test_a_violation_with_a_plan_cannot_be_paid_whole(client):
    violation = overdue_violation()
    plan_for(violation)
    response = create(client, [violation.id])
    assert response.status_code == 409
    assert response.get_json()["code"] == "instalment_plan"


def test_an_instalment_of_another_vehicle_is_the_same_answer_as_an_unknown_one(client):
    other = overdue_violation(plate="京A00001", vin_last6="B22222")
    plan = plan_for(other)
    foreign = create(client, [], instalment_ids=[plan.instalments[0].id])
    unknown = create(client, [], instalment_ids=[10 ** 9])
    assert foreign.status_code == unknown.status_code == 422
    assert foreign.get_json() == unknown.get_json()


def test_the_same_key_and_body_returns_the_same_payment(client):
    violation = overdue_violation()
    plan = plan_for(violation)
    key = new_key()
    first = create_ok(client, [], instalment_ids=[plan.instalments[0].id], key=key)
    second = create_ok(client, [], instalment_ids=[plan.instalments[0].id], key=key)
    assert first["id"] == second["id"]
    assert create(client, [violation.id], key=key).status_code == 409


def test_a_missed_instalment_resumes_the_late_fee_on_the_remainder(client):
    violation = overdue_violation(decision_date=today() - timedelta(days=15 + 45 + 5))
    # Approved 45 days ago, 5 days overdue then; the first instalment fell due 15 days ago, the second in 15.
    approved_on = today() - timedelta(days=45)
    due = [approved_on + timedelta(days=30), approved_on + timedelta(days=60), approved_on + timedelta(days=90)]
    plan = approve_plan(violation.id, due_dates=due, actor="supervisor", today=approved_on)
    found = lookup(client)[violation.id]
    schedule = found["instalment_plan"]
    assert schedule["kept"] is False
    assert schedule["broken_on"] == due[0].isoformat()
    days = 15
    fees = [current_policy().daily_fee(amount, days) for amount in (7800, 7600, 7600)]
    assert [i["late_fee"] for i in schedule["instalments"]] == fees  # 3 %/day on each unpaid instalment
    assert found["late_fee"] == 3000 + sum(fees)
    # Paying the missed instalment charges its late fee, locked at creation.
    body = pay_instalment(client, plan.instalments[0].id)
    assert body["amount"] == 7800 + fees[0]
    assert body["items"][0]["late_fee"] == fees[0]
    # The plan stays broken: the rest still carries the resumed fee.
    after = lookup(client)[violation.id]["instalment_plan"]
    assert after["kept"] is False
    assert [i["late_fee"] for i in after["instalments"]] == fees


def test_the_resumed_late_fee_never_takes_the_total_above_the_fine(client):
    violation = overdue_violation(decision_date=today() - timedelta(days=15 + 400 + 5))
    approved_on = today() - timedelta(days=400)
    plan = approve_plan(violation.id, due_dates=[approved_on + timedelta(days=30), approved_on + timedelta(days=60)],
                        actor="supervisor", today=approved_on)
    found = lookup(client)[violation.id]
    assert found["late_fee"] == violation.fine  # capped as the policy caps it
    assert plan.late_fee + sum(i["late_fee"] for i in found["instalment_plan"]["instalments"]) == violation.fine


def test_a_refunded_instalment_is_owed_again(client):
    violation = overdue_violation()
    plan = plan_for(violation, count=2)
    first = pay_instalment(client, plan.instalments[0].id)
    pay_instalment(client, plan.instalments[1].id)
    assert db.session.get(Violation, violation.id, populate_existing=True).status == "paid"
    item_id = payment_row(first["id"]).items[0].id
    services.request_refund(first["id"], item_ids=[item_id], reason="paid at the hall", actor="supervisor",
                            idempotency_key=new_key())
    assert [i.status for i in instalment_rows(plan.id)] == ["unpaid", "paid"]
    assert db.session.get(Violation, violation.id, populate_existing=True).status == "unpaid"
    # It can be paid again, once.
    again = pay_instalment(client, plan.instalments[0].id)
    assert again["status"] == "succeeded"
    assert db.session.get(Violation, violation.id, populate_existing=True).status == "paid"
    settled = db.session.execute(select(func.count()).select_from(PaymentItem).where(
        PaymentItem.instalment_id == plan.instalments[0].id, PaymentItem.settled.is_(True))).scalar_one()
    assert settled == 1


def test_a_whole_violation_payment_open_when_the_plan_was_approved_settles_nothing(client):
    violation = overdue_violation()
    created = create_ok(client, [violation.id])
    plan_for(violation)
    body = confirm(client, created["id"]).get_json()
    assert body["status"] in ("succeeded", "refunded")
    assert body["items"][0]["settled"] is False  # its money goes back automatically
    assert db.session.get(Violation, violation.id, populate_existing=True).status == "unpaid"


def test_every_step_is_audited(client):
    violation = overdue_violation()
    plan = plan_for(violation, count=2)
    body = pay_instalment(client, plan.instalments[0].id)
    actions = dict(db.session.execute(select(AuditEntry.action, AuditEntry.details).where(
        AuditEntry.subject_id.in_([str(violation.id), body["id"]]))).all())
    assert actions["instalment_plan.approved"]["amounts"] == [11500, 11500]
    assert actions["payment.created"]["instalments"] == {str(violation.id): "1/2"}
    assert actions["payment.succeeded"]["instalments"] == {str(violation.id): "1/2"}


@pytest.mark.parametrize("count", [1, 7])
def test_a_plan_has_two_to_six_instalments(app, count):
    violation = overdue_violation()
    with pytest.raises(Exception) as refused:
        plan_for(violation, count=count)
    assert refused.value.status == 422


def test_a_violation_with_paid_instalments_cannot_be_voided(client):
    from finepay.errors import ApiError
    from violations.services import void_violation
    violation = overdue_violation()
    plan = plan_for(violation)
    pay_instalment(client, plan.instalments[0].id)
    with pytest.raises(ApiError) as refused:
        void_violation(violation.id, reason="withdrawn on appeal", actor="boss", open_holds=services.open_holds)
    assert (refused.value.status, refused.value.code) == (409, "not_voidable")
    assert db.session.get(Violation, violation.id, populate_existing=True).status == "unpaid"


def test_the_kiosk_does_not_offer_a_violation_with_a_plan(app, client):
    from violations.services import lookup_vehicle
    violation = overdue_violation()
    plan = plan_for(violation)
    statement = lookup_vehicle(violation.plate, vin_last6=violation.vin_last6)
    lines, refused = statement.chosen([violation.id])
    assert (lines, refused) == ([], [violation.id])  # the kiosk's selection refuses it: paid online, instalments
    assert statement.payable_ids == [violation.id]  # ... its next instalment is payable online
    assert statement.total_payable_online == plan.instalments[0].amount


def test_the_database_refuses_a_second_settling_line_for_one_instalment(client):
    from sqlalchemy.exc import IntegrityError
    violation = overdue_violation()
    plan = plan_for(violation)
    first = pay_instalment(client, plan.instalments[0].id)
    second = create_ok(client, [], instalment_ids=[plan.instalments[1].id])
    item = payment_row(second["id"]).items[0]
    item.instalment_id, item.settled, item.holds = plan.instalments[0].id, True, None
    with pytest.raises(IntegrityError):
        db.session.commit()
    db.session.rollback()
    assert first["status"] == "succeeded"


def test_the_openapi_document_describes_paying_an_instalment(client):
    spec = client.get("/api/openapi.json").get_json()
    schemas = spec["components"]["schemas"]
    request = next(s for name, s in schemas.items() if name.startswith("PaymentRequest"))
    assert "instalment_ids" in request["properties"]
    assert "instalment" in schemas["PaymentItem"]["properties"]
    assert "instalment" in schemas["ReceiptItem"]["properties"]
    lookup_line = next(s for name, s in schemas.items() if name.startswith("ViolationLine"))
    assert "instalment_plan" in lookup_line["properties"]
