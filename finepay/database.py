"""Database connections: pinged before use only when they may have gone stale.

SQLAlchemy's ``pool_pre_ping`` pings on every checkout, which is one more
database round trip on every request. Under load a connection comes back to
work milliseconds after it was returned and cannot have gone stale in
between; one that sat idle (a quiet night, a database restart meanwhile) is
the one worth a ping. A connection that dies while in use still gives the
driver a clean 503 (finepay.errors), and SQLAlchemy then replaces every
connection of the pool.

SQLite (the embedded default) has no row locks: ``SELECT ... FOR UPDATE`` is
silently left out, and pysqlite begins a transaction only before the first
write, so two workers could both read "unpaid" and both act on it. There a
transaction takes the database's write lock (``BEGIN IMMEDIATE``) when it
first locks or writes: from that statement on it runs alone and reads the
latest committed rows, which is what PostgreSQL's row locks give, for the
whole database. Plain reads before that point each see the latest commit
(PostgreSQL's READ COMMITTED) and never hold the lock, so a worker that has
only looked something up never makes another wait, and the in-database
sandbox gateway (its own connection, called from the same thread) is never
blocked by its caller. WAL lets reads go on while one transaction writes; a
busy timeout makes a writer wait its turn instead of failing.
"""
import time

from sqlalchemy import event, exc


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


def serialise_sqlite_transactions(engine, busy_timeout_seconds):
    """SQLite: WAL, a busy timeout, and BEGIN IMMEDIATE before a transaction's first lock or write."""

    @event.listens_for(engine, "connect")
    def configure(dbapi_connection, record):
        # SQLAlchemy's pysqlite recipe: pysqlite sends no BEGIN of its own, we send ours.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {int(busy_timeout_seconds * 1000)}")
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.close()

    @event.listens_for(engine, "checkout")
    def keep_begin_to_us(dbapi_connection, record, proxy):
        # An AUTOCOMMIT read (lookups) hands the connection back with pysqlite's BEGIN restored.
        if dbapi_connection.isolation_level is not None:
            dbapi_connection.isolation_level = None

    @event.listens_for(engine, "before_cursor_execute")
    def begin_immediate(conn, cursor, statement, parameters, context, executemany):
        if conn.connection.dbapi_connection.in_transaction or not takes_write_lock(statement, context):
            return
        if conn.get_execution_options().get("isolation_level") == "AUTOCOMMIT":
            return  # asked for explicitly: each statement commits on its own
        try:
            cursor.execute("BEGIN IMMEDIATE")
        except engine.dialect.loaded_dbapi.OperationalError as error:
            # Still locked after the busy timeout: SQLAlchemy's error, so the request gets a clean 503.
            raise exc.OperationalError("BEGIN IMMEDIATE", None, error) from error


def takes_write_lock(statement, context):
    """Whether a statement writes or locks rows (SELECT ... FOR UPDATE), so its transaction must hold the lock."""
    compiled = getattr(context, "compiled", None)
    if compiled is not None and not getattr(compiled, "isplaintext", False):
        select_for_update = getattr(compiled.statement, "_for_update_arg", None) is not None
        return bool(select_for_update or context.isinsert or context.isupdate or context.isdelete or context.isddl)
    return not statement.lstrip()[:6].upper().startswith(("SELECT", "PRAGMA"))


def init_app(app, db):
    """Install the idle ping on the app's engine, and SQLite's transaction rules when on SQLite."""
    with app.app_context():
        ping_when_idle(db.engine, app.config["DATABASE_IDLE_PING_SECONDS"])
        if db.engine.dialect.name == "sqlite":
            serialise_sqlite_transactions(db.engine, app.config["SQLITE_BUSY_TIMEOUT_SECONDS"])


def commit_keeping_objects(session):
    """Commit without expiring what the session holds: its objects keep the values this transaction wrote.

    For a transaction's last commit in a request, when the objects it locked
    and changed are what the response shows: they are exactly what was
    committed, and reading them back (one SELECT per object and collection)
    would only cost round trips. Never use it where a later read must see
    others' changes: a row lock with populate_existing re-reads anyway.
    """
    current = session() if callable(session) else session
    current.expire_on_commit = False
    try:
        current.commit()
    finally:
        current.expire_on_commit = True
