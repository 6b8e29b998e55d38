"""Import violations from the authority's CSV export: validate every row, keep the good ones."""
import codecs
import csv
import re
import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from flask import current_app
from sqlalchemy import bindparam, func, insert, select, text, update

from finepay import audit
from finepay.dbtypes import utcnow
from finepay.extensions import db
from violations.models import PAID, UNPAID, InstalmentPlan, Violation
from violations.plates import (
    InvalidIdentifier,
    normalize_local_payment_code,
    normalize_notice_number,
    normalize_payment_code,
    normalize_plate,
    normalize_vin_last6,
)

COLUMNS = (
    "notice_number", "plate", "vin_last6", "occurred_at", "location", "offense_code",
    "description", "fine", "points", "decision_date", "payable_online",
)
# Columns a file may have or not. The finance bureau's payment code: a row that gives one sets it; an empty
# cell (or a file without the column) keeps the one on record, so an older export never wipes codes.
OPTIONAL = ("payment_code",)
STORED = COLUMNS + OPTIONAL
# Fields an import may change on an unpaid or void violation (status never changes).
UPDATABLE = tuple(c for c in COLUMNS if c != "notice_number")
# What an open payment's quote rests on: who may pay, how much, and whether online at all.
QUOTED = ("plate", "vin_last6", "fine", "decision_date", "payable_online")
BATCH_SIZE = 5000
COPY_BATCH_SIZE = 50000
MAX_FINE = 10**12
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_OFFENSE = re.compile(r"[A-Za-z0-9]{1,16}")
_BOOLEANS = {"true": True, "1": True, "yes": True, "y": True,
             "false": False, "0": False, "no": False, "n": False}


class RowError(ValueError):
    """A CSV row cannot be imported; the message says why."""


class ImportFileError(ValueError):
    """The file as a whole cannot be read (encoding, header)."""


@dataclass
class ImportReport:
    """What an import did, or would do on a dry run."""

    inserted: int = 0
    updated: int = 0
    skipped_paid: int = 0
    rejected: list = field(default_factory=list)  # (line number, reason)
    # (line number, payment id): open payments cancelled (on a dry run: to be cancelled)
    # because the row changes a violation they hold.
    canceled_payments: list = field(default_factory=list)
    dry_run: bool = False

    @property
    def accepted(self):
        """Rows that passed validation."""
        return self.inserted + self.updated + self.skipped_paid

    @property
    def canceled_payment_ids(self):
        """The open payments cancelled (on a dry run: to be cancelled), each once."""
        return sorted({payment_id for _line, payment_id in self.canceled_payments})


def _text(row, name, max_len):
    value = (row.get(name) or "").strip()
    if not value:
        raise RowError(f"{name} is empty")
    if len(value) > max_len:
        raise RowError(f"{name} is longer than {max_len} characters")
    if _CONTROL.search(value):
        raise RowError(f"{name} contains control characters")
    return value


def _integer(row, name, low, high):
    raw = (row.get(name) or "").strip()
    if not raw.isascii() or not raw.isdigit():
        raise RowError(f"{name} must be a whole number in minor units, got {raw[:20]!r}")
    value = int(raw)
    if not low <= value <= high:
        raise RowError(f"{name} must be between {low} and {high}")
    return value


def _fine(row):
    fine = _integer(row, "fine", 0, MAX_FINE)
    if fine == 0:
        # violations.services.why_not_payable: a fine of 0 is never payable; such a notice is not a fine.
        raise RowError("fine is 0: a notice with nothing to pay is not imported")
    return fine


def _identifier(row, name, normalize):
    try:
        return normalize(row.get(name) or "")
    except InvalidIdentifier as exc:
        raise RowError(f"{name}: {exc}") from None


def _payment_code(row):
    raw = (row.get("payment_code") or "").strip()
    if not raw:
        return None
    try:
        return normalize_local_payment_code(raw)
    except InvalidIdentifier as exc:
        if exc.code != "other_region":
            raise RowError(f"payment_code: {exc}") from None
        regions = ", ".join(current_app.config["PAYMENT_CODE_REGIONS"]) or "none"
        raise RowError(f"payment_code starts with region {normalize_payment_code(raw)[:6]}, not one this service takes "
                       f"(PAYMENT_CODE_REGIONS: {regions})") from None


