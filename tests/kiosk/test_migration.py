"""The kiosk's tables as migrated are the tables its models describe."""
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from finepay.extensions import db

KIOSK_TABLES = {"terminals", "kiosk_sessions", "sandbox_reader_actions"}


def _table_of(diff):
    op = diff[0] if isinstance(diff, list) else diff
    for part in op[1:]:
        name = getattr(part, "name", None) if not isinstance(part, str) else None
        table = getattr(part, "table", None)
        if table is not None:
            return table.name
        if op[0] in ("add_table", "remove_table"):
            return name
        if isinstance(part, str):
            return part
    return None


def test_the_kiosk_migrations_match_the_models(app):
    with db.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        diffs = compare_metadata(context, db.metadata)

    ours = [d for d in diffs if _table_of(d) in KIOSK_TABLES]
    assert ours == []
