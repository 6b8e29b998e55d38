"""Real concurrency: many payers, one violation, exactly one settlement, on PostgreSQL and on SQLite.

Each thread has its own app (its own engine and connections) and app context,
as separate gunicorn workers would; all start together behind a barrier.
PostgreSQL keeps them apart with row locks, SQLite with its write lock taken
at a transaction's first lock or write (finepay.database).
"""
import threading
import time
import traceback
from collections import Counter

import pytest
from sqlalchemy import func, select

from finepay.extensions import db
from payments import services
from payments.gateways.sandbox import SandboxIntent
from payments.models import Payment, PaymentItem
from tests.conftest import make_app
from tests.payments.helpers import (
    confirm,
    create,
    create_ok,
    end_session_after_each_request,
    new_key,
    overdue_violation,
)
from tests.reliability.servers import wait_until
from violations.models import Violation

PAYERS = 20
CLICKERS = 20
BARRIER_TIMEOUT = 60
JOIN_TIMEOUT = 120


def _json(response):
    body = response.get_json(silent=True) or {}
    return body if isinstance(body, dict) else {}


def run_together(url, count, work):
    """Run work(client) in `count` threads, each with its own app, released together; returns the results."""
    apps = [make_app(url) for _ in range(count)]
    for app in apps:
        end_session_after_each_request(app)
    barrier = threading.Barrier(count, timeout=BARRIER_TIMEOUT)
    results = [None] * count

    def runner(index):
        app = apps[index]
        try:
            with app.app_context():
                client = app.test_client()
                try:
                    barrier.wait()
                    results[index] = work(client)
                finally:
                    db.session.remove()
                    db.engine.dispose()
        except Exception:  # noqa: BLE001  (an exception here is a 500 in production)
            results[index] = {"exception": traceback.format_exc()}

    threads = [threading.Thread(target=runner, args=(i,), name=f"payer-{i}") for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(JOIN_TIMEOUT)
    assert not any(t.is_alive() for t in threads), "a thread hung (a lock never released?)"
    return results


def status_of(payment_id):
    """The payment's status as committed now (ends the read)."""
    status = db.session.execute(select(Payment.status).where(Payment.id == payment_id)).scalar_one()
    db.session.rollback()
    return status


def figures(results):
    """How many of each outcome, for the assertion messages and the report."""
    counts = Counter()
    for r in results:
        if "exception" in r:
            counts["exception"] += 1
            continue
        counts[f"create {r['create']}"] += 1
        if r.get("create_code"):
            counts[f"create {r['create']} {r['create_code']}"] += 1
        if "confirm" in r:
            counts[f"confirm {r['confirm']}"] += 1
            counts[f"confirm {r['confirm']} {r.get('confirm_code') or r.get('status')}"] += 1
    return dict(sorted(counts.items()))


@pytest.mark.parametrize("stagger", [0.0, 1.5, 2.0, 3.0], ids=["together", "spread1.5s", "spread2s", "spread3s"])
def test_many_payers_for_one_violation_settle_it_once(app, database_url, stagger):
    """All create then confirm at once; a spread staggers the starts so that creates meet confirms."""
    violation = overdue_violation()
    violation_id = violation.id
    delays = iter([stagger * i / PAYERS for i in range(PAYERS)])
    lock = threading.Lock()

    def pay(client):
        with lock:
            delay = next(delays)
        time.sleep(delay)
        created = create(client, [violation_id], key=new_key())
        result = {"create": created.status_code, "create_code": _json(created).get("code")}
        if created.status_code == 201:
            payment_id = _json(created)["id"]
            confirmed = confirm(client, payment_id)
            body = _json(confirmed)
            result.update(payment_id=payment_id, confirm=confirmed.status_code, status=body.get("status"),
                          confirm_code=body.get("code"), receipt=body.get("receipt_number"))
        return result

    results = run_together(database_url, PAYERS, pay)
    seen = figures(results)
    print(f"\n{PAYERS} payers for one violation: {seen}")

    db.session.expire_all()
    payments = db.session.execute(select(Payment)).scalars().all()
    by_status = Counter(p.status for p in payments)
    captured = db.session.execute(
        select(func.count()).select_from(SandboxIntent).where(SandboxIntent.status == "succeeded")
    ).scalar_one()
    stored = db.session.get(Violation, violation_id)
    message = f"responses {seen}; payments by status {dict(by_status)}; sandbox captures {captured}"

    exceptions = [r["exception"] for r in results if "exception" in r]
    assert not exceptions, f"{message}\n" + "\n".join(exceptions)
    for r in results:
        assert r["create"] in (201, 409), message
        if r["create"] == 409:
            assert r["create_code"] in ("payment_in_progress", "already_paid"), message
        else:
            assert r["confirm"] in (200, 409), message
            if r["confirm"] == 200:
                assert r["status"] in ("succeeded", "canceled", "failed"), message
            else:
                assert r["confirm_code"] in ("payment_closed", "payment_in_progress", "quote_expired"), message
    winners = [r for r in results if r.get("status") == "succeeded"]
    assert len(winners) == 1, message
    assert by_status["succeeded"] == 1, message
    assert captured == 1, message
    assert stored.status == "paid", message
    assert stored.receipt_number == winners[0]["receipt"], message
    assert set(by_status) <= {"succeeded", "canceled"}, message
    # Exactly one payment item settled the violation; nothing still holds it.
    settled = db.session.execute(
        select(func.count()).select_from(PaymentItem).where(PaymentItem.violation_id == violation_id,
                                                           PaymentItem.settled.is_(True))
    ).scalar_one()
    held = db.session.execute(
        select(func.count()).select_from(PaymentItem).where(PaymentItem.violation_id == violation_id,
                                                           PaymentItem.holds.is_(True))
    ).scalar_one()
    assert settled == 1, message
    assert held == 0, message


def test_many_clicks_on_one_payment_capture_once(app, client, database_url):
    violation = overdue_violation()
    violation_id = violation.id
    payment = create_ok(client, [violation_id])
    db.session.remove()

    def click(client):
        response = confirm(client, payment["id"])
        body = _json(response)
        return {"create": 201, "confirm": response.status_code, "status": body.get("status"),
                "confirm_code": body.get("code"), "receipt": body.get("receipt_number")}

    results = run_together(database_url, CLICKERS, click)
    seen = figures(results)
    print(f"\n{CLICKERS} confirms of one payment: {seen}")

    captured = db.session.execute(
        select(func.count()).select_from(SandboxIntent).where(SandboxIntent.status == "succeeded")
    ).scalar_one()
    stored = db.session.get(Payment, payment["id"])
    message = f"responses {seen}; payment {stored.status}; sandbox captures {captured}"
    exceptions = [r["exception"] for r in results if "exception" in r]
    assert not exceptions, f"{message}\n" + "\n".join(exceptions)
    for r in results:
        assert r["confirm"] in (200, 409), message
        if r["confirm"] == 200:
            # The winner sees the result; a click that queued behind it sees it under way.
            assert r["status"] in ("succeeded", "processing"), message
            if r["status"] == "succeeded":
                assert r["receipt"] == stored.receipt_number, message
        else:
            assert r["confirm_code"] == "payment_in_progress", message
    assert captured == 1, message
    assert stored.status == "succeeded", message
    assert stored.confirm_attempts == 1, message
    assert db.session.get(Violation, violation_id).receipt_number == stored.receipt_number, message


def test_a_retried_create_racing_the_original_gets_the_same_usable_payment(app, client, database_url):
    """A client that retries (same key, same body) while the first request is still running."""
    violation = overdue_violation()
    violation_id = violation.id
    key = new_key()
    db.session.remove()

    def send(client):
        response = create(client, [violation_id], key=key)
        body = _json(response)
        return {"create": response.status_code, "create_code": body.get("code"), "payment_id": body.get("id")}

    results = run_together(database_url, 10, send)
    seen = figures(results)
    print(f"\n10 creates with one key: {seen}")
    exceptions = [r["exception"] for r in results if "exception" in r]
    assert not exceptions, f"{seen}\n" + "\n".join(exceptions)
    assert {r["create"] for r in results} == {201}, seen
    (payment_id,) = {r["payment_id"] for r in results}

    # The payment every retry was given can be paid.
    confirmed = confirm(client, payment_id)
    payments = db.session.execute(select(Payment)).scalars().all()
    intents = db.session.execute(select(SandboxIntent)).scalars().all()
    message = (f"responses {seen}; confirm {confirmed.status_code} {_json(confirmed)}; "
               f"payments {[p.status for p in payments]}; sandbox intents {[i.status for i in intents]}")
    assert confirmed.status_code == 200, message
    assert _json(confirmed)["status"] == "succeeded", message
    assert len(payments) == 1, message


def test_a_new_payment_meeting_a_settling_confirm_does_not_deadlock(app, client, database_url, monkeypatch):
    """Force the interleaving the free-for-all race hits only now and then.

    The confirm settles under the payment's row lock and then asks for the
    violation's; a new payment for the same violation holds the violation's
    lock and then asks for the older payment's. Both must end cleanly.
    """
    violation = overdue_violation()
    violation_id = violation.id
    payment = create_ok(client, [violation_id])
    db.session.remove()
    creator_holds_violation = threading.Event()
    confirmer_holds_payment = threading.Event()
    real_free, real_settle = services._free_violations, services._settle

    def free_violations(*args):
        if threading.current_thread().name == "payer-1":
            creator_holds_violation.set()
            confirmer_holds_payment.wait(3)
        return real_free(*args)

    def settle(payment, intent, *rest):
        if threading.current_thread().name == "payer-0":
            confirmer_holds_payment.set()
            creator_holds_violation.wait(3)
        return real_settle(payment, intent, *rest)

    monkeypatch.setattr(services, "_free_violations", free_violations)
    monkeypatch.setattr(services, "_settle", settle)

    def act(client):
        if threading.current_thread().name == "payer-0":
            response = confirm(client, payment["id"])
            body = _json(response)
            return {"create": 201, "confirm": response.status_code, "status": body.get("status"),
                    "confirm_code": body.get("code")}
        # As a double-tab user would: the other tab's "pay" is already under way. Waiting for it, not
        # sleeping a guess: on SQLite the confirm's transactions queue for the one write lock.
        wait_until(lambda: status_of(payment["id"]) != "created", 10)
        response = create(client, [violation_id], key=new_key())
        return {"create": response.status_code, "create_code": _json(response).get("code")}

    results = run_together(database_url, 2, act)
    seen = figures(results)
    print(f"\nconfirm meeting a new payment: {seen}")

    db.session.expire_all()
    stored = db.session.get(Payment, payment["id"])
    captured = db.session.execute(
        select(func.count()).select_from(SandboxIntent).where(SandboxIntent.status == "succeeded")
    ).scalar_one()
    message = f"responses {results}; payment {stored.status}; sandbox captures {captured}"
    assert not any("exception" in r for r in results), message
    confirmer, creator = results
    assert confirmer["confirm"] == 200 and confirmer["status"] == "succeeded", message
    assert creator["create"] == 409 and creator["create_code"] in ("payment_in_progress", "already_paid"), message
    assert captured == 1, message
    assert stored.status == "succeeded", message
    assert db.session.get(Violation, violation_id).receipt_number == stored.receipt_number, message


def test_two_payments_for_one_instalment_charge_it_once(app, database_url):
    """For each instalment of a plan in turn, two tabs (or terminals) create and confirm a payment for it at once.

    Every race charges that instalment exactly once; after the third the violation is paid.
    """
    from tests.payments.helpers import today
    from violations.instalments import monthly_due_dates
    from violations.models import Instalment
    from violations.services import approve_plan

    violation = overdue_violation()
    plan = approve_plan(violation.id, due_dates=monthly_due_dates(3, today()), actor="supervisor")
    instalment_ids, violation_id, plan_id = [i.id for i in plan.instalments], violation.id, plan.id
    db.session.remove()

    def paying(instalment_id):
        def pay(client):
            created = create(client, [], key=new_key(), instalment_ids=[instalment_id])
            result = {"create": created.status_code, "create_code": _json(created).get("code")}
            if created.status_code == 201:
                confirmed = confirm(client, _json(created)["id"])
                body = _json(confirmed)
                result.update(confirm=confirmed.status_code, status=body.get("status"),
                              confirm_code=body.get("code"))
            return result
        return pay

    def count_captures():
        captured = db.session.execute(
            select(func.count()).select_from(SandboxIntent).where(SandboxIntent.status == "succeeded")
        ).scalar_one()
        db.session.rollback()
        return captured

    for number, instalment_id in enumerate(instalment_ids, start=1):
        for _attempt in range(3):  # a race in which both were superseded charges nothing: race again
            results = run_together(database_url, 2, paying(instalment_id))
            seen = figures(results)
            exceptions = [r["exception"] for r in results if "exception" in r]
            assert not exceptions, "\n".join(exceptions)
            for r in results:
                assert r["create"] in (201, 409), seen
            if any(r.get("status") == "succeeded" for r in results):
                break
        print(f"\n2 payers for instalment {number} of 3: {seen}")
        message = f"instalment {number}: responses {seen}"
        assert count_captures() == number, message  # never two charges for one instalment
        settled = db.session.execute(
            select(func.count()).select_from(PaymentItem).where(PaymentItem.instalment_id == instalment_id,
                                                               PaymentItem.settled.is_(True))
        ).scalar_one()
        assert settled == 1, message

    db.session.expire_all()
    statuses = db.session.execute(select(Instalment.status).where(Instalment.plan_id == plan_id)).scalars().all()
    assert statuses == ["paid"] * 3
    assert db.session.get(Violation, violation_id).status == "paid"
