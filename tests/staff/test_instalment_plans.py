"""Instalment plans over HTTP: a supervisor approves one, the driver pays its instalments on the web pages, and
the receipt, the reconciliation CSV and the settlement feed say which instalment each line pays."""
import re
from datetime import timedelta

from sqlalchemy import select

from finepay.extensions import db
from payments.reconciliation.export import csv_lines
from staff import services
from tests.conftest import in_app_language, in_both_languages, translated
from tests.payments.helpers import overdue_violation, today
from tests.payments.test_pay_pages import hidden, look_up, pay_with, text
from tests.staff.helpers import make_supervisor, make_user, sign_in_as
from violations.instalments import add_months
from violations.models import Instalment, InstalmentPlan


def approve(client, violation_id, follow_redirects=False, **form):
    return client.post(f"/staff/violations/{violation_id}/instalments", data={"count": "3", **form},
                       follow_redirects=follow_redirects)


def plan_of(violation_id):
    db.session.expire_all()
    return db.session.execute(select(InstalmentPlan).where(InstalmentPlan.violation_id == violation_id)) \
        .scalar_one_or_none()


def test_a_supervisor_approves_monthly_instalments_by_default(app, client):
    sign_in_as(client, make_supervisor())
    violation = overdue_violation()
    page = client.get(f"/staff/violations/{violation.id}")
    assert 'id="approve-plan"' in text(page)
    response = approve(client, violation.id)
    assert response.status_code == 303
    plan = plan_of(violation.id)
    assert [i.due_date for i in plan.instalments] == [add_months(today(), k) for k in (1, 2, 3)]
    assert sum(i.amount for i in plan.instalments) == violation.fine + plan.late_fee
    shown = text(client.get(f"/staff/violations/{violation.id}"))
    assert 'id="instalment-plan"' in shown
    assert translated(app, "Instalment %(number)d of %(count)d", number=2, count=3) in shown


def test_a_supervisor_can_set_the_due_dates(client):
    sign_in_as(client, make_supervisor())
    violation = overdue_violation()
    dates = [today() + timedelta(days=d) for d in (7, 21, 35)]
    response = approve(client, violation.id, due_dates=" ".join(d.isoformat() for d in dates))
    assert response.status_code == 303
    assert [i.due_date for i in plan_of(violation.id).instalments] == dates


def test_bad_due_dates_are_explained_beside_the_field_and_nothing_is_approved(app, client):
    sign_in_as(client, make_supervisor())
    violation = overdue_violation()
    past = [today() - timedelta(days=1), today() + timedelta(days=30), today() + timedelta(days=60)]
    for dates, message in (
        ("2027-01-15", "Give one date per instalment, or leave this empty for monthly dates."),
        ("15/01/2027 x y", "Write each date as YYYY-MM-DD, e.g. 2027-01-15."),
        (" ".join(d.isoformat() for d in past), "The first instalment cannot be due before today."),
    ):
        response = approve(client, violation.id, due_dates=dates)
        assert response.status_code == 422
        assert translated(app, message) in text(response)
    assert plan_of(violation.id) is None


def test_a_clerk_cannot_approve_a_plan(client):
    sign_in_as(client, make_user("clerk"))
    violation = overdue_violation()
    assert approve(client, violation.id).status_code == 403
    assert plan_of(violation.id) is None


def test_a_second_plan_is_refused(app, client):
    sign_in_as(client, make_supervisor())
    violation = overdue_violation()
    approve(client, violation.id)
    response = approve(client, violation.id, follow_redirects=True)
    assert len(db.session.execute(select(Instalment)).scalars().all()) == 3
    assert response.status_code == 200
    assert translated(app, "No plan approved: %(reason)s", reason=translated(
        app, "Only an unpaid violation that can be paid online and has no plan yet can be paid in instalments."
    )) in text(response)


