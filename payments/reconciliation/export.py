"""The reconciliation as CSV: every line of a date range, streamed from the database."""
import csv
import io
from zoneinfo import ZoneInfo

from sqlalchemy import case, func, select, text

from finepay import audit
from finepay.extensions import db
from payments.reconciliation.fetch import last_fetches
from payments.reconciliation.lines import LABELS, check_range, explained_lines, sql_text, tune_for_reports
from violations.fees import business_day_window

CHUNK_BYTES = 64 * 1024
CSV_HEADER = (
    "classification", "description", "kind", "payment_id", "gateway", "intent_id", "transaction_id",
    "channel", "terminal", "ledger_status", "ledger_at", "ledger_amount", "ledger_currency", "gateway_at",
    "gateway_amount", "gateway_currency", "gateway_fee", "gateway_net", "gateway_charges", "refunded", "note",
)


def _defused(column):
    """A spreadsheet runs a cell that starts with = + - @ as a formula: never let gateway data do that."""
    return case((func.substr(column, 1, 1).in_(("=", "+", "-", "@", "\t", "\r")), sql_text("'") + column),
                else_=column)


def csv_query(start, end, awaiting_bill=None):
    """Every line of [start, end) in CSV_HEADER's columns (times still as timestamps), oldest first.

    ``gateway_net`` is what the gateway settles for the line: a charge's
    amount less its fee, a refund's amount (negative) less its fee.
    """
    lines = explained_lines(start, end, awaiting_bill)
    label = case(*((lines.c.classification == cls, sql_text(text)) for cls, text in LABELS.items()))
    signed = case((lines.c.kind == "refund", -lines.c.gateway_amount), else_=lines.c.gateway_amount)
    return select(
        lines.c.classification, label, lines.c.kind, lines.c.payment_id, lines.c.gateway,
        _defused(lines.c.intent_id), _defused(lines.c.transaction_id), lines.c.channel, lines.c.terminal,
        lines.c.ledger_status, lines.c.ledger_at, lines.c.ledger_amount, lines.c.ledger_currency, lines.c.gateway_at,
        lines.c.gateway_amount, lines.c.gateway_currency, lines.c.gateway_fee, signed - lines.c.gateway_fee,
        lines.c.gateway_count, lines.c.refunded, lines.c.note,
    ).order_by(func.coalesce(lines.c.ledger_at, lines.c.gateway_at), lines.c.payment_id, lines.c.transaction_id)


def csv_lines(first_day, last_day, tz_name):
    """The report's lines as CSV text chunks (header first), streamed from the database.

    PostgreSQL writes the CSV itself (COPY ... TO STDOUT), so a day of 100,000
    payments streams without a Python object per line; SQLite goes row by row.
    Times are ISO 8601 in the business time zone, to the second.
    """
    check_range(first_day, last_day)
    start, end = business_day_window((first_day, last_day))
    tune_for_reports()
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerow(CSV_HEADER)
    yield buffer.getvalue()
    awaiting_bill = {name: fetch.waiting_from for name, fetch in last_fetches(start, end).items()
                     if fetch.bill_not_ready}
    query = csv_query(start, end, awaiting_bill)
    if db.session.get_bind().dialect.name == "postgresql":
        yield from _copy_csv(query, tz_name)
    else:
        yield from _python_csv(query, tz_name)


def _copy_csv(query, tz_name):
    connection = db.session.connection()
    db.session.execute(text("SELECT set_config('TimeZone', :zone, true)"), {"zone": tz_name})
    iso = 'YYYY-MM-DD"T"HH24:MI:SSTZH:TZM'
    columns = list(query.selected_columns)
    for i in (10, 13):  # ledger_at, gateway_at
        columns[i] = func.to_char(columns[i], iso)
    compiled = query.with_only_columns(*columns).compile(dialect=connection.dialect,
                                                         compile_kwargs={"render_postcompile": True})
    raw = connection.connection.driver_connection
    pending, size = [], 0
    with raw.cursor() as cursor, cursor.copy(f"COPY ({compiled.string}) TO STDOUT WITH (FORMAT csv)",
                                             compiled.params) as copy:
        for row in copy:
            pending.append(bytes(row))
            size += len(row)
            if size >= CHUNK_BYTES:
                yield b"".join(pending).decode()
                pending, size = [], 0
    yield b"".join(pending).decode()


def _python_csv(query, tz_name):
    zone = ZoneInfo(tz_name)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")  # as PostgreSQL's COPY writes it
    rows = db.session.execute(query, execution_options={"yield_per": 5000})
    for row in rows:
        row = list(row)
        for i in (10, 13):
            row[i] = row[i].astimezone(zone).isoformat(timespec="seconds") if row[i] else ""
        writer.writerow(row)
        if buffer.tell() >= CHUNK_BYTES:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()


def record_export(first_day, last_day, actor):
    """Put a CSV export on record."""
    audit.record("reconciliation.exported", "reconciliation", f"{first_day}..{last_day}", actor=actor)
    db.session.commit()
