"""The staff_sessions migration builds the table its model describes, and comes down again."""
import sqlalchemy as sa
from flask_migrate import downgrade, upgrade

from finepay.extensions import db
from tests.migrations import model_diffs, revision_below

REVISION = "0007_sessions"


def _tables():
    return set(sa.inspect(db.engine).get_table_names())


def test_the_migration_matches_the_model_and_downgrades(app):
    assert model_diffs("staff_sessions") == []
    below = revision_below(REVISION)
    db.session.remove()

    downgrade(revision=below)
    assert "staff_sessions" not in _tables()
    upgrade()

    assert "staff_sessions" in _tables()
    assert model_diffs("staff_sessions") == []
