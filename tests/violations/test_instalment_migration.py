"""The instalment-plans migration builds the tables and the payment_items column its models describe, and comes down."""
import sqlalchemy as sa
from flask_migrate import downgrade, upgrade

from finepay.extensions import db
from tests.migrations import model_diffs, revision_below

REVISION = "0014_instalment_plans"


def _tables():
    return set(sa.inspect(db.engine).get_table_names())


def test_the_migration_matches_the_models_and_downgrades(app):
    for table in ("instalment_plans", "instalments", "payment_items"):
        assert model_diffs(table) == [], table
    db.session.remove()

    downgrade(revision=revision_below(REVISION))
    assert not {"instalment_plans", "instalments"} & _tables()
    assert "instalment_id" not in {c["name"] for c in sa.inspect(db.engine).get_columns("payment_items")}
    upgrade()  # back to the head, for the tests that share this database

    for table in ("instalment_plans", "instalments", "payment_items"):
        assert model_diffs(table) == [], table