def parse_row(row, now=None):
    """Validate one CSV row (a dict of strings) and return the column values to store."""
    now = now or utcnow()
    raw_time = (row.get("occurred_at") or "").strip()
    try:
        occurred_at = datetime.fromisoformat(raw_time)
    except ValueError:
        raise RowError(f"occurred_at is not an ISO 8601 date-time: {raw_time[:40]!r}") from None
    if occurred_at.tzinfo is None:
        raise RowError("occurred_at has no UTC offset (e.g. +08:00)")
    if occurred_at > now + timedelta(days=1):
        raise RowError("occurred_at is in the future")
    raw_date = (row.get("decision_date") or "").strip()
    try:
        if not _ISO_DATE.fullmatch(raw_date):
            raise ValueError(raw_date)
        decision_date = date.fromisoformat(raw_date)
    except ValueError:
        raise RowError(f"decision_date is not a YYYY-MM-DD date: {raw_date[:20]!r}") from None
    if decision_date < occurred_at.date() - timedelta(days=1):
        raise RowError("decision_date is before the violation occurred")
    if decision_date > now.date() + timedelta(days=1):
        # A decision not yet taken cannot be imported; 9999-12-31 would also overflow the due-date arithmetic.
        raise RowError("decision_date is in the future")
    online = (row.get("payable_online") or "").strip().lower()
    if online not in _BOOLEANS:
        raise RowError("payable_online must be true or false")
    offense_code = _text(row, "offense_code", 16)
    if not _OFFENSE.fullmatch(offense_code):
        raise RowError("offense_code must be letters and digits")
    return {
        "notice_number": _identifier(row, "notice_number", normalize_notice_number),
        "plate": _identifier(row, "plate", normalize_plate),
        "vin_last6": _identifier(row, "vin_last6", normalize_vin_last6),
        "occurred_at": occurred_at.astimezone(UTC),
        "location": _text(row, "location", 200),
        "offense_code": offense_code,
        "description": _text(row, "description", 500),
        "fine": _fine(row),
        "points": _integer(row, "points", 0, 100),
        "decision_date": decision_date,
        "payable_online": _BOOLEANS[online],
        "payment_code": _payment_code(row),
    }


def read_csv(lines):
    """Yield (line number where the record starts, row dict or RowError), checking the header first."""
    reader = csv.reader(lines)
    try:
        header = next(reader, None)
    except (UnicodeDecodeError, csv.Error) as exc:
        raise ImportFileError(f"cannot read the header: {exc}") from None
    if not header:
        raise ImportFileError("the file is empty")
    header = [h.strip() for h in header]
    missing = [c for c in COLUMNS if c not in header]
    if missing:
        raise ImportFileError("missing columns: " + ", ".join(missing))
    previous_end = reader.line_num
    while True:
        try:
            fields = next(reader)
        except StopIteration:
            return
        except UnicodeDecodeError:
            raise ImportFileError(f"line {reader.line_num + 1}: the file is not UTF-8") from None
        except csv.Error as exc:
            # A malformed record (e.g. a field over the size limit): report it, keep going.
            yield previous_end + 1, RowError(f"unreadable CSV record: {exc}")
            previous_end = reader.line_num
            continue
        start, previous_end = previous_end + 1, reader.line_num
        if not fields:
            continue  # a blank line
        if len(fields) > len(header):
            yield start, RowError("more fields than the header has")
        else:
            yield start, dict(zip(header, fields, strict=False))


# Whatever holds violations in open payments (the payments area, which sits above this one and registers
# itself): open_holds(), withdraw_payment(payment_id, *, reason, actor), and the outcomes WITHDRAWN,
# ALREADY_CLOSED, CAPTURED and BEING_PROCESSED that withdraw_payment answers with.
HOLD_KEEPER = "finepay.violations.hold_keeper"


def register_hold_keeper(app, keeper):
    """Let imports cancel the open payments whose quote a changed row would break (see _free_held)."""
    app.extensions[HOLD_KEEPER] = keeper


def _keep_plans(batch, reject):
    """Refuse rows that would change what an instalment plan was approved for (its fine, vehicle, payability).

    The plan split the fine as it was when approved; a changed fine needs a decision, not an import.
    Plans are few: they are read whole, not looked up per row.
    """
    table, plans = Violation.__table__, InstalmentPlan.__table__
    planned = {row.notice_number: row for row in db.session.execute(
        select(table.c.notice_number, *(table.c[c] for c in QUOTED))
        .select_from(plans.join(table, table.c.id == plans.c.violation_id)).where(table.c.status != PAID)
    )}
    if not planned:
        return batch
    keep = []
    for line, values in batch:
        current = planned.get(values["notice_number"])
        if current is not None and any(getattr(current, c) != values[c] for c in QUOTED):
            reject(line, "this violation is being paid in instalments: its fine, vehicle, decision date and "
                         "payability cannot change by import")
            continue
        keep.append((line, values))
    return keep


