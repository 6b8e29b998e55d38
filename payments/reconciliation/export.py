"""The reconciliation as CSV: every line of a date range, streamed from the database.

Made for Excel and WPS as finance opens them by double-click: UTF-8 with a
byte order mark (without it both read the Chinese as GBK mojibake), CRLF line
endings, headings in the console's language, amounts in yuan with two
decimals, and on each line what finance looks a line up by (plate, notice
numbers, receipt number, the gateway's transaction number).
"""
import csv
import io
from zoneinfo import ZoneInfo

from flask_babel import gettext as _
from sqlalchemy import String, case, cast, func, select, text
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.expression import FunctionElement

from finepay import audit
from finepay.extensions import db
from finepay.i18n import N_
from payments.models import PaymentItem
from payments.reconciliation.fetch import last_fetches
from payments.reconciliation.lines import LABELS, check_range, explained_lines, sql_text, tune_for_reports
from violations.fees import business_day_window
from violations.models import Instalment, Violation

CHUNK_BYTES = 64 * 1024
BOM = "\ufeff"
NEWLINE = "\r\n"
# The columns in order, by the name code and tests know each by, with the heading finance reads (translated).
COLUMNS = (
    ("classification", N_("Result code")), ("description", N_("Result")), ("kind", N_("Kind")),
    ("payment_id", N_("Payment ID")), ("receipt_number", N_("Receipt number")), ("plate", N_("Plate")),
    ("notice_numbers", N_("Notice numbers")), ("gateway", N_("Gateway")), ("intent_id", N_("Gateway order")),
    ("transaction_id", N_("Gateway transaction number")), ("channel", N_("Channel")), ("terminal", N_("Terminal")),
    ("ledger_status", N_("Ledger status")), ("ledger_at", N_("Ledger time")),
    ("ledger_amount", N_("Ledger amount")), ("ledger_currency", N_("Ledger currency")),
    ("gateway_at", N_("Gateway time")), ("gateway_amount", N_("Gateway amount")),
    ("gateway_currency", N_("Gateway currency")), ("gateway_fee", N_("Gateway fee")),
    ("gateway_net", N_("Gateway net")), ("gateway_charges", N_("Gateway charges")),
    ("refunded", N_("Refunded")), ("note", N_("Explanation")),
)
CSV_HEADER = tuple(code for code, _heading in COLUMNS)
TIMES = (CSV_HEADER.index("ledger_at"), CSV_HEADER.index("gateway_at"))
PI = PaymentItem.__table__
V = Violation.__table__
INST = Instalment.__table__


class yuan(FunctionElement):
    """An amount in minor units as text in major units with two decimals (20000 -> 200.00), exactly, in SQL."""

    type = String()
    name = "yuan"
    inherit_cache = True


@compiles(yuan, "postgresql")
def _yuan_postgresql(element, compiler, **kw):
    (amount,) = (compiler.process(c, **kw) for c in element.clauses)
    return f"CAST(CAST({amount} AS NUMERIC) / 100 AS NUMERIC(20, 2))"


@compiles(yuan, "sqlite")
def _yuan_sqlite(element, compiler, **kw):
    # Integer arithmetic, no floats: the sign, the whole yuan, then the fen padded to two digits.
    (amount,) = (compiler.process(c, **kw) for c in element.clauses)
    return (f"CASE WHEN {amount} IS NULL THEN NULL ELSE (CASE WHEN {amount} < 0 THEN '-' ELSE '' END) "
            f"|| (abs({amount}) / 100) || '.' || substr('0' || (abs({amount}) % 100), -2) END")


def headings():
    """The column headings in the request's language."""
    return [_(heading) for _code, heading in COLUMNS]


def _defused(column):
    """A spreadsheet runs a cell that starts with = + - @ as a formula: never let gateway data do that."""
    return case((func.substr(column, 1, 1).in_(("=", "+", "-", "@", "\t", "\r")), sql_text("'") + column),
                else_=column)


def _kept_as_text(column):
    """Excel and WPS show a long number as 1.50203E+17, losing digits: a tab before an identifier that starts
    with a digit (WeChat's and Alipay's transaction numbers; notice numbers always have one) keeps it as text."""
    return case((func.substr(column, 1, 1).between("0", "9"), sql_text("\t") + column), else_=column)


def instalment_label():
    """SQL for " 第2期/共3期" (in the console's language) after an instalment line's notice number; "" otherwise.

    The translated sentence is cut where its number and count go, so that any word order a language needs is kept.
    """
    marks = {"number": 987654321, "count": 123456789}
    words = _("Instalment %(number)d of %(count)d", **marks)
    columns = {"number": INST.c.number, "count": instalment_count()}
    label, at = sql_text(" "), 0
    for index, name in sorted((words.index(str(value)), name) for name, value in marks.items()):
        label = label + sql_text(words[at:index]) + cast(columns[name], String)
        at = index + len(str(marks[name]))
    label = label + sql_text(words[at:])
    return case((PI.c.instalment_id.is_not(None), label), else_=sql_text(""))


