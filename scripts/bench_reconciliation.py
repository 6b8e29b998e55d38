"""Time the daily reconciliation for 100,000 payments in one business day, on PostgreSQL.

    .venv/bin/python scripts/bench_reconciliation.py [PAYMENTS]

Creates a throwaway database (dropped at the end), migrates it, seeds
PAYMENTS (default 100,000) settled payments spread over yesterday in
Asia/Shanghai with their gateway records and a realistic sprinkling of
differences (ledger-only, gateway-only, amount mismatches, duplicate captures,
refunds), then times GET /staff/reconciliation and the full CSV through the
app (a signed-in supervisor, the test client: server time, no network).
Not a test: figures, not assertions. The acceptance figure is under 2 s.
"""
import os
import secrets
import statistics
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import psycopg

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

ADMIN_URL = os.environ.get("BENCH_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/test")
KEEP = os.environ.get("BENCH_KEEP") == "1"  # keep the database afterwards, to look at query plans
RUNS = int(os.environ.get("BENCH_RUNS", 5))
ZONE = "Asia/Shanghai"


def seed(url, n, day):
    """Yesterday's ledger and gateway records, written with generate_series (seconds, not minutes)."""
    start = datetime.combine(day, datetime.min.time(), ZoneInfo(ZONE))
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("""
            INSERT INTO terminals (name, created_by, created_at)
            SELECT 'hall-' || t, 'bench', now() FROM generate_series(1, 10) t
        """)
        conn.execute("""
            INSERT INTO violations (notice_number, plate, vin_last6, occurred_at, location, offense_code, description,
                                    fine, points, decision_date, status, payable_online, late_fee_paid, paid_at,
                                    receipt_number, created_at, updated_at)
            SELECT '8' || lpad(i::text, 17, '0'), 'B' || lpad(i::text, 6, '0'), 'A12345', %(start)s - interval '20 days',
                   'Road ' || (i %% 977), '1352', 'Speeding', 10000 + (i %% 5) * 5000, 3, (%(start)s::date - 18),
                   'paid', true, 0, %(start)s + (i * interval '1 second' * 86000 / %(n)s),
                   'FP-BNCH-' || lpad(i::text, 9, '0'), now(), now()
            FROM generate_series(1, %(n)s) i
        """, {"start": start, "n": n})
        # Every payment settled yesterday; one in five at a kiosk.
        conn.execute("""
            INSERT INTO payments (id, status, amount, convenience_fee, currency, plate, vin_last6, channel, terminal_id,
                                  gateway, gateway_intent_id, idempotency_key, request_fingerprint, confirm_attempts,
                                  amount_received, receipt_number, expires_at, paid_at, created_at, updated_at)
            SELECT 'pay_bench' || lpad(i::text, 15, '0'), 'succeeded', 10000 + (i %% 5) * 5000, 0, 'CNY',
                   'B' || lpad(i::text, 6, '0'), 'A12345',
                   CASE WHEN i %% 5 = 0 THEN 'kiosk' ELSE 'web' END,
                   CASE WHEN i %% 5 = 0 THEN 1 + i %% 10 END,
                   'sandbox', 'si_bench' || i, 'bench-' || i, md5(i::text), 1, 10000 + (i %% 5) * 5000,
                   'FP-BNCH-' || lpad(i::text, 9, '0'), %(start)s + interval '1 day',
                   %(start)s + (i * interval '1 second' * 86000 / %(n)s),
                   %(start)s + (i * interval '1 second' * 86000 / %(n)s) - interval '40 seconds',
                   %(start)s + (i * interval '1 second' * 86000 / %(n)s)
            FROM generate_series(1, %(n)s) i
        """, {"start": start, "n": n})
        conn.execute("""
            INSERT INTO payment_items (payment_id, violation_id, fine, late_fee, holds, settled)
            SELECT 'pay_bench' || lpad(i::text, 15, '0'), v.id, 10000 + (i %% 5) * 5000, 0, NULL, true
            FROM generate_series(1, %(n)s) i JOIN violations v ON v.notice_number = '8' || lpad(i::text, 17, '0')
        """, {"n": n})
        # The gateway's side: a charge two seconds before each settlement, except for 1 in 500
        # (settled behind the gateway's back); 1 in 700 charged a different amount; 1 in 1000
        # captured twice; plus charges the ledger never saw. Each with a 0.6 % fee, as WeChat Pay's bill has.
        conn.execute("""
            INSERT INTO gateway_records (gateway, transaction_id, kind, intent_id, payment_id, amount, fee, currency,
                                         status, created_at, fetched_at)
            SELECT 'sandbox', 'sch_bench' || i, 'charge', 'si_bench' || i, 'pay_bench' || lpad(i::text, 15, '0'),
                   10000 + (i %% 5) * 5000 - CASE WHEN i %% 700 = 0 THEN 100 ELSE 0 END, (10000 + (i %% 5) * 5000) * 6 / 1000,
                   'CNY', 'succeeded', %(start)s + (i * interval '1 second' * 86000 / %(n)s) - interval '2 seconds', now()
            FROM generate_series(1, %(n)s) i WHERE i %% 500 <> 0
            UNION ALL
            SELECT 'sandbox', 'sch_bench_dup' || i, 'charge', 'si_bench' || i, 'pay_bench' || lpad(i::text, 15, '0'),
                   10000 + (i %% 5) * 5000, (10000 + (i %% 5) * 5000) * 6 / 1000, 'CNY', 'succeeded',
                   %(start)s + (i * interval '1 second' * 86000 / %(n)s) - interval '1 second', now()
            FROM generate_series(1, %(n)s) i WHERE i %% 1000 = 1
            UNION ALL
            SELECT 'sandbox', 'sch_ghost' || g, 'charge', 'si_ghost' || g, NULL, 4200, 25, 'CNY', 'succeeded',
                   %(start)s + g * interval '7 minutes', now()
            FROM generate_series(1, 150) g
        """, {"start": start, "n": n})
        # One payment in a hundred partly refunded by staff, through the gateway.
        conn.execute("""
            INSERT INTO refunds (payment_id, amount, currency, reason, automatic, status, gateway_refund_id,
                                 idempotency_key, actor, created_at)
            SELECT 'pay_bench' || lpad(i::text, 15, '0'), 1000, 'CNY', 'bench', false, 'succeeded', 'sre_bench' || i,
                   'bench-refund-' || i, 'staff:bench', %(start)s + (i * interval '1 second' * 86000 / %(n)s)
                   + interval '10 minutes'
            FROM generate_series(1, %(n)s) i WHERE i %% 100 = 3 AND i < %(n)s * 0.95
        """, {"start": start, "n": n})
        conn.execute("""
            INSERT INTO gateway_records (gateway, transaction_id, kind, intent_id, payment_id, amount, fee, currency,
                                         status, created_at, fetched_at)
            SELECT 'sandbox', r.gateway_refund_id, 'refund', p.gateway_intent_id, p.id, r.amount, -r.amount * 6 / 1000,
                   r.currency, 'succeeded', r.created_at + interval '1 second', now()
            FROM refunds r JOIN payments p ON p.id = r.payment_id
        """)
        conn.execute("ANALYZE")