@in_both_languages
def test_the_driver_pays_the_next_instalment_on_the_web_and_the_receipt_says_which(app, client):
    violation = overdue_violation()
    services.approve_instalment_plan(violation.id, count=3, actor_name="boss")
    results = look_up(client)
    assert translated(app, "Instalment %(number)d of %(count)d", number=3, count=3) in results
    # Only the next instalment is offered, never the whole violation.
    assert not re.findall(r'name="violation_id" value="(\d+)"', results)
    (first,) = re.findall(r'name="instalment_id" value="(\d+)"', results)
    review = client.post("/pay/review", data={"vehicle": hidden(results, "vehicle")[0], "instalment_id": [first]})
    page = text(review)
    assert translated(app, "Instalment %(number)d of %(count)d", number=1, count=3) in page
    form = {"vehicle": hidden(page, "vehicle")[0], "idempotency_key": hidden(page, "idempotency_key")[0],
            "instalment_id": hidden(page, "instalment_id")}
    pay = client.post("/pay", data=form, follow_redirects=True)
    receipt = text(pay_with(client, text(pay), "pm_card_visa"))
    assert translated(app, "Instalment %(number)d of %(count)d", number=1, count=3) in receipt
    # The same form again (a second tab, a resubmit) charges nothing more.
    again = client.post("/pay", data=form, follow_redirects=True)
    assert again.status_code == 200
    assert len(db.session.execute(select(Instalment).where(Instalment.status == "paid")).scalars().all()) == 1
    with in_app_language(app):
        csv_text = "".join(csv_lines(today(), today(), app.config["BUSINESS_TIMEZONE"]))
    assert violation.notice_number + " " + translated(app, "Instalment %(number)d of %(count)d", number=1,
                                                      count=3) in csv_text


def test_the_settlement_feed_says_which_instalment_a_line_pays(app, client):
    from tests.payments.helpers import confirm, create_ok
    violation = overdue_violation()
    plan = services.approve_instalment_plan(violation.id, count=2, actor_name="boss")
    created = create_ok(client, [], instalment_ids=[plan.instalments[0].id])
    confirm(client, created["id"])
    sign_in_as(client, make_supervisor())
    label = translated(app, "Instalment %(number)d of %(count)d", number=1, count=2)
    assert label in text(client.get(f"/staff/payments/{created['id']}"))
    assert label in text(client.get(f"/staff/violations/{violation.id}"))
    key = services.create_api_key("authority system", "test")[1]
    events = client.get("/api/v1/settlements", headers={"X-API-Key": key}).get_json()["events"]
    assert [(e["event"], e["violation_id"], e["instalment"]) for e in events] == [
        ("settled", violation.id, {"number": 1, "count": 2})]
    assert events[0]["amount"] == plan.instalments[0].amount


def test_instalments_of_one_violation_reconcile_as_separate_matched_payments(app, client):
    from payments.reconciliation.lines import MATCHED
    from payments.reconciliation.report import reconcile
    from tests.payments.helpers import confirm, create_ok
    from tests.staff.test_reconciliation import fetch, window
    violation = overdue_violation()
    plan = services.approve_instalment_plan(violation.id, count=2, actor_name="boss")
    for instalment in plan.instalments:
        confirm(client, create_ok(client, [], instalment_ids=[instalment.id])["id"])
    fetch()
    report = reconcile(*window())
    # Two payments for one violation, each for its own instalment: no duplicate, nothing to explain.
    assert report.discrepancies == []
    assert report.classes[MATCHED].count == 2
    assert report.net == report.gateway_net == violation.fine + plan.late_fee


def test_setting_up_a_plan_approves_the_drivers_pending_instalment_application(app, client):
    from cases import services as cases
    from cases.models import Case
    from tests.cases.helpers import STATEMENT

    violation = overdue_violation()
    case = cases.file_case(violation_id=violation.id, kind="instalments", reason="illness", statement=STATEMENT,
                           actor="driver")
    sign_in_as(client, make_supervisor())
    assert approve(client, violation.id).status_code == 303
    db.session.expire_all()
    decided = db.session.get(Case, case.id)
    assert decided.status == "approved" and decided.decided_by is not None
    assert plan_of(violation.id) is not None