def instalment_count():
    """SQL for how many instalments the plan of the instalment joined as INST has."""
    others = INST.alias("plan_instalments")
    return select(func.count()).where(others.c.plan_id == INST.c.plan_id).scalar_subquery()


def csv_query(start, end, awaiting_bill=None):
    """Every line of [start, end) in CSV_HEADER's columns (times still as timestamps), oldest first.

    ``gateway_net`` is what the gateway settles for the line: a charge's
    amount less its fee, a refund's amount (negative) less its fee.
    A payment's notice numbers are those of the violations it covered,
    separated by spaces.
    """
    # The lines are read once (a CTE used twice is materialised), the notice numbers for all of them in one
    # grouped join: a lookup per line (a correlated subquery) took longer than the reconciliation itself.
    lines = explained_lines(start, end, awaiting_bill, as_cte=True)
    label = case(*((lines.c.classification == cls, sql_text(_(text))) for cls, text in LABELS.items()))
    signed = case((lines.c.kind == "refund", -lines.c.gateway_amount), else_=lines.c.gateway_amount)
    notices = (select(PI.c.payment_id, func.aggregate_strings(V.c.notice_number + instalment_label(), " ")
                      .label("numbers"))
               .select_from(PI.join(V, V.c.id == PI.c.violation_id).outerjoin(INST, INST.c.id == PI.c.instalment_id))
               .where(PI.c.payment_id.in_(select(lines.c.payment_id).where(lines.c.payment_id.is_not(None))))
               .group_by(PI.c.payment_id).subquery("notices"))
    return select(
        lines.c.classification, label, lines.c.kind, lines.c.payment_id, lines.c.receipt_number, lines.c.plate,
        sql_text("\t") + notices.c.numbers, lines.c.gateway,  # a line without a payment has none: NULL, empty
        _kept_as_text(_defused(lines.c.intent_id)), _kept_as_text(_defused(lines.c.transaction_id)),
        lines.c.channel, lines.c.terminal,
        lines.c.ledger_status, lines.c.ledger_at, yuan(lines.c.ledger_amount), lines.c.ledger_currency,
        lines.c.gateway_at, yuan(lines.c.gateway_amount), lines.c.gateway_currency, yuan(lines.c.gateway_fee),
        yuan(signed - lines.c.gateway_fee), lines.c.gateway_count, yuan(lines.c.refunded), lines.c.note,
    ).select_from(lines.outerjoin(notices, notices.c.payment_id == lines.c.payment_id)) \
        .order_by(func.coalesce(lines.c.ledger_at, lines.c.gateway_at), lines.c.payment_id, lines.c.transaction_id)


def csv_lines(first_day, last_day, tz_name):
    """The report's lines as CSV text chunks (header first), streamed from the database.

    PostgreSQL writes the CSV itself (COPY ... TO STDOUT), so a day of 100,000
    payments streams without a Python object per line; SQLite goes row by row.
    Times are ISO 8601 in the business time zone, to the second. The first
    chunk starts with the byte order mark; every line ends in CRLF.
    """
    check_range(first_day, last_day)
    start, end = business_day_window((first_day, last_day))
    tune_for_reports()
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator=NEWLINE).writerow(headings())
    yield BOM + buffer.getvalue()
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
    for i in TIMES:
        columns[i] = func.to_char(columns[i], iso)
    compiled = query.with_only_columns(*columns).compile(dialect=connection.dialect,
                                                         compile_kwargs={"render_postcompile": True})
    raw = connection.connection.driver_connection
    pending, size = [], 0
    with raw.cursor() as cursor, cursor.copy(f"COPY ({compiled.string}) TO STDOUT WITH (FORMAT csv)",
                                             compiled.params) as copy:
        for row in copy:  # a row at a time, ending in LF; the explanations hold no line breaks
            pending.append(bytes(row).replace(b"\n", b"\r\n"))
            size += len(row)
            if size >= CHUNK_BYTES:
                yield b"".join(pending).decode()
                pending, size = [], 0
    yield b"".join(pending).decode()


def _python_csv(query, tz_name):
    zone = ZoneInfo(tz_name)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator=NEWLINE)  # quoting as PostgreSQL's COPY does
    rows = db.session.execute(query, execution_options={"yield_per": 5000})
    for row in rows:
        row = list(row)
        for i in TIMES:
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
