"""Two app servers behind nginx, sharing PostgreSQL and Redis: the way docs/deploy.md scales FinePay out.

Each test starts two FinePay app servers (separate gunicorn masters on their own ports, production
settings with the sandbox allowed) and Debian's nginx in front of them, running the shipped
deploy/nginx-finepay.conf.template over TLS. Rate limits are counted in Redis database 9 (the
machine's Redis on 6379, or a private redis-server when that one is not there), emptied before and
after. Without nginx the tests are skipped loudly, or fail under REQUIRE_NGINX=1 / REQUIRE_BROWSER=1.
"""
import http.client
import json
import secrets
import ssl
import subprocess
import sys
import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

import pytest
import requests
from limits import parse
from sqlalchemy import func, select

from finepay.extensions import db
from finepay.settings import from_env
from payments.gateways.sandbox import SandboxIntent
from tests.payments.helpers import overdue_violation
from tests.reliability.ledger import ledger_report
from tests.reliability.payer import describe, pay, race
from tests.reliability.servers import ROOT, Gunicorn, Nginx, redis_database

PRODUCTION = {
    "FINEPAY_ENV": "production",
    "AUTHORITY_NAME": "包头市公安局交通管理支队",
    # The sandbox stands in for a real gateway; production refuses it unless told this is staging.
    "ALLOW_SANDBOX_IN_PRODUCTION": "1",
    "PAYMENT_GATEWAY": "sandbox",
    "PROXY_COUNT": "1",  # nginx, and nothing else, stands in front
}
PAYERS = 50
PAYMENTS = 60
CLIENTS = 8
KILL_AFTER = 20  # payments finished before one app server dies
WRONG_VIN = "Z99999"


@pytest.fixture
def redis_url(tmp_path):
    """Redis database 9, empty; the machine's Redis if it answers, else a private redis-server."""
    with redis_database(tmp_path, 9) as url:
        yield url


@contextmanager
def deployment(tmp_path, database_url, redis_url, **env):
    """Two app servers (own gunicorn masters, one SECRET_KEY) behind nginx; yields (nginx, nodes)."""
    settings = {**PRODUCTION, "SECRET_KEY": secrets.token_hex(32), "RATELIMIT_STORAGE_URI": redis_url, **env}
    nodes = [Gunicorn(tmp_path, database_url, workers=2, threads=4, **settings) for _ in range(2)]
    try:
        with ThreadPoolExecutor(len(nodes)) as pool:
            list(pool.map(Gunicorn.start, nodes))
        with Nginx(tmp_path, [f"127.0.0.1:{node.port}" for node in nodes]) as nginx:
            yield nginx, nodes
    finally:
        for node in nodes:
            node.stop()


def node_statuses(node, path_prefix):
    """The statuses this app server answered for paths starting with path_prefix (its own access log)."""
    statuses = Counter()
    for line in node.access_path.read_text().splitlines():
        entry = json.loads(line)
        if entry["path"].startswith(path_prefix):
            statuses[entry["status"]] += 1
    return statuses


def answered_by(nginx, nodes):
    """How many requests each app server answered, from nginx's log (the last address tried)."""
    names = {f"127.0.0.1:{node.port}": f"node {i + 1}" for i, node in enumerate(nodes)}
    return Counter(names.get(entry["upstream"].split(", ")[-1], entry["upstream"]) for entry in nginx.entries())


def lookup(nginx, body, source, forwarded_for=None):
    """POST /api/v1/lookups through nginx from the loopback address source; returns the status, or
    "challenged" for an answer that asks for more proof instead of showing violations."""
    connection = http.client.HTTPSConnection("127.0.0.1", nginx.port, source_address=(source, 0), timeout=30,
                                             context=ssl.create_default_context(cafile=nginx.cert))
    headers = {"Content-Type": "application/json"}
    if forwarded_for:
        headers["X-Forwarded-For"] = forwarded_for
    try:
        connection.request("POST", "/api/v1/lookups", json.dumps(body).encode(), headers)
        response = connection.getresponse()
        answer = response.read()
    finally:
        connection.close()
    if response.status == 200 and "violations" not in json.loads(answer):
        return "challenged"
    return response.status


def refused(status):
    """The limit applied: neither answered (200) nor told "no match" (404); 429 or a challenge."""
    return status not in (200, 404)


