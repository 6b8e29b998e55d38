"""Database connections: pinged before use only when they may have gone stale.

SQLAlchemy's ``pool_pre_ping`` pings on every checkout, which is one more
database round trip on every request. Under load a connection comes back to
work milliseconds after it was returned and cannot have gone stale in
between; one that sat idle (a quiet night, a database restart meanwhile) is
the one worth a ping. A connection that dies while in use still gives the
driver a clean 503 (finepay.errors), and SQLAlchemy then replaces every
connection of the pool.
"""
import time

from sqlalchemy import delete, event, exc, false


def ping_when_idle(engine, idle_seconds):
    """Ping a pooled connection at checkout if it sat unused for idle_seconds or more."""

    @event.listens_for(engine, "checkin")
    def remember_checkin(dbapi_connection, record):
        if record is not None:
            record.info["idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def ping_if_stale(dbapi_connection, record, proxy):
        idle_since = record.info.get("idle_since")
        if idle_since is None or time.monotonic() - idle_since < idle_seconds:
            return
        try:
            engine.dialect.do_ping(dbapi_connection)
        except engine.dialect.loaded_dbapi.Error as error:
            if engine.dialect.is_disconnect(error, dbapi_connection, None):
                # The pool throws this connection away and checks out another (up to three times).
                raise exc.DisconnectionError() from error
            raise


def write_lock(session, table):
    """SQLite: take the database's write lock now, held until this transaction ends.

    SQLite ignores SELECT ... FOR UPDATE and lets two transactions read the
    same rows before either writes; a write that changes nothing takes its one
    write lock (waiting for the busy timeout), so that what is read next
    cannot change before this transaction commits. Other databases lock rows
    with FOR UPDATE instead: there this does nothing.
    """
    if session.get_bind().dialect.name == "sqlite":
        session.execute(delete(table).where(false()))


def init_app(app, db):
    """Install the idle ping on the app's engine."""
    with app.app_context():
        ping_when_idle(db.engine, app.config["DATABASE_IDLE_PING_SECONDS"])
