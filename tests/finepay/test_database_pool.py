"""Pooled connections: pinged only after sitting idle, and a dead idle one is replaced, not served."""
import pytest
import sqlalchemy as sa

from finepay.extensions import db
from tests.conftest import make_app


def backend_pid():
    return db.session.execute(sa.text("SELECT pg_backend_pid()")).scalar()


def kill(url, pid):
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
    engine.dispose()


@pytest.fixture
def pooled_app(postgres_url, request):
    app = make_app(postgres_url, DATABASE_IDLE_PING_SECONDS=request.param)
    with app.app_context():
        yield app
        db.session.remove()
        db.engine.dispose()


@pytest.mark.parametrize("pooled_app", [0], indirect=True)
def test_a_connection_killed_while_idle_is_replaced_before_use(pooled_app, postgres_url):
    first = backend_pid()
    db.session.remove()  # back to the pool
    kill(postgres_url, first)

    second = backend_pid()  # the checkout pings, finds it dead, and connects again

    assert second != first


@pytest.mark.parametrize("pooled_app", [3600], indirect=True)
def test_a_connection_in_steady_use_is_not_pinged(pooled_app, postgres_url):
    pings = []
    statements = []
    sa.event.listen(db.engine, "before_cursor_execute", lambda *args: statements.append(args[2]))
    original = db.engine.dialect.do_ping
    db.engine.dialect.do_ping = lambda dbapi_connection: pings.append("ping") or original(dbapi_connection)
    try:
        for _ in range(3):
            backend_pid()
            db.session.remove()
    finally:
        db.engine.dialect.do_ping = original

    assert "ping" not in pings
    assert statements == ["SELECT pg_backend_pid()"] * 3


@pytest.mark.parametrize("pooled_app", [3600], indirect=True)
def test_without_the_ping_a_dead_connection_fails_once_and_the_pool_recovers(pooled_app, postgres_url):
    first = backend_pid()
    db.session.remove()
    kill(postgres_url, first)

    with pytest.raises(sa.exc.OperationalError):
        backend_pid()  # the driver gets a 503 for this one (finepay.errors)
    db.session.remove()

    assert backend_pid() != first


def test_a_database_error_never_carries_a_plate_into_the_logs(app):
    # Errors are logged with their exception; SQLAlchemy would print the statement's parameters.
    with pytest.raises(sa.exc.DBAPIError) as raised:
        db.session.execute(sa.text("SELECT plate FROM no_such_table WHERE plate = :plate AND vin = :vin"),
                           {"plate": "蒙B12345", "vin": "A12345"})

    assert "B12345" not in str(raised.value) and "A12345" not in str(raised.value)
    assert "parameters hidden" in str(raised.value)