def test_lookup_limits_hold_across_both_nodes(app, database_url, redis_url, tmp_path):
    violation = overdue_violation()
    plate, vin = violation.plate, violation.vin_last6
    assert vin != WRONG_VIN
    db.session.remove()
    defaults = from_env("", env={})  # the limits a production deployment gets
    per_client = parse(defaults["LOOKUP_RATE_LIMIT"]).amount
    per_plate = parse(defaults["PLATE_FAILURE_RATE_LIMIT"]).amount
    extra = 6

    with deployment(tmp_path, database_url, redis_url, LOOKUP_RATE_LIMIT=defaults["LOOKUP_RATE_LIMIT"],
                    PLATE_FAILURE_RATE_LIMIT=defaults["PLATE_FAILURE_RATE_LIMIT"]) as (nginx, nodes):
        # One client (127.0.0.11) tries a different unknown plate each time, so no plate's budget is
        # touched, and claims a new address in X-Forwarded-For each time: nginx appends the real one,
        # which is the one FinePay counts.
        client_statuses = [
            lookup(nginx, {"plate": f"蒙B9{i:04d}", "vin_last6": WRONG_VIN}, "127.0.0.11", f"203.0.113.{i}")
            for i in range(per_client + extra)
        ]
        another_client = lookup(nginx, {"plate": plate, "vin_last6": vin}, "127.0.0.12")
        # Many clients (one lookup each, from 127.0.1.x) guess the VIN code of one plate.
        plate_statuses = [lookup(nginx, {"plate": plate, "vin_last6": WRONG_VIN}, f"127.0.1.{i + 1}")
                          for i in range(per_plate + extra)]
        served = [node_statuses(node, "/api/v1/lookups") for node in nodes]
        by_node = answered_by(nginx, nodes)
        redirect = requests.get(f"http://127.0.0.1:{nginx.settings['FINEPAY_HTTP_LISTEN'].split(':')[1]}/healthz",
                                allow_redirects=False, timeout=10)
        metrics = requests.get(f"{nginx.url}/metrics", verify=nginx.cert, timeout=10)
        logs = "\n".join([nginx.log(), *(node.log() for node in nodes)])

    print(f"\n[multinode] lookup limits across 2 nodes ({defaults['LOOKUP_RATE_LIMIT']} per client, "
          f"{defaults['PLATE_FAILURE_RATE_LIMIT']} failures per plate): requests {len(client_statuses) + 1 + len(plate_statuses)}; "
          f"one client {dict(Counter(client_statuses))}, another client {another_client}, one plate from "
          f"{len(plate_statuses)} clients {dict(Counter(plate_statuses))}; lookups answered per node "
          f"{[dict(s) for s in served]}; all requests per node (nginx) {dict(by_node)}")

    message = f"{client_statuses} {plate_statuses} {served}\n{logs}"
    # Exactly what one server would allow, although each of the two saw about half of the requests.
    assert client_statuses[:per_client] == [404] * per_client, message
    assert all(refused(s) for s in client_statuses[per_client:]), message
    assert another_client == 200, message  # the limit is the client's, not everyone's
    assert plate_statuses[:per_plate] == [404] * per_plate, message
    assert all(refused(s) for s in plate_statuses[per_plate:]), message
    for statuses in served:  # both nodes answered lookups, and both refused once the shared count was spent
        assert statuses[404] > 0 and sum(n for s, n in statuses.items() if refused(s)) > 0, message
    assert redirect.status_code == 301 and redirect.headers["Location"] == "https://127.0.0.1/healthz"
    assert metrics.status_code == 404  # scraped on each app server, never through the load balancer


