"""The audit log's hash chain: filled at commit, verified by `flask audit verify`, tamper-evident."""
import threading

import pytest
import sqlalchemy as sa
from sqlalchemy import select

from finepay import audit
from finepay.audit import GENESIS, AuditEntry, entry_digest, verify_chain
from finepay.extensions import db
from tests.conftest import make_app
from tests.staff.helpers import make_supervisor, paid_payment, sign_in_as


def entries():
    db.session.expire_all()
    return db.session.execute(select(AuditEntry).order_by(AuditEntry.id)).scalars().all()


def tamper(sql, **params):
    """Change the log behind the application's back, as an intruder with database access would."""
    engine = db.engine
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(sa.text("SET LOCAL session_replication_role = replica"))  # skips the append-only trigger
            conn.execute(sa.text(sql), params)
        else:
            conn.execute(sa.text("DROP TRIGGER audit_log_no_update"))
            conn.execute(sa.text("DROP TRIGGER audit_log_no_delete"))
            conn.execute(sa.text(sql), params)


def test_every_entry_is_chained_to_the_one_before(app):
    audit.record("test.first", "thing", 1, actor="tester", n=1)
    audit.record("test.second", "thing", 1, actor="tester", nested={"b": [1, 2], "a": "蒙B12345"})
    db.session.commit()
    paid_payment()

    log = entries()

    assert len(log) > 4
    assert log[0].prev_hash == GENESIS
    for before, entry in zip(log, log[1:], strict=False):
        assert entry.prev_hash == before.entry_hash
    for entry in log:
        assert entry.entry_hash == entry_digest(entry, entry.prev_hash)
    assert verify_chain().ok and verify_chain().checked == len(log)


def test_an_entry_lives_and_dies_with_its_transaction(app):
    audit.record("test.kept", "thing", 1)
    db.session.commit()
    audit.record("test.rolled_back", "thing", 2)
    db.session.rollback()
    audit.record("test.closed", "thing", 3)
    db.session.close()
    audit.record("test.after", "thing", 4)
    db.session.commit()

    assert [e.action for e in entries()] == ["test.kept", "test.after"]
    assert verify_chain().ok


def test_the_database_still_refuses_to_change_the_log(app):
    audit.record("test.entry", "thing", 1)
    db.session.commit()

    with pytest.raises(sa.exc.DatabaseError):
        db.session.execute(sa.text("UPDATE audit_log SET actor = 'someone else'"))
        db.session.commit()
    db.session.rollback()
    with pytest.raises(sa.exc.DatabaseError):
        db.session.execute(sa.text("DELETE FROM audit_log"))
        db.session.commit()
    db.session.rollback()


@pytest.mark.parametrize("change", ["content", "delete", "reorder"])
def test_verify_finds_a_changed_removed_or_moved_entry(app, runner, change):
    for n in range(5):
        audit.record("test.entry", "thing", n, actor="tester", amount=n * 100)
        db.session.commit()
    ids = [e.id for e in entries()]
    assert runner.invoke(args=["audit", "verify"]).exit_code == 0

    if change == "content":
        tamper("UPDATE audit_log SET details = :d WHERE id = :id", d='{"amount": 1}', id=ids[2])
        broken = ids[2]
    elif change == "delete":
        tamper("DELETE FROM audit_log WHERE id = :id", id=ids[2])
        broken = ids[3]
    else:
        tamper("UPDATE audit_log SET actor = 'x' WHERE id = :id", id=ids[0])
        broken = ids[0]

    result = runner.invoke(args=["audit", "verify"])
    assert result.exit_code == 1
    assert f"BROKEN at audit entry {broken}" in result.output
    assert verify_chain().broken_at == broken


def test_verify_reports_success(app, runner):
    paid_payment()

    result = runner.invoke(args=["audit", "verify"])

    assert result.exit_code == 0
    assert result.output.startswith("OK: ") and "entries verify" in result.output


def test_staff_actions_carry_who_and_from_where(app, client):
    sign_in_as(client, make_supervisor("auditor"))

    client.post("/staff/search", data={"q": "蒙B12345"}, environ_base={"REMOTE_ADDR": "198.51.100.9"})

    (entry,) = [e for e in entries() if e.action == "staff.searched"]
    assert entry.actor == "staff:auditor"
    assert entry.remote_addr == "198.51.100.9"
    assert entry.details["query"] == "蒙B12345"


def test_the_audit_page_lists_and_filters_the_log(app, client):
    payment, _violation = paid_payment()
    sign_in_as(client, make_supervisor())

    everything = client.get("/staff/audit").get_data(as_text=True)
    payments_only = client.get(f"/staff/audit?action=payment.succ&subject=payment:{payment.id}").get_data(as_text=True)
    nothing = client.get("/staff/audit?actor=nobody").get_data(as_text=True)

    assert "payment.succeeded" in everything and "staff" in everything
    assert "payment.succeeded" in payments_only and "payment.created" not in payments_only
    assert "refund." not in payments_only
    assert "Nothing recorded." in nothing


def test_the_audit_page_pages_backwards(app, client):
    for n in range(105):
        audit.record("test.bulk", "thing", n)
    db.session.commit()
    sign_in_as(client, make_supervisor())

    first = client.get("/staff/audit?action=test.").get_data(as_text=True)
    older_link = first.split('href="/staff/audit?before=')[1].split('"')[0].replace("&amp;", "&")
    second = client.get(f"/staff/audit?before={older_link}").get_data(as_text=True)

    assert first.count("test.bulk") == 100
    assert second.count("test.bulk") == 5


def test_concurrent_writers_never_fork_the_chain(database_url):
    """Separate apps (as separate workers) commit audited changes at once; the chain stays one line."""
    writers, each = 8, 10
    apps = [make_app(database_url) for _ in range(writers)]
    barrier = threading.Barrier(writers, timeout=30)
    errors = []

    def write(app, n):
        try:
            with app.app_context():
                barrier.wait()
                for i in range(each):
                    audit.record("test.concurrent", "writer", n, i=i)
                    db.session.commit()
                db.session.remove()
                db.engine.dispose()
        except Exception as exc:  # reported below
            errors.append(repr(exc))

    threads = [threading.Thread(target=write, args=(app, n)) for n, app in enumerate(apps)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert not errors
    check = make_app(database_url)
    with check.app_context():
        report = verify_chain()
        assert report.ok, report
        assert report.checked == writers * each
        db.engine.dispose()
