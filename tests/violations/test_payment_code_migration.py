"""The payment-code migration gives violations the column (unique, nullable) its model describes, and comes down again."""
from datetime import UTC, date, datetime

import pytest
import sqlalchemy as sa
from flask_migrate import downgrade, upgrade

from finepay.extensions import db
from tests.migrations import model_diffs, revision_below

REVISION = "0014_payment_code"


def _columns():
    return {c["name"] for c in sa.inspect(db.engine).get_columns("violations")}


def _insert(connection, notice, code=None):
    values = {"n": notice, "at": datetime(2026, 11, 2, tzinfo=UTC), "d": date(2026, 11, 5)}
    columns, params = "", ""
    if code is not None:
        columns, params, values["code"] = ", payment_code", ", :code", code
    connection.execute(sa.text(
        "INSERT INTO violations (notice_number, plate, vin_last6, occurred_at, location, offense_code, description, "
        f"fine, points, decision_date, status, payable_online, created_at, updated_at{columns}) VALUES (:n, '蒙B12345', "
        f"'A12345', :at, 'here', '1352', 'x', 100, 0, :d, 'unpaid', true, :at, :at{params})"), values)


def test_the_migration_matches_the_model_and_downgrades(app):
    assert model_diffs("violations") == []
    below = revision_below(REVISION)
    db.session.remove()

    downgrade(revision=below)
    assert "payment_code" not in _columns()
    with db.engine.begin() as connection:  # a violation imported before the upgrade
        _insert(connection, "150203202611000001")
    upgrade()  # back to the head, for the tests that share this database

    assert model_diffs("violations") == []
    with db.engine.begin() as connection:
        assert connection.execute(sa.text("SELECT payment_code FROM violations")).scalar_one() is None
        _insert(connection, "150203202611000002")  # several without a code: NULLs never collide
        _insert(connection, "150203202611000003", "15020326110000000123")
    with pytest.raises(sa.exc.IntegrityError), db.engine.begin() as connection:
        _insert(connection, "150203202611000004", "15020326110000000123")