def test_fifty_payers_across_both_nodes_capture_once(app, database_url, redis_url, tmp_path, monkeypatch):
    violation = overdue_violation()
    violation_id, plate, vin = violation.id, violation.plate, violation.vin_last6
    db.session.remove()

    with deployment(tmp_path, database_url, redis_url) as (nginx, nodes):
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(nginx.cert))  # the drivers trust our nginx
        results = race(nginx.url, plate, vin, violation_id, PAYERS)
        served = [node_statuses(node, "/api/v1/payments") for node in nodes]
        lb = nginx.entries()
        logs = "\n".join([nginx.log(), *(node.log() for node in nodes)])

    seen = Counter(describe(r) for r in results)
    captures = db.session.execute(
        select(func.count()).select_from(SandboxIntent).where(SandboxIntent.status == "succeeded")
    ).scalar_one()
    report = ledger_report()
    winners = [r for r in results if r.get("status") == "succeeded"]
    server_errors = sum(1 for entry in lb if entry["status"] >= 500)
    print(f"\n[multinode] {PAYERS} payer processes x 1 violation across 2 nodes: requests "
          f"{sum(1 + ('confirm' in r) for r in results)}, outcomes {dict(seen)}, payment requests per node "
          f"{[dict(s) for s in served]}, gateway captures {captures}, settlements {report['violations_paid']}, "
          f"payments lost {report['payments_lost']}, double charges {report['double_charges']}, 5xx {server_errors}")

    message = f"{dict(seen)}; {report}\n{logs}"
    assert not [r for r in results if "error" in r], message
    assert all(r["create"] in (201, 409) and r.get("confirm", 200) in (200, 409) for r in results), message
    assert all(sum(statuses.values()) > 0 for statuses in served), message  # the race ran on both nodes
    assert len(winners) == 1 and captures == 1, message
    assert report["violations_paid"] == 1 and report["settled"] == 1, message
    assert report["double_charges"] == 0 and report["payments_lost"] == 0, message
    assert report["audit_disagreements"] == 0 and report["audit_chain_ok"], message
    assert server_errors == 0, message
    assert "Traceback" not in logs, logs


def test_killing_one_node_mid_stream_loses_nothing(app, database_url, redis_url, tmp_path, monkeypatch):
    violations = [overdue_violation(notice_number=f"1502032026129{i:05d}") for i in range(PAYMENTS)]
    work = [(v.plate, v.vin_last6, v.id) for v in violations]
    db.session.remove()
    done, killed, lock = Counter(), [], threading.Lock()

    with deployment(tmp_path, database_url, redis_url) as (nginx, (victim, survivor)):
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(nginx.cert))  # the drivers trust our nginx

        def one(args):
            outcome = describe(pay(nginx.url, *args))
            with lock:
                done[outcome] += 1
                if not killed and sum(done.values()) >= KILL_AFTER:
                    killed.extend(victim.kill())  # master and workers, mid-stream
            return outcome

        with ThreadPoolExecutor(CLIENTS) as pool:
            outcomes = list(pool.map(one, work))
        lb = nginx.entries()
        by_node = answered_by(nginx, [victim, survivor])
        logs = "\n".join([nginx.log(), victim.log(), survivor.log()])

    # cron's `payments sync`, on the surviving app server with its settings.
    sync = subprocess.run([sys.executable, "-m", "flask", "--app", "wsgi", "payments", "sync"], cwd=ROOT,
                          env=survivor.env, capture_output=True, text=True, timeout=120)
    report = ledger_report()
    server_errors = sum(1 for entry in lb if entry["status"] >= 500)
    failovers = [entry for entry in lb if ", " in entry["upstream"]]
    print(f"\n[multinode] one node SIGKILLed after {KILL_AFTER} of {PAYMENTS} payments ({CLIENTS} clients): "
          f"requests {len(lb)}, faults 1 node ({len(killed)} processes), requests failed over to the other node "
          f"{len(failovers)} (upstream statuses {dict(Counter(e['upstream_status'] for e in failovers))}), answered per "
          f"node {dict(by_node)}, outcomes {dict(Counter(outcomes))}, 5xx {server_errors}; after sync: charged "
          f"{report['charged']}, settled {report['settled']}, violations paid {report['violations_paid']}/{PAYMENTS}, "
          f"statuses {report['statuses']}, lost {report['payments_lost']}, double charged {report['double_charges']}")

    message = f"{report}\n{dict(Counter(outcomes))}\nsync: {sync.stdout}{sync.stderr}\n{logs}"
    assert killed, message
    assert sync.returncode == 0, message
    assert report["double_charges"] == 0, message
    assert report["payments_lost"] == 0, message  # every captured payment's violations are paid
    assert report["charged"] == report["settled"], message
    assert report["audit_disagreements"] == 0 and report["audit_chain_ok"], message
    # nginx moved what the dead node could not answer to the other one: no driver saw an error.
    assert failovers, message
    assert server_errors == 0 and "broken" not in outcomes, message
    assert set(outcomes) <= {"confirm 200 succeeded", "confirm 409 payment_in_progress"}, message
