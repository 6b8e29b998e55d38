"""The gateway-fees migration gives gateway_records the fee column its model describes, and comes down again."""
from datetime import UTC, datetime

import sqlalchemy as sa
from flask_migrate import downgrade, upgrade

from finepay.extensions import db
from tests.migrations import model_diffs, revision_below

REVISION = "0012_gateway_fees"


def _columns():
    return {c["name"] for c in sa.inspect(db.engine).get_columns("gateway_records")}


def test_the_migration_matches_the_model_and_downgrades(app):
    assert model_diffs("gateway_records") == []
    below = revision_below(REVISION)
    db.session.remove()

    downgrade(revision=below)
    assert "fee" not in _columns()
    with db.engine.begin() as connection:  # a record fetched before the upgrade
        connection.execute(sa.text(
            "INSERT INTO gateway_records (gateway, transaction_id, kind, amount, currency, status, created_at, "
            "fetched_at) VALUES ('sandbox', 'ch_1', 'charge', 100, 'CNY', 'succeeded', :at, :at)"),
            {"at": datetime(2026, 11, 2, tzinfo=UTC)})
    upgrade()  # back to the head, for the tests that share this database

    assert model_diffs("gateway_records") == []
    with db.engine.connect() as connection:
        assert connection.execute(sa.text("SELECT fee FROM gateway_records")).scalar_one() == 0