def _free_held(batch, report, reject):
    """Rows that change what an open payment quotes: cancel that payment first, or refuse the row.

    Returns the rows' values to write. Cancelling goes through the payments
    service (the gateway first, with no transaction open); a payment that is
    being confirmed, was already captured or could not be cancelled at the
    gateway keeps its violation, and the row is refused with the reason. A
    payment started after this check, before the batch is written, is caught
    at capture: it never settles a price that no longer holds.
    """
    batch = _keep_plans(batch, reject)
    payments = current_app.extensions[HOLD_KEEPER]
    holds = payments.open_holds()
    if not holds:
        return [values for _line, values in batch]
    table = Violation.__table__
    held = {row.notice_number: row for row in db.session.execute(
        select(table.c.id, table.c.notice_number, *(table.c[c] for c in QUOTED)).where(table.c.id.in_(holds))
    )}
    db.session.rollback()  # only reads so far: end them before the gateway is called
    outcomes = {}
    keep = []
    for line, values in batch:
        current = held.get(values["notice_number"])
        if current is None or all(getattr(current, c) == values[c] for c in QUOTED):
            keep.append(values)
            continue
        payment_id = holds[current.id]
        if payment_id not in outcomes:
            outcomes[payment_id] = payments.WITHDRAWN if report.dry_run else payments.withdraw_payment(
                payment_id, reason="an import changed a violation it quotes", actor="import")
        outcome = outcomes[payment_id]
        if outcome in (payments.WITHDRAWN, payments.ALREADY_CLOSED):
            report.canceled_payments.append((line, payment_id))
            keep.append(values)
        elif outcome == payments.CAPTURED:
            reject(line, f"payment {payment_id} for this violation was already captured at the old amount: "
                         "the violation is paid and was left unchanged")
        elif outcome == payments.BEING_PROCESSED:
            reject(line, f"payment {payment_id} for this violation is being processed: "
                         "import this row again once it has finished")
        else:
            reject(line, f"payment {payment_id} for this violation could not be cancelled at the gateway: "
                         "import this row again later")
    return keep


def _drop_taken_codes(batch, reject):
    """Refuse the rows whose payment code is on record for another notice (each code names one violation)."""
    codes = [values["payment_code"] for _line, values in batch if values["payment_code"]]
    if not codes:
        return batch
    table = Violation.__table__
    owners = dict(db.session.execute(
        select(table.c.payment_code, table.c.notice_number).where(table.c.payment_code.in_(codes))
    ).all())
    keep = []
    for line, values in batch:
        owner = owners.get(values["payment_code"])
        if owner is not None and owner != values["notice_number"]:
            reject(line, f"payment_code is already that of notice {owner}")
        else:
            keep.append((line, values))
    return keep


def _apply_batch(batch, report, reject):
    batch = _free_held(_drop_taken_codes(batch, reject), report, reject)
    table = Violation.__table__
    numbers = [r["notice_number"] for r in batch]
    existing = dict(db.session.execute(
        select(table.c.notice_number, table.c.status).where(table.c.notice_number.in_(numbers))
    ).all())
    now = utcnow()
    inserts, updates = [], []
    for values in batch:
        status = existing.get(values["notice_number"])
        if status is None:
            inserts.append({**values, "status": UNPAID, "created_at": now, "updated_at": now})
        elif status == PAID:
            report.skipped_paid += 1
        else:
            updates.append({**{"b_" + k: v for k, v in values.items()}, "b_now": now})
    if report.dry_run:
        report.inserted += len(inserts)
        report.updated += len(updates)
        return
    if inserts:
        db.session.execute(insert(table), inserts)
        report.inserted += len(inserts)
    if updates:
        stmt = (
            update(table)
            # A payment may have settled the row since the select: never touch it then.
            .where(table.c.notice_number == bindparam("b_notice_number"), table.c.status != PAID)
            .values({c: bindparam("b_" + c) for c in UPDATABLE} | {
                "payment_code": func.coalesce(bindparam("b_payment_code"), table.c.payment_code),
                "updated_at": bindparam("b_now"),
            })
        )
        db.session.execute(stmt.execution_options(synchronize_session=False), updates)
        report.updated += len(updates)
    db.session.commit()


