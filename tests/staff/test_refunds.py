"""Refunds through the staff console, allocated to violation lines, as the driver, the receipt and the feed see them.

Each test runs on SQLite and on PostgreSQL. The concurrent ones give every
thread its own app (engine, connections, session) and signed-in client, as
separate gunicorn workers would, released together behind a barrier.
"""
import re
import threading

import pytest
from sqlalchemy import select

from finepay.extensions import db
from payments import services as payment_services
from payments.gateways import GatewayError, gateway_named
from payments.models import Payment, Refund, RefundLine
from payments.reconciliation.fetch import fetch_gateway_records
from payments.reconciliation.report import reconcile
from staff import services, sessions
from staff.auth import SESSION_KEY
from tests.payments.helpers import (
    confirm,
    create_ok,
    fresh_violation,
    lookup,
    payment_row,
    sandbox_refunds,
)
from tests.payments.test_race import run_together
from tests.staff.helpers import make_supervisor, sign_in_as
from violations.fees import business_day_window, business_today
from violations.models import Violation

THREADS = 10


@pytest.fixture
def boss(app):
    return make_supervisor("boss")


@pytest.fixture
def supervisor(client, boss):
    return sign_in_as(client, boss)


@pytest.fixture
def api_key(app):
    return services.create_api_key("authority system", "test")[1]


def paid(client, *fines):
    """One payment, paid, for fresh violations (no late fee) with these fines; returns (payment, violations)."""
    violations = [fresh_violation(fine=fine) for fine in fines]
    payment = create_ok(client, [v.id for v in violations])
    assert confirm(client, payment["id"]).get_json()["status"] == "succeeded"
    return payment_row(payment["id"]), violations


def item_id(payment, violation):
    return next(item.id for item in payment.items if item.violation_id == violation.id)


def refund(console, payment, key="a" * 32, **data):
    return console.post(f"/staff/payments/{payment.id}/refund", data={"reason": "Appeal upheld in part",
                                                                      "form_key": key, **data})


def violation_status(violation_id):
    db.session.expire_all()
    return db.session.get(Violation, violation_id).status


def feed(client, key):
    return client.get("/api/v1/settlements", headers={"X-API-Key": key}).get_json()["events"]


def refunds_of(payment_id):
    db.session.expire_all()
    return db.session.execute(select(Refund).where(Refund.payment_id == payment_id)).scalars().all()


# --- a partial refund leaves the fine paid ------------------------------------------------------


@pytest.mark.parametrize("fine, amount, refunded", [(5000, "0.01", 1), (5000, "10.00", 1000)],
                         ids=["one_fen", "ten_of_fifty"])
def test_a_partial_refund_leaves_the_violation_paid(supervisor, client, api_key, fine, amount, refunded):
    payment, (violation,) = paid(client, fine)

    response = refund(supervisor, payment, amount=amount)

    assert response.status_code == 303
    stored = payment_row(payment.id)
    assert stored.status == "succeeded"
    assert stored.refunded_amount == refunded
    (made,) = stored.refunds
    assert [(line.item.violation_id, line.amount) for line in made.lines] == [(violation.id, refunded)]
    # The driver is not asked for the fine again.
    assert violation_status(violation.id) == "paid"
    seen = lookup(client)[violation.id]
    assert seen["status"] == "paid" and seen["receipt_number"] == payment.receipt_number
    assert "stay paid" in supervisor.get(response.headers["Location"]).get_data(as_text=True)
    # The receipt: the line's net, the net total, and no "owed again".
    receipt = client.get(f"/api/v1/receipts/{payment.receipt_number}").get_json()
    (line,) = receipt["items"]
    assert (line["state"], line["paid"], line["refunded"], line["net"]) == ("partly_refunded", fine, refunded,
                                                                           fine - refunded)
    assert line["settled"] is True
    assert receipt["net_amount"] == fine - refunded
    page = client.get(f"/receipts/{payment.receipt_number}").get_data(as_text=True)
    assert "Partly refunded: this fine stays paid" in page
    assert "owed again" not in page and "nothing on it is paid" not in page
    assert "Payment received: this fine is now paid." in page
    assert re.search(r'id="receipt-net">\S*¥' + re.escape(f"{(fine - refunded) / 100:.2f}"), page)
    # The authority hears of the refund, and that the violation stays paid.
    events = [(e["event"], e["violation_id"], e["refund_amount"], e["refunded"]) for e in feed(client, api_key)]
    assert events == [("settled", violation.id, 0, 0), ("partly_refunded", violation.id, refunded, refunded)]


