"""Audit writes take no lock that all writers share (PostgreSQL; SQLite has one writer at a time by design)."""
import pytest
import sqlalchemy as sa

from finepay import audit
from finepay.audit import AuditEntry
from finepay.extensions import db
from tests.conftest import make_app

CHAIN_LOCK_ON_MAIN = 0x46_50_41_55_44_49_54  # the advisory lock every audit write took before sealing existed


@pytest.fixture
def pg_app(postgres_url):
    """An app on the suite's PostgreSQL schema (SQLite has one writer at a time by design: no lock to avoid)."""
    app = make_app(postgres_url)
    with app.app_context():
        yield app
        db.session.remove()
        db.engine.dispose()


def test_an_audit_write_does_not_wait_for_a_global_lock(pg_app):
    """An audit write commits while the sealer's lock, and the one lock every write took before, are held."""
    holder = db.engine.connect()
    holder.execute(sa.text("SELECT pg_advisory_lock(:key)"), {"key": CHAIN_LOCK_ON_MAIN})
    holder.execute(sa.text("SELECT pg_advisory_lock(:key, 'audit_log'::regclass::oid::int)"),
                   {"key": audit.SEAL_LOCK})
    try:
        entry = audit.record("test.while_sealing", "thing", 1)
        # A guard, not a timing: without it a writer that queues would wait here for ever.
        db.session.execute(sa.text("SET LOCAL lock_timeout = '5s'"))
        db.session.commit()
        assert audit.seal().skipped
    finally:
        holder.execute(sa.text("SELECT pg_advisory_unlock_all()"))
        holder.close()
    assert db.session.get(AuditEntry, entry.id).seal_seq is None
    assert audit.seal().sealed >= 1
    assert db.session.get(AuditEntry, entry.id).seal_seq is not None
