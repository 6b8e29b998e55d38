"""SQLite, the embedded default: WAL, a busy timeout, and the write lock from a transaction's first lock or write."""
import shutil

import pytest
import sqlalchemy as sa

from finepay.extensions import db
from tests.conftest import make_app
from tests.factories import make_violation
from violations.models import Violation


@pytest.fixture
def sqlite_app(sqlite_template, tmp_path):
    path = tmp_path / "test.sqlite"
    shutil.copy(sqlite_template, path)
    app = make_app(f"sqlite:///{path}", SQLITE_BUSY_TIMEOUT_SECONDS=1)
    with app.app_context():
        yield app
        db.session.remove()
        db.engine.dispose()


def other_writer_waits(violation_id):
    """Whether a write from another connection is kept waiting (and gives up after the busy timeout)."""
    with db.engine.connect() as other:
        try:
            other.execute(sa.update(Violation).where(Violation.id == violation_id).values(points=1))
            other.commit()
        except sa.exc.OperationalError as error:
            assert "locked" in str(error)
            return True
    return False


def test_the_database_runs_in_wal_mode_with_a_busy_timeout(sqlite_app):
    assert db.session.execute(sa.text("PRAGMA journal_mode")).scalar() == "wal"
    assert db.session.execute(sa.text("PRAGMA busy_timeout")).scalar() == 1000


def test_a_locking_read_takes_the_write_lock_until_commit(sqlite_app):
    violation_id = make_violation().id

    db.session.execute(sa.select(Violation).where(Violation.id == violation_id).with_for_update()).all()

    assert other_writer_waits(violation_id)
    db.session.commit()
    assert not other_writer_waits(violation_id)


def test_a_write_takes_the_write_lock_until_commit(sqlite_app):
    violation_id = make_violation().id

    db.session.execute(sa.update(Violation).where(Violation.id == violation_id).values(points=3))

    assert other_writer_waits(violation_id)
    db.session.rollback()


def test_a_plain_read_holds_no_lock(sqlite_app):
    violation_id = make_violation().id

    db.session.execute(sa.select(Violation).where(Violation.id == violation_id)).all()

    assert not other_writer_waits(violation_id)
    db.session.rollback()
