"""The embedded default (`make run`): two gunicorn workers on one SQLite file, many payers, one capture.

The rest of the reliability suite runs on PostgreSQL; this module is the
SQLite deployment `make run` starts (two workers of four threads, the
sandbox gateway), raced the way two tabs and a kiosk would race it.
"""
import threading
from collections import Counter

import pytest
import requests
from sqlalchemy import func, select

from finepay.extensions import db
from payments.gateways.sandbox import SandboxIntent, SandboxRefund
from tests.conftest import fresh_database
from tests.payments.helpers import overdue_violation
from tests.reliability.ledger import ledger_report
from tests.reliability.payer import describe, pay
from tests.reliability.servers import Gunicorn
from violations.models import Violation

PAYERS = 12
VIOLATIONS = 3
ROUNDS = 5  # fresh violations each round: one race is a coin toss, five rarely all come out right by luck


@pytest.fixture
def database_url(request, tmp_path):
    """A migrated SQLite file, as `make run` leaves it (this module's whole point: no PostgreSQL)."""
    return fresh_database(request, tmp_path, "sqlite")


def race(base_url, plate, vin, ids):
    """PAYERS threads pay the same violations at the same moment; returns their outcomes."""
    barrier = threading.Barrier(PAYERS, timeout=30)
    outcomes = [None] * PAYERS

    def one(index):
        session = requests.Session()
        barrier.wait()
        outcomes[index] = describe(pay(base_url, plate, vin, ids, session=session))

    threads = [threading.Thread(target=one, args=(i,)) for i in range(PAYERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert not any(t.is_alive() for t in threads), "a payer hung"
    return outcomes


def test_twelve_payers_on_two_sqlite_workers_capture_once_and_refund_nothing(app, database_url, tmp_path):
    rounds = [
        [overdue_violation(notice_number=f"1502032026127{r}{i:04d}").id for i in range(VIOLATIONS)]
        for r in range(ROUNDS)
    ]
    first = db.session.get(Violation, rounds[0][0])
    plate, vin = first.plate, first.vin_last6
    db.session.remove()

    outcomes = Counter()
    with Gunicorn(tmp_path, database_url, workers=2, threads=4) as server:
        for ids in rounds:
            outcomes.update(race(server.url, plate, vin, ids))
        server_log = server.log()

    captures = db.session.execute(
        select(func.count()).select_from(SandboxIntent).where(SandboxIntent.status == "succeeded")
    ).scalar_one()
    refunds = db.session.execute(select(func.count()).select_from(SandboxRefund)).scalar_one()
    report = ledger_report()
    print(f"\n[reliability] SQLite, 2 workers x 4 threads: {ROUNDS} rounds of {PAYERS} payers x {VIOLATIONS} "
          f"violations: outcomes {dict(outcomes)}, captures {captures}, surplus refunds {refunds}, {report}")

    message = f"outcomes {dict(outcomes)}; captures {captures}; refunds {refunds}; {report}\n{server_log}"
    assert not [o for o in outcomes if o == "broken" or " 5" in o], message
    assert outcomes["confirm 200 succeeded"] == ROUNDS, message
    assert captures == ROUNDS, message  # exactly one capture per race
    assert refunds == 0, message  # nothing captured twice, so nothing to give back
    assert report["violations_paid"] == ROUNDS * VIOLATIONS and report["settled"] == ROUNDS, message
    assert report["double_charges"] == 0 and report["payments_lost"] == 0, message
    assert report["audit_chain_ok"], message
    assert "Traceback" not in server_log, server_log
