"""50 drivers in 50 processes pay the same violation at the same moment, through gunicorn.

On PostgreSQL and on SQLite (the `make run` default): both must give one capture.
"""
from collections import Counter

import pytest
from sqlalchemy import func, select

from finepay.extensions import db
from payments.gateways.sandbox import SandboxIntent
from tests.conftest import fresh_database
from tests.payments.helpers import overdue_violation
from tests.reliability.ledger import ledger_report
from tests.reliability.payer import describe, race
from tests.reliability.servers import Gunicorn

PAYERS = 50


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request, tmp_path):
    """Both databases: SQLite's write lock must keep the payers apart as PostgreSQL's row locks do."""
    return fresh_database(request, tmp_path, request.param)


def test_fifty_payers_in_separate_processes_settle_one_violation_once(app, database_url, tmp_path):
    violation = overdue_violation()
    violation_id, plate, vin = violation.id, violation.plate, violation.vin_last6
    db.session.remove()

    with Gunicorn(tmp_path, database_url, workers=4, threads=4) as server:
        results = race(server.url, plate, vin, violation_id, PAYERS)
        server_log = server.log()

    seen = Counter(describe(r) for r in results)
    captures = db.session.execute(
        select(func.count()).select_from(SandboxIntent).where(SandboxIntent.status == "succeeded")
    ).scalar_one()
    report = ledger_report()
    winners = [r for r in results if r.get("status") == "succeeded"]
    requests_sent = sum(1 + ("confirm" in r) for r in results)
    print(f"\n[reliability] {PAYERS} payer processes x 1 violation via gunicorn (4 workers x 4 threads): "
          f"requests sent {requests_sent}, outcomes {dict(seen)}, gateway captures {captures}, "
          f"settlements {report['violations_paid']}, receipts {len({r['receipt'] for r in winners})}, "
          f"payments lost {report['payments_lost']}, double charges {report['double_charges']}")

    message = f"{dict(seen)}; {report}\n{server_log}"
    assert not [r for r in results if "error" in r], message
    assert all(r["create"] in (201, 409) and r.get("confirm", 200) in (200, 409) for r in results), message
    assert len(winners) == 1, message
    assert captures == 1, message
    assert report["violations_paid"] == 1 and report["settled"] == 1, message
    assert report["double_charges"] == 0 and report["payments_lost"] == 0, message
    assert report["audit_disagreements"] == 0 and report["audit_chain_ok"], message
    assert "Traceback" not in server_log, server_log
