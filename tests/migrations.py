"""What the migration tests share: how a table differs from its model, and the revision below a migration."""
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from flask import current_app

from finepay.extensions import db


def model_diffs(table):
    """Alembic's differences between the database and the models that concern ``table`` ([] when they agree)."""
    with db.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        diffs = compare_metadata(context, db.metadata)
    return [d for d in diffs if table in repr(d)]


def revision_below(revision):
    """The revision a migration comes down to (its down_revision), read from the migrations folder."""
    return ScriptDirectory.from_config(current_app.extensions["migrate"].migrate.get_config()) \
        .get_revision(revision).down_revision
