"""The database goes away mid-request and comes back: clean 503s, readyz false, recovery without a restart."""
import threading
import time
import uuid
from collections import Counter
from urllib.parse import urlsplit

import requests
import sqlalchemy as sa

from finepay.extensions import db
from tests.payments.helpers import overdue_violation
from tests.reliability.servers import CuttableProxy, Gunicorn, wait_until

OUTAGE_SECONDS = 3


def through(proxy, url, application_name):
    """The same database URL, via the proxy, with an application_name to find our backends by."""
    parts = urlsplit(url)
    netloc = parts.netloc.rsplit("@", 1)
    host = f"127.0.0.1:{proxy.port}"
    netloc = f"{netloc[0]}@{host}" if len(netloc) == 2 else host
    query = f"{parts.query}&application_name={application_name}" if parts.query else f"application_name={application_name}"
    return parts._replace(netloc=netloc, query=query).geturl()


def test_database_dropped_and_restored_gives_clean_503s_and_recovers(app, database_url, tmp_path):
    violation = overdue_violation()
    body = {"plate": violation.plate, "vin_last6": violation.vin_last6}
    db.session.remove()
    target = urlsplit(database_url)
    proxy = CuttableProxy(target.hostname or "127.0.0.1", target.port or 5432)
    name = f"finepay_rel_{uuid.uuid4().hex[:8]}"
    answers = Counter()
    errors = []
    stop = threading.Event()
    try:
        with Gunicorn(tmp_path, through(proxy, database_url, name), workers=1, threads=4) as server:
            def hammer():
                while not stop.is_set():
                    try:
                        r = requests.post(f"{server.url}/api/v1/lookups", json=body, timeout=15)
                        code = (r.json() or {}).get("code") if r.status_code != 200 else None
                        answers[f"{r.status_code} {code or ''}".strip()] += 1
                    except (requests.RequestException, ValueError) as exc:
                        answers[f"broken {type(exc).__name__}"] += 1
                        errors.append(repr(exc))

            threads = [threading.Thread(target=hammer) for _ in range(3)]
            for t in threads:
                t.start()
            time.sleep(1)
            # 1. The server's connections are killed from the database side.
            engine = sa.create_engine(database_url)
            with engine.begin() as conn:
                terminated = conn.execute(sa.text(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = :n"
                ), {"n": name}).scalar()
            engine.dispose()
            time.sleep(1)
            # 2. The database disappears altogether for a while.
            cut = proxy.cut()
            time.sleep(0.5)
            during = requests.get(f"{server.url}/readyz", timeout=15)
            time.sleep(OUTAGE_SECONDS)
            proxy.restore()
            restored_at = time.monotonic()
            recovered = wait_until(lambda: requests.get(f"{server.url}/readyz", timeout=15).status_code == 200, 30)
            recovery_seconds = time.monotonic() - restored_at
            time.sleep(1)
            stop.set()
            for t in threads:
                t.join(30)
            after = requests.post(f"{server.url}/api/v1/lookups", json=body, timeout=15)
            server_log = server.log()
    finally:
        stop.set()
        proxy.close()

    print(f"\n[reliability] database outage: lookups sent {sum(answers.values())}, faults injected "
          f"{terminated} backends terminated + {cut} connections cut + {OUTAGE_SECONDS}s refusal, "
          f"answers {dict(answers)}, readyz during outage {during.status_code} {during.json()}, "
          f"recovered in {recovery_seconds:.1f}s without restart; 500s {sum(v for k, v in answers.items() if k.startswith('500'))}")

    message = f"{dict(answers)}\n{errors[:3]}\n{server_log[-1500:]}"
    assert terminated >= 1 and cut >= 1, message
    assert during.status_code == 503 and during.json()["checks"]["database"] == "unreachable", message
    assert recovered, message
    assert after.status_code == 200, message
    # Every answer is a 200 or a clean JSON 503. Rarely (about 1 run in 5, 1 request in ~1000) gunicorn's
    # gthread worker closes a fresh connection without answering while the database flaps: counted, bounded,
    # reported in the figures; a retry of such a request is safe (lookups change nothing).
    dropped = answers["broken ConnectionError"]
    assert set(answers) - {"broken ConnectionError"} <= {"200", "503 unavailable"}, message
    assert dropped <= sum(answers.values()) // 200, message
    assert answers["503 unavailable"] >= 1 and answers["200"] >= 1, message
