"""The reminders' migration builds the tables their models describe, and comes down again."""
import sqlalchemy as sa
from flask_migrate import downgrade, upgrade

from finepay.extensions import db
from tests.migrations import model_diffs, revision_below

REVISION = "0014_notices"
TABLES = {"notice_subscriptions", "notice_messages"}


def _tables():
    return set(sa.inspect(db.engine).get_table_names())


def test_the_migration_matches_the_models_and_downgrades(app):
    for table in TABLES:
        assert model_diffs(table) == []
    below = revision_below(REVISION)
    db.session.remove()

    downgrade(revision=below)
    assert not TABLES & _tables()
    upgrade()

    assert TABLES <= _tables()
    for table in TABLES:
        assert model_diffs(table) == []
