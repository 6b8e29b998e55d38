"""SIGKILL a gunicorn worker in the middle of a stream of payments; sync; nothing lost, nothing doubled."""
import os
import signal
import subprocess
import sys
import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

from finepay.extensions import db
from tests.payments.helpers import overdue_violation
from tests.reliability.ledger import ledger_report
from tests.reliability.payer import describe, pay
from tests.reliability.servers import ROOT, Gunicorn

PAYMENTS = 60
CLIENTS = 8
KILL_AFTER = 20  # completed payments before the first kill
KILLS = 2


def test_a_worker_killed_mid_stream_loses_and_doubles_nothing(app, database_url, tmp_path):
    violations = [overdue_violation(notice_number=f"1502032026119{i:05d}") for i in range(PAYMENTS)]
    work = [(v.plate, v.vin_last6, v.id) for v in violations]
    db.session.remove()
    done = Counter()
    killed = []
    lock = threading.Lock()

    with Gunicorn(tmp_path, database_url, workers=2, threads=4) as server:
        def one(args):
            outcome = describe(pay(server.url, *args))
            with lock:
                done[outcome] += 1
                finished = sum(done.values())
                if len(killed) < KILLS and finished >= KILL_AFTER * (len(killed) + 1):
                    victim = server.worker_pids()[0]
                    os.kill(victim, signal.SIGKILL)
                    killed.append(victim)
            return outcome

        with ThreadPoolExecutor(CLIENTS) as pool:
            outcomes = list(pool.map(one, work))
        server_log = server.log()

    sync = subprocess.run([sys.executable, "-m", "flask", "--app", "wsgi", "payments", "sync"], cwd=ROOT,
                          env={**os.environ, "DATABASE_URL": database_url, "PAYMENT_GATEWAY": "sandbox",
                               "FINEPAY_INSTANCE_PATH": str(tmp_path)},
                          capture_output=True, text=True, timeout=120)
    report = ledger_report()
    broken = outcomes.count("broken")
    print(f"\n[reliability] SIGKILL mid-stream: requests sent ~{2 * PAYMENTS}, payments attempted {PAYMENTS}, "
          f"workers killed {len(killed)}, requests broken by the kills {broken}, outcomes {dict(Counter(outcomes))}, "
          f"after sync: charged {report['charged']}, settled {report['settled']}, statuses {report['statuses']}, "
          f"payments lost {report['payments_lost']}, double charges {report['double_charges']}, "
          f"audit disagreements {report['audit_disagreements']}")

    message = f"{report}\nsync: {sync.stdout}{sync.stderr}\n{server_log}"
    assert len(killed) == KILLS, message
    assert sync.returncode == 0, message
    assert report["double_charges"] == 0, message
    assert report["payments_lost"] == 0, message
    # Every payment either settled exactly once or charged nothing.
    assert report["charged"] == report["settled"], message
    assert report["audit_disagreements"] == 0 and report["audit_chain_ok"], message
    assert not [o for o in outcomes if o.startswith(("create 5", "confirm 5"))
                and not o.startswith("confirm 503")], message