def _copy_batch(batch, report, reject):
    """PostgreSQL: COPY the batch into a temporary table, then one upsert statement.

    Twenty times faster than row inserts at a million rows; a paid row is
    never touched (the WHERE of the ON CONFLICT clause), and RETURNING tells
    inserted rows (xmax = 0) from updated ones.
    """
    batch = _free_held(_drop_taken_codes(batch, reject), report, reject)
    if not batch:
        return
    cols = ", ".join(STORED)
    db.session.execute(text(
        f"CREATE TEMP TABLE import_batch ON COMMIT DROP AS SELECT {cols} FROM violations WITH NO DATA"
    ))
    raw = db.session.connection().connection.driver_connection
    with raw.cursor() as cursor, cursor.copy(f"COPY import_batch ({cols}) FROM STDIN") as copy:
        for values in batch:
            copy.write_row([values[c] for c in STORED])
    assignments = ", ".join(f"{c} = EXCLUDED.{c}" for c in UPDATABLE)
    assignments += ", payment_code = COALESCE(EXCLUDED.payment_code, violations.payment_code)"
    inserted, updated = db.session.execute(text(f"""
        WITH upserted AS (
            INSERT INTO violations ({cols}, status, created_at, updated_at)
            SELECT {cols}, :unpaid, :now, :now FROM import_batch
            ON CONFLICT (notice_number) DO UPDATE SET {assignments}, updated_at = EXCLUDED.updated_at
            WHERE violations.status <> :paid
            RETURNING (xmax = 0) AS inserted
        )
        SELECT count(*) FILTER (WHERE inserted), count(*) FILTER (WHERE NOT inserted) FROM upserted
    """), {"unpaid": UNPAID, "paid": PAID, "now": utcnow()}).one()
    db.session.commit()
    report.inserted += inserted
    report.updated += updated
    report.skipped_paid += len(batch) - inserted - updated


def import_rows(rows, *, source="upload", actor="system", dry_run=False, on_error=None):
    """Import (line number, row) pairs in batches; return an ImportReport.

    Rows are validated one by one; a bad row is reported and skipped, the
    good rows are kept. A notice number or payment code repeated in the same
    file is rejected after its first occurrence, and so is a payment code on
    record for another notice.
    """
    report = ImportReport(dry_run=dry_run)
    use_copy = not dry_run and db.engine.dialect.name == "postgresql"
    apply, batch_size = (_copy_batch, COPY_BATCH_SIZE) if use_copy else (_apply_batch, BATCH_SIZE)

    def reject(line, reason):
        report.rejected.append((line, reason))
        if on_error:
            on_error(line, reason)

    def record():
        db.session.rollback()
        audit.record(
            "violations.imported", "import", uuid.uuid4().hex, actor=actor, source=source,
            inserted=report.inserted, updated=report.updated,
            skipped_paid=report.skipped_paid, rejected=len(report.rejected),
            canceled_payments=report.canceled_payment_ids,
        )
        db.session.commit()

    try:
        _import(rows, report, lambda batch: apply(batch, report, reject), batch_size, reject)
    except ImportFileError:
        # The file broke off half way: the rows already written are on record.
        if not dry_run and (report.inserted or report.updated):
            record()
        raise
    if not dry_run:
        record()
    return report


def _import(rows, report, apply, batch_size, reject):
    """Validate rows one by one and apply the good ones in batches."""
    seen, seen_codes = {}, {}
    batch = []
    now = utcnow()
    for line, row in rows:
        if isinstance(row, RowError):
            reject(line, str(row))
            continue
        try:
            values = parse_row(row, now)
        except RowError as exc:
            reject(line, str(exc))
            continue
        first = seen.setdefault(values["notice_number"], line)
        if first != line:
            reject(line, f"notice_number repeats line {first}")
            continue
        if values["payment_code"]:
            first = seen_codes.setdefault(values["payment_code"], line)
            if first != line:
                reject(line, f"payment_code repeats line {first}")
                continue
        batch.append((line, values))
        if len(batch) >= batch_size:
            apply(batch)
            batch = []
    if batch:
        apply(batch)
    return report


def check_utf8(path):
    """Refuse a file that is not UTF-8 before anything is written (a quick pass over the bytes)."""
    line = 1
    decoder = codecs.getincrementaldecoder("utf-8")()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            try:
                decoder.decode(chunk)
            except UnicodeDecodeError as exc:
                line += chunk.count(b"\n", 0, exc.start)
                raise ImportFileError(f"line {line}: the file is not UTF-8") from None
            line += chunk.count(b"\n")
        try:
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            raise ImportFileError(f"line {line}: the file ends in the middle of a character") from None


def import_csv_file(path, **kwargs):
    """Import a UTF-8 CSV file by path (a BOM from spreadsheet programs is accepted)."""
    check_utf8(path)
    with open(path, encoding="utf-8-sig", newline="") as f:
        return import_rows(read_csv(f), source=str(path), **kwargs)
