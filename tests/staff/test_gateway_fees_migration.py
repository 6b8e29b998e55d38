"""The gateway-fees migration gives gateway_records the fee column its model describes, and comes down again."""
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask_migrate import downgrade, upgrade

from finepay.extensions import db

REVISION = "0012_gateway_fees"


def _gateway_record_diffs():
    with db.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        diffs = compare_metadata(context, db.metadata)
    return [d for d in diffs if "gateway_records" in repr(d)]


def _columns():
    return {c["name"] for c in sa.inspect(db.engine).get_columns("gateway_records")}


def test_the_migration_matches_the_model_and_downgrades(app):
    assert _gateway_record_diffs() == []
    db.session.remove()

    downgrade(revision="0011_alipay")
    assert "fee" not in _columns()
    with db.engine.begin() as connection:  # a record fetched before the upgrade
        connection.execute(sa.text(
            "INSERT INTO gateway_records (gateway, transaction_id, kind, amount, currency, status, created_at, "
            "fetched_at) VALUES ('sandbox', 'ch_1', 'charge', 100, 'CNY', 'succeeded', :at, :at)"),
            {"at": datetime(2026, 11, 2, tzinfo=UTC)})
    upgrade(revision=REVISION)

    assert _gateway_record_diffs() == []
    with db.engine.connect() as connection:
        assert connection.execute(sa.text("SELECT fee FROM gateway_records")).scalar_one() == 0