def test_a_full_refund_of_one_line_of_two_releases_only_that_violation(supervisor, client, api_key):
    payment, (kept, returned) = paid(client, 5000, 3000)

    response = refund(supervisor, payment, lines=[str(item_id(payment, returned))])

    assert response.status_code == 303
    assert "1 violation is owed again" in supervisor.get(response.headers["Location"]).get_data(as_text=True)
    stored = payment_row(payment.id)
    assert stored.status == "succeeded"  # it still pays the other violation
    assert stored.refunded_amount == 3000
    assert [r.amount for r in sandbox_refunds(stored.gateway_intent_id)] == [3000]
    assert (violation_status(kept.id), violation_status(returned.id)) == ("paid", "unpaid")
    seen = lookup(client)
    assert seen[kept.id]["status"] == "paid" and seen[returned.id]["status"] == "unpaid"
    assert seen[returned.id]["amount_due"] == 3000

    receipt = client.get(f"/api/v1/receipts/{payment.receipt_number}").get_json()
    lines = {line["violation_id"]: line for line in receipt["items"]}
    assert (lines[kept.id]["state"], lines[kept.id]["net"]) == ("paid", 5000)
    assert (lines[returned.id]["state"], lines[returned.id]["refunded"], lines[returned.id]["net"]) == (
        "refunded", 3000, 0)
    assert (receipt["amount"], receipt["refunded_amount"], receipt["net_amount"]) == (8000, 3000, 5000)
    assert receipt["refunds"][0]["lines"] == [{"violation_id": returned.id, "amount": 3000}]
    page = client.get(f"/receipts/{payment.receipt_number}").get_data(as_text=True)
    assert "Payment received: this fine is now paid." in page  # one fine, not two
    assert page.count("Refunded: this fine is owed again") == 1

    events = [(e["event"], e["violation_id"], e["refund_amount"], e["refunded"]) for e in feed(client, api_key)]
    assert events == [("settled", kept.id, 0, 0), ("settled", returned.id, 0, 0),
                      ("refunded", returned.id, 3000, 3000)]


def test_an_amount_alone_is_shared_out_line_by_line_in_the_listed_order(supervisor, client):
    payment, (first, second) = paid(client, 5000, 3000)
    page = supervisor.get(f"/staff/payments/{payment.id}").get_data(as_text=True)
    assert "in the order listed here, top first" in page

    refund(supervisor, payment, amount="60.00")

    (made,) = refunds_of(payment.id)
    assert sorted((line.item.violation_id, line.amount) for line in made.lines) == sorted(
        [(first.id, 5000), (second.id, 1000)])
    assert (violation_status(first.id), violation_status(second.id)) == ("unpaid", "paid")


def test_an_amount_with_ticked_violations_is_shared_out_over_them_only(supervisor, client):
    payment, (first, second) = paid(client, 5000, 3000)

    refund(supervisor, payment, amount="20.00", lines=[str(item_id(payment, second))])

    (made,) = refunds_of(payment.id)
    assert [(line.item.violation_id, line.amount) for line in made.lines] == [(second.id, 2000)]
    assert (violation_status(first.id), violation_status(second.id)) == ("paid", "paid")


def test_partial_refunds_that_add_up_to_a_line_release_it(supervisor, client):
    payment, (violation,) = paid(client, 5000)

    refund(supervisor, payment, key="a" * 32, amount="49.99")
    assert violation_status(violation.id) == "paid"
    refund(supervisor, payment, key="b" * 32, amount="0.01")

    assert violation_status(violation.id) == "unpaid"
    assert payment_row(payment.id).status == "refunded"


# --- never more than was captured -----------------------------------------------------------------


@pytest.mark.parametrize("data, field", [
    ({"amount": "30.01"}, "amount"),  # 30.00 is left
    ({"amount": "50.01", "lines": ["first"]}, "amount"),  # more than the ticked line
    ({"lines": ["first"]}, "lines"),  # nothing left of it
])
def test_more_than_is_left_is_refused_beside_the_field_and_nothing_moves(supervisor, client, data, field):
    payment, _violations = paid(client, 5000, 3000)
    refund(supervisor, payment, key="a" * 32, lines=[str(payment.items[0].id)])  # the first line, in full
    if data.get("lines") == ["first"]:
        data = {**data, "lines": [str(payment.items[0].id)]}

    response = refund(supervisor, payment, key="b" * 32, **data)

    assert response.status_code == 422
    page = response.get_data(as_text=True)
    assert f'id="{field}-error"' in page and "larger than what is left to refund" in page
    assert len(refunds_of(payment.id)) == 1
    assert sum(r.amount for r in sandbox_refunds()) == 5000


def test_a_pending_refund_counts_against_what_is_left(supervisor, client, monkeypatch):
    payment, (violation,) = paid(client, 5000)
    monkeypatch.setattr(gateway_named("sandbox"), "refund", unavailable)
    refund(supervisor, payment, key="a" * 32, amount="50.00")
    assert [r.status for r in refunds_of(payment.id)] == ["pending"]

    response = refund(supervisor, payment, key="b" * 32, amount="0.01")

    assert response.status_code == 422
    assert len(refunds_of(payment.id)) == 1
    assert violation_status(violation.id) == "paid"  # not until the money went back


def unavailable(*args, **kwargs):
    raise GatewayError("down", code="gateway_unavailable", retryable=True, status=503)


# --- a refund the gateway refuses -------------------------------------------------------------------


