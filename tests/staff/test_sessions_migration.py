"""The staff_sessions migration builds the table its model describes, and comes down again."""
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from flask import current_app
from flask_migrate import downgrade, upgrade

from finepay.extensions import db

REVISION = "0007_sessions"


def _staff_session_diffs():
    with db.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        diffs = compare_metadata(context, db.metadata)
    return [d for d in diffs if "staff_sessions" in repr(d)]


def _tables():
    return set(sa.inspect(db.engine).get_table_names())


def test_the_migration_matches_the_model_and_downgrades(app):
    assert _staff_session_diffs() == []
    below = ScriptDirectory.from_config(current_app.extensions["migrate"].migrate.get_config()) \
        .get_revision(REVISION).down_revision
    db.session.remove()

    downgrade(revision=below)
    assert "staff_sessions" not in _tables()
    upgrade()

    assert "staff_sessions" in _tables()
    assert _staff_session_diffs() == []