def timed(label, request, runs=RUNS):
    """Run request() once to warm up, then `runs` times; print and return the median seconds."""
    request()
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        request()
        samples.append(time.perf_counter() - started)
    median = statistics.median(samples)
    print(f"{label:44} median {median:6.3f} s   min {min(samples):6.3f}   max {max(samples):6.3f}   ({runs} runs)")
    return median


def report_seconds(app, day, runs=RUNS):
    """Median seconds of the report page and of its CSV for one day, as a signed-in supervisor."""
    from sqlalchemy import event

    from finepay.extensions import db
    from payments.reconciliation.report import reconcile
    from staff import services, sessions
    from staff.auth import SESSION_KEY

    with app.app_context():
        user = services.create_user(f"bench-{secrets.token_hex(3)}", "supervisor", secrets.token_hex(16), actor="bench")
        client = app.test_client()
        token = sessions.start_session(user, "127.0.0.1", "bench")
        with client.session_transaction() as session:  # signed in, as after the sign-in form
            session["_user_id"], session[SESSION_KEY] = user.get_id(), token
        query = f"start={day}&end={day}"
        page = client.get(f"/staff/reconciliation?{query}")
        assert page.status_code == 200, page.status_code
        body = page.get_data(as_text=True)
        sent = []

        def count(conn, cursor, statement, *args):
            sent.append(statement)

        event.listen(db.engine, "before_cursor_execute", count)
        report = reconcile(day, day)
        event.remove(db.engine, "before_cursor_execute", count)
        print("lines by class:", {cls: t.count for cls, t in report.classes.items()},
              f"collected {report.collected.amount:,} fen, page {len(body) // 1024} KiB, "
              f"{len(sent)} SQL statements for the report")

        def report_page():
            response = client.get(f"/staff/reconciliation?{query}")
            response.get_data()
            assert response.status_code == 200, response.status_code

        rows = []

        def csv_file():
            response = client.get(f"/staff/reconciliation.csv?{query}")
            data = response.get_data()
            assert response.status_code == 200, response.status_code
            rows.append(data.count(b"\n") - 1)

        page_median = timed("GET /staff/reconciliation (HTML, chart)", report_page, runs)
        csv_median = timed("GET /staff/reconciliation.csv (every line)", csv_file, runs)
        print(f"CSV lines: {rows[-1]:,}")
        db.session.remove()
    return page_median, csv_median


def seed_and_time(app, url, n, runs=RUNS):
    """Seed n payments settled yesterday into the migrated database at url; median seconds of page and CSV."""
    from violations.fees import business_today

    day = business_today(ZONE) - timedelta(days=1)
    started = time.perf_counter()
    seed(url.replace("+psycopg", ""), n, day)
    print(f"seeded {n:,} payments for {day} in {time.perf_counter() - started:.1f} s")
    return report_seconds(app, day, runs)


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    from flask_migrate import upgrade

    from finepay.app import create_app
    from finepay.extensions import db

    name = f"finepay_bench_recon_{secrets.token_hex(4)}"
    base = ADMIN_URL.rsplit("/", 1)[0]
    url = f"{base}/{name}".replace("postgresql://", "postgresql+psycopg://", 1)
    with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        app = create_app({"SQLALCHEMY_DATABASE_URI": url, "SECRET_KEY": "bench-" + secrets.token_hex(16),
                          "WTF_CSRF_ENABLED": False, "PAYMENT_GATEWAY": "sandbox", "BUSINESS_TIMEZONE": ZONE})
        with app.app_context():
            upgrade()
        print(f"database {name}")
        seed_and_time(app, url, n)
        with app.app_context():
            db.engine.dispose()
    finally:
        if KEEP:
            print(f"kept {url}")
        else:
            with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
                admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


if __name__ == "__main__":
    main()