def test_a_refund_the_gateway_refuses_is_failed_with_its_reason_and_never_retried(app, supervisor, client,
                                                                                  monkeypatch):
    payment, (violation,) = paid(client, 5000)
    calls = []

    def refused(*args, **kwargs):
        calls.append(kwargs["idempotency_key"])
        raise GatewayError("Stripe refused POST /v1/refunds (400)", code="invalid_request",
                           gateway_message="Charge ch_1 has already been refunded.", status=502)

    monkeypatch.setattr(gateway_named("sandbox"), "refund", refused)
    response = refund(supervisor, payment, amount="50.00")

    (made,) = refunds_of(payment.id)
    assert (made.status, made.failure_code, made.failure_message) == (
        "failed", "invalid_request", "Charge ch_1 has already been refunded.")
    assert "The gateway refused the refund" in supervisor.get(response.headers["Location"]).get_data(as_text=True)
    page = supervisor.get(f"/staff/payments/{payment.id}").get_data(as_text=True)
    failure = page.split(f'id="refund-{made.id}"')[1].split("</tr>")[0]
    assert "Refused by the gateway: Charge ch_1 has already been refunded." in failure
    assert violation_status(violation.id) == "paid"
    assert payment_row(payment.id).status == "succeeded"

    counts = payment_services.sync_payments()

    assert counts["refunds_retried"] == 0
    assert len(calls) == 1
    assert refunds_of(payment.id)[0].status == "failed"
    # Nothing went back, so all of it can still be refunded.
    assert re.search(r"Up to \S*¥50\.00 can be refunded", page)
    # Nor is it a difference for reconciliation: no money moved on either side.
    day = business_today(app.config["BUSINESS_TIMEZONE"])
    fetch_gateway_records(*business_day_window(day), actor="test")
    report = reconcile(day, day, limit=1000)
    assert [line for line in report.discrepancies if line["payment_id"] == payment.id] == []


def test_a_phantom_pending_refund_is_failed_by_sync_once_the_gateway_refuses_it(client):
    """A pending refund that can never succeed (as the old race left behind) is sent once more, then failed."""
    payment, _violations = paid(client, 5000)
    payment_services.refund_payment(payment.id, 5000, reason="the real one", actor="staff:x")
    phantom = Refund(payment_id=payment.id, amount=5000, currency="CNY", reason="raced", actor="staff:x",
                     idempotency_key="phantom", status="pending")
    db.session.add(phantom)
    db.session.commit()

    first, second = payment_services.sync_payments(), payment_services.sync_payments()

    assert (first["refunds_retried"], first["refunds_failed"]) == (1, 1)
    assert second["refunds_retried"] == 0
    db.session.expire_all()
    assert (phantom.status, phantom.failure_code) == ("failed", "invalid_request")
    assert sum(r.amount for r in sandbox_refunds()) == 5000


# --- concurrency ------------------------------------------------------------------------------------


def concurrent_refunds(app, boss, payment, key_of):
    """THREADS supervisors' posts of a full refund of the payment's line at once; returns the outcomes."""
    url = app.config["SQLALCHEMY_DATABASE_URI"]
    user_id = boss.get_id()
    # One signed-in console per thread (the sessions are made here: the threads only post).
    tokens = [sessions.start_session(boss, "127.0.0.1", "test client") for _ in range(THREADS)]
    line = str(payment.items[0].id)
    counter = iter(range(THREADS))
    lock = threading.Lock()

    def post(console):
        with lock:
            n = next(counter)
        with console.session_transaction() as cookie:
            cookie.update({"_user_id": user_id, "_fresh": True, SESSION_KEY: tokens[n]})
        response = refund(console, payment, key=key_of(n), lines=[line])
        return {"status": response.status_code}

    results = run_together(url, THREADS, post)
    assert not [r["exception"] for r in results if "exception" in r]
    return sorted(r["status"] for r in results)


def test_ten_concurrent_refunds_make_exactly_one(app, boss, client):
    payment, (violation,) = paid(client, 5000)

    statuses = concurrent_refunds(app, boss, payment, key_of=lambda n: f"{n:032x}")

    assert statuses == [303] + [422] * (THREADS - 1)
    made = refunds_of(payment.id)
    assert [(r.status, r.amount) for r in made] == [("succeeded", 5000)]
    assert [r.amount for r in sandbox_refunds()] == [5000]
    assert payment_row(payment.id).status == "refunded"
    assert violation_status(violation.id) == "unpaid"
    assert payment_services.sync_payments()["refunds_retried"] == 0


def test_ten_concurrent_posts_with_one_form_key_make_one_refund_and_no_error(app, boss, client):
    payment, _violations = paid(client, 5000)

    statuses = concurrent_refunds(app, boss, payment, key_of=lambda n: "c" * 32)

    assert statuses == [303] * THREADS  # each answered with the one refund
    made = refunds_of(payment.id)
    assert [(r.status, r.amount, r.idempotency_key) for r in made] == [
        ("succeeded", 5000, f"staff:{payment.id}:{'c' * 32}")]
    assert len(sandbox_refunds()) == 1
    assert len(db.session.execute(select(RefundLine)).scalars().all()) == 1
    assert db.session.execute(select(Payment.status).where(Payment.id == payment.id)).scalar_one() == "refunded"
