"""Violation import (README, "Commands"): the CLI command and the importer, on SQLite and PostgreSQL."""
from datetime import UTC, date, datetime

import pytest
import sqlalchemy as sa

from finepay.audit import AuditEntry
from finepay.extensions import db
from tests.factories import CSV_HEADER, csv_row, make_violation
from violations import importer
from violations.importer import BATCH_SIZE, import_csv_file, import_rows, read_csv
from violations.models import Violation

IMPORT_ACTION = "violations.imported"


def write_csv(tmp_path, *lines, name="violations.csv", header=CSV_HEADER, encoding="utf-8"):
    """A CSV file with the import header followed by the given lines."""
    path = tmp_path / name
    path.write_bytes((header + "".join(lines)).encode(encoding))
    return path


def run_import(runner, path, *options):
    return runner.invoke(args=["violations", "import", *options, str(path)])


def table():
    """Every violation as a dict of all columns, by notice number; ends the read transaction."""
    rows = db.session.execute(sa.select(Violation.__table__).order_by(Violation.notice_number)).mappings().all()
    db.session.commit()
    return {row["notice_number"]: dict(row) for row in rows}


def count_violations():
    n = db.session.scalar(sa.select(sa.func.count()).select_from(Violation))
    db.session.commit()
    return n


def import_entries():
    entries = db.session.scalars(
        sa.select(AuditEntry).where(AuditEntry.action == IMPORT_ACTION).order_by(AuditEntry.id)
    ).all()
    db.session.commit()
    return entries


def error_lines(result):
    """The 'line N: reason' lines the command printed on stderr."""
    return [line for line in result.stderr.splitlines() if line.startswith("line ")]


def small_batches(monkeypatch, size):
    """Make every import path (row batches; PostgreSQL's COPY batches) commit every `size` rows."""
    monkeypatch.setattr(importer, "BATCH_SIZE", size)
    monkeypatch.setattr(importer, "COPY_BATCH_SIZE", size, raising=False)


def generated_row(n):
    return csv_row(notice=f"9{n:017d}", plate=f"京A{n % 100000:05d}", vin=f"{n % 1000000:06d}",
                   fine=str(100 + n % 50000), points=str(n % 13))


# --- new rows, re-imports ------------------------------------------------------------------------


def test_new_rows_are_inserted_with_normalised_plate_and_vin(runner, tmp_path):
    path = write_csv(
        tmp_path,
        csv_row(notice="150203202611000123", plate="蒙b·12345", vin="a12345", fine="20000"),
        csv_row(notice="150203202611000124", plate="京a-d8888", vin="b2c3d4", online="false", points="0"),
    )

    result = run_import(runner, path)

    assert result.exit_code == 0, result.output
    assert "2 new, 0 updated, 0 paid left unchanged, 0 rejected" in result.stdout
    rows = table()
    assert set(rows) == {"150203202611000123", "150203202611000124"}
    first, second = rows["150203202611000123"], rows["150203202611000124"]
    assert (first["plate"], first["vin_last6"]) == ("蒙B12345", "A12345")
    assert (second["plate"], second["vin_last6"]) == ("京AD8888", "B2C3D4")
    assert first["status"] == second["status"] == "unpaid"
    assert first["fine"] == 20000 and isinstance(first["fine"], int)
    assert (first["payable_online"], second["payable_online"]) == (True, False)
    assert first["decision_date"] == date(2026, 11, 5)
    violation = db.session.scalar(sa.select(Violation).filter_by(notice_number="150203202611000123"))
    assert violation.occurred_at == datetime(2026, 11, 2, 0, 15, tzinfo=UTC)  # 08:15+08:00


def test_imported_vehicle_can_be_looked_up_as_typed_by_a_driver(runner, client, tmp_path):
    run_import(runner, write_csv(tmp_path, csv_row(plate="蒙b 12345", vin="a12345")))

    response = client.post("/api/v1/lookups", json={"plate": "蒙B·12345", "vin_last6": "A12345"})

    assert response.status_code == 200
    assert [v["notice_number"] for v in response.get_json()["violations"]] == ["150203202611000123"]


def test_reimport_updates_unpaid_row_by_notice_number(runner, tmp_path):
    existing = make_violation(notice_number="150203202611000123", fine=20000, location="Old Road", points=3)
    existing_id = existing.id

    path = write_csv(tmp_path, csv_row(notice="150203202611000123", fine="30000", location="New Road", points="6"))
    result = run_import(runner, path)

    assert result.exit_code == 0, result.output
    assert "0 new, 1 updated" in result.stdout
    rows = table()
    assert len(rows) == 1
    row = rows["150203202611000123"]
    assert (row["id"], row["fine"], row["location"], row["points"], row["status"]) == (
        existing_id, 30000, "New Road", 6, "unpaid")


def test_reimport_updates_a_void_row_but_never_its_status(app, tmp_path):
    make_violation(notice_number="150203202611000123", status="void", fine=20000)

    report = import_csv_file(write_csv(tmp_path, csv_row(notice="150203202611000123", fine="25000")))

    assert report.updated == 1
    row = table()["150203202611000123"]
    assert (row["status"], row["fine"]) == ("void", 25000)


def test_importing_the_same_file_twice_gives_the_same_table(runner, tmp_path):
    path = write_csv(
        tmp_path,
        csv_row(notice="150203202611000123"),
        csv_row(notice="150203202611000124", plate="京A00001", vin="B22222", fine="5000"),
        csv_row(notice="150203202611000125", fine="bad"),  # rejected both times
    )

    first = run_import(runner, path)
    after_first = table()
    second = run_import(runner, path)
    after_second = table()

    assert first.exit_code == second.exit_code == 1
    assert "2 new, 0 updated" in first.stdout
    assert "0 new, 2 updated" in second.stdout

    def without_updated_at(rows):
        return {k: {c: v for c, v in row.items() if c != "updated_at"} for k, row in rows.items()}

    assert without_updated_at(after_second) == without_updated_at(after_first)


def test_paid_violation_is_never_changed_by_a_reimport(runner, tmp_path):
    paid_at = datetime(2026, 11, 10, 3, 0, tzinfo=UTC)
    make_violation(notice_number="150203202611000123", status="paid", fine=20000, late_fee_paid=0,
                   paid_at=paid_at, receipt_number="R20261110000001")
    before = table()

    path = write_csv(tmp_path, csv_row(notice="150203202611000123", fine="99999", description="Changed",
                                       vin="Z99999", online="false"))
    result = run_import(runner, path)

    assert result.exit_code == 0, result.output
    assert "0 new, 0 updated, 1 paid left unchanged, 0 rejected" in result.stdout
    assert table() == before  # every column, updated_at included


def test_paid_violation_is_counted_as_skipped_by_import_rows(app):
    make_violation(notice_number="150203202611000123", status="paid", fine=20000)
    rows = read_csv([CSV_HEADER, csv_row(notice="150203202611000123", fine="1")])

    report = import_rows(rows)

    assert (report.inserted, report.updated, report.skipped_paid, report.rejected) == (0, 0, 1, [])
    row = table()["150203202611000123"]
    assert (row["status"], row["fine"]) == ("paid", 20000)


def test_reimport_that_omits_rows_deletes_nothing(runner, tmp_path):
    make_violation(notice_number="150203202611000001", status="paid")
    full = write_csv(tmp_path, csv_row(notice="150203202611000123"), csv_row(notice="150203202611000124"),
                     name="full.csv")
    partial = write_csv(tmp_path, csv_row(notice="150203202611000124", fine="100"), name="partial.csv")

    assert run_import(runner, full).exit_code == 0
    result = run_import(runner, partial)

    assert result.exit_code == 0, result.output
    assert set(table()) == {"150203202611000001", "150203202611000123", "150203202611000124"}


def test_an_empty_file_with_only_the_header_changes_nothing(runner, tmp_path):
    make_violation(notice_number="150203202611000001")

    result = run_import(runner, write_csv(tmp_path))

    assert result.exit_code == 0, result.output
    assert "0 new, 0 updated, 0 paid left unchanged, 0 rejected" in result.stdout
    assert set(table()) == {"150203202611000001"}


# --- bad rows --------------------------------------------------------------------------------------

BAD_ROWS = {
    "bad_plate": (csv_row(notice="150203202611000900", plate="ÄB12345"), "plate:"),
    "vin_with_letter_o": (csv_row(notice="150203202611000900", vin="A1234O"), "vin_last6:"),
    "decimal_fine": (csv_row(notice="150203202611000900", fine="12.50"), "fine must be a whole number"),
    "negative_fine": (csv_row(notice="150203202611000900", fine="-100"), "fine must be a whole number"),
    "zero_fine": (csv_row(notice="150203202611000900", fine="0"), "fine is 0: a notice with nothing to pay"),
    "naive_occurred_at": (csv_row(notice="150203202611000900", occurred="2026-11-02T08:15:00"),
                          "occurred_at has no UTC offset"),
    "impossible_decision_date": (csv_row(notice="150203202611000900", decision="2026-02-30"), "decision_date"),
    "last_day_of_the_calendar": (csv_row(notice="150203202611000900", decision="9999-12-31"),
                                 "decision_date is in the future"),
    "garbled_occurred_at": (csv_row(notice="150203202611000900", occurred="yesterday"), "occurred_at"),
    "payable_online_maybe": (csv_row(notice="150203202611000900", online="maybe"), "payable_online"),
    "empty_description": (csv_row(notice="150203202611000900", description=""), "description is empty"),
    "control_character": (csv_row(notice="150203202611000900", description="Speeding\x07\x1b[31m"),
                          "description contains control characters"),
    "too_long_location": (csv_row(notice="150203202611000900", location="x" * 201),
                          "location is longer than 200 characters"),
    "duplicate_notice_number": (csv_row(notice="150203202611000001", fine="1"), "notice_number repeats line 2"),
    "extra_field": (csv_row(notice="150203202611000900").rstrip("\n") + ",surplus\n",
                    "more fields than the header has"),
}


@pytest.mark.parametrize("bad_row, reason", BAD_ROWS.values(), ids=BAD_ROWS.keys())
def test_bad_row_is_reported_with_its_line_and_good_rows_are_kept(runner, tmp_path, bad_row, reason):
    path = write_csv(
        tmp_path,
        csv_row(notice="150203202611000001"),   # line 2
        bad_row,                                 # line 3
        csv_row(notice="150203202611000002"),   # line 4
    )

    result = run_import(runner, path)

    assert result.exit_code == 1
    lines = error_lines(result)
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("line 3: ")
    assert reason in lines[0]
    assert "2 new, 0 updated, 0 paid left unchanged, 1 rejected" in result.stdout
    assert set(table()) == {"150203202611000001", "150203202611000002"}


def test_every_bad_row_is_reported_at_its_physical_line(runner, tmp_path):
    path = write_csv(
        tmp_path,
        csv_row(notice="150203202611000001"),                       # 2 good
        csv_row(notice="150203202611000002", plate="ÄB12345"),      # 3
        "\n",                                                        # 4 blank, skipped
        csv_row(notice="150203202611000003", vin="A1234O"),         # 5
        csv_row(notice="150203202611000004", fine="12.50"),         # 6
        csv_row(notice="150203202611000005"),                       # 7 good
        csv_row(notice="150203202611000006", fine="-5"),            # 8
        csv_row(notice="150203202611000007", occurred="2026-11-02T08:15:00"),  # 9
        csv_row(notice="150203202611000008", decision="2026-13-01"),           # 10
        csv_row(notice="150203202611000009", online="maybe"),                  # 11
        csv_row(notice="150203202611000010", description=""),                  # 12
        csv_row(notice="150203202611000011", description="a\x00b"),            # 13
        csv_row(notice="150203202611000012", location="y" * 300),              # 14
        csv_row(notice="150203202611000001"),                                  # 15 duplicate of line 2
        csv_row(notice="150203202611000013").rstrip("\n") + ",x,y\n",          # 16 extra fields
        csv_row(notice="150203202611000014"),                       # 17 good
    )

    result = run_import(runner, path)

    assert result.exit_code == 1
    reported = {int(line.split(":", 1)[0].removeprefix("line ")) for line in error_lines(result)}
    assert reported == {3, 5, 6, 8, 9, 10, 11, 12, 13, 14, 15, 16}
    assert "line 15: notice_number repeats line 2" in result.stderr
    assert "3 new, 0 updated, 0 paid left unchanged, 12 rejected" in result.stdout
    assert set(table()) == {"150203202611000001", "150203202611000005", "150203202611000014"}


def test_a_record_spanning_two_lines_is_reported_where_it_starts(runner, tmp_path):
    multiline = csv_row(notice="150203202611000002", location='"Jianshe Road\nGangtie Ave"')
    path = write_csv(
        tmp_path,
        csv_row(notice="150203202611000001"),                   # 2 good
        multiline,                                              # 3-4: newline inside a quoted field
        csv_row(notice="150203202611000003", fine="x"),         # 5
    )

    result = run_import(runner, path)

    assert result.exit_code == 1
    lines = error_lines(result)
    assert lines[0].startswith("line 3: location contains control characters"), lines
    assert lines[1].startswith("line 5: fine"), lines


def test_import_rows_reports_rejections_through_on_error(app):
    seen = []
    rows = read_csv([CSV_HEADER, csv_row(notice="150203202611000001"), csv_row(notice="150203202611000002",
                                                                                  fine="12.50")])

    report = import_rows(rows, on_error=lambda line, reason: seen.append((line, reason)))

    assert report.inserted == 1
    assert [line for line, _ in report.rejected] == [line for line, _ in seen] == [3]


# --- the file as a whole ---------------------------------------------------------------------------


def test_missing_column_exits_2_with_a_message_and_writes_nothing(runner, tmp_path):
    header = CSV_HEADER.replace(",fine,", ",")
    row = csv_row().replace(",20000,", ",")
    path = write_csv(tmp_path, row, header=header)

    result = run_import(runner, path)

    assert result.exit_code == 2
    assert "missing columns: fine" in result.stderr
    assert count_violations() == 0
    assert import_entries() == []


def test_non_utf8_file_exits_2_with_a_message_and_writes_nothing(runner, tmp_path):
    path = write_csv(tmp_path, csv_row(), csv_row(notice="150203202611000124"), encoding="gbk")

    result = run_import(runner, path)

    assert result.exit_code == 2
    assert "utf-8" in result.stderr.lower()
    assert "Traceback" not in result.output
    assert count_violations() == 0


def test_file_that_stops_being_utf8_after_several_batches_writes_nothing(runner, tmp_path, monkeypatch):
    """Exit 2 means the file was refused as a whole: no rows committed, and never rows without an audit entry."""
    small_batches(monkeypatch, 100)
    rows = [generated_row(n) for n in range(400)]  # the bad byte is beyond the decoder's first chunks
    path = tmp_path / "late-bad-byte.csv"
    path.write_bytes((CSV_HEADER + "".join(rows)).encode() + csv_row(notice="150203202611999999",
                                                                     location="建设路").encode("gbk"))

    result = run_import(runner, path)

    assert result.exit_code == 2
    assert "utf-8" in result.stderr.lower()
    assert count_violations() == 0


def test_utf8_file_with_a_bom_and_crlf_line_ends_is_imported(runner, tmp_path):
    path = tmp_path / "excel.csv"
    path.write_bytes(("\ufeff" + CSV_HEADER + csv_row()).replace("\n", "\r\n").encode("utf-8"))

    result = run_import(runner, path)

    assert result.exit_code == 0, result.output
    row = table()["150203202611000123"]
    assert (row["plate"], row["payable_online"]) == ("蒙B12345", True)


def test_dry_run_validates_and_counts_but_writes_nothing(runner, tmp_path):
    make_violation(notice_number="150203202611000001", fine=100)
    before = table()
    path = write_csv(
        tmp_path,
        csv_row(notice="150203202611000001", fine="5000"),   # would update
        csv_row(notice="150203202611000002"),                # would insert
        csv_row(notice="150203202611000003", vin="OOOOOO"),  # rejected
    )

    result = run_import(runner, path, "--dry-run")

    assert result.exit_code == 1
    assert "1 new, 1 updated, 0 paid left unchanged, 1 rejected" in result.stdout
    assert "dry run" in result.stdout
    assert [line.split(":")[0] for line in error_lines(result)] == ["line 4"]
    assert table() == before
    assert import_entries() == []


# --- audit log ------------------------------------------------------------------------------------


def test_an_import_writes_one_audit_entry_with_its_counts(runner, tmp_path):
    make_violation(notice_number="150203202611000001")
    make_violation(notice_number="150203202611000002", status="paid")
    path = write_csv(
        tmp_path,
        csv_row(notice="150203202611000001", fine="100"),   # updated
        csv_row(notice="150203202611000002", fine="100"),   # paid, skipped
        csv_row(notice="150203202611000003"),               # inserted
        csv_row(notice="150203202611000004"),               # inserted
        csv_row(notice="150203202611000005", fine="x"),     # rejected
    )

    run_import(runner, path)

    entries = import_entries()
    assert len(entries) == 1
    entry = entries[0]
    assert entry.subject_type == "import"
    assert entry.actor == "cli"
    assert entry.at is not None
    assert {k: entry.details[k] for k in ("inserted", "updated", "skipped_paid", "rejected")} == {
        "inserted": 2, "updated": 1, "skipped_paid": 1, "rejected": 1,
    }
    assert entry.details["source"] == str(path)


def test_each_import_adds_its_own_audit_entry(runner, tmp_path):
    path = write_csv(tmp_path, csv_row())

    run_import(runner, path)
    run_import(runner, path)

    details = [e.details for e in import_entries()]
    assert [(d["inserted"], d["updated"]) for d in details] == [(1, 0), (0, 1)]


@pytest.mark.parametrize("statement", [
    "UPDATE audit_log SET actor = 'mallory', details = '{}'",
    "DELETE FROM audit_log",
])
def test_audit_log_refuses_update_and_delete_in_the_database(runner, tmp_path, statement):
    run_import(runner, write_csv(tmp_path, csv_row()))
    before = [(e.id, e.actor, e.details) for e in import_entries()]
    assert len(before) == 1

    with pytest.raises(sa.exc.DBAPIError, match="append-only"):
        db.session.execute(sa.text(statement))
        db.session.flush()
    db.session.rollback()

    assert [(e.id, e.actor, e.details) for e in import_entries()] == before


# --- volume ----------------------------------------------------------------------------------------


def test_import_of_12000_rows_spans_three_batches_with_correct_counts(app, tmp_path, monkeypatch):
    total = 12_000
    assert total > 2 * BATCH_SIZE
    # PostgreSQL may load through larger COPY batches: make them 5000 too, so both databases cross two boundaries.
    small_batches(monkeypatch, BATCH_SIZE)
    # One unpaid and one paid row already known, in the second and third batch.
    make_violation(notice_number=f"9{7000:017d}", fine=1)
    make_violation(notice_number=f"9{11000:017d}", fine=1, status="paid")
    lines = [generated_row(n) for n in range(total)]
    lines.append(generated_row(3))                                            # line 12002: repeats line 5
    lines.append(csv_row(notice="150203202611000999", fine="12.50"))          # line 12003
    path = write_csv(tmp_path, *lines, name="big.csv")

    report = import_csv_file(path, actor="test")

    assert (report.inserted, report.updated, report.skipped_paid) == (total - 2, 1, 1)
    assert report.rejected == [(12002, "notice_number repeats line 5"),
                               (12003, report.rejected[1][1])]
    assert count_violations() == total
    by_number = table()
    assert by_number[f"9{7000:017d}"]["fine"] == 100 + 7000
    assert by_number[f"9{11000:017d}"]["fine"] == 1
    assert by_number[f"9{11999:017d}"]["plate"] == "京A11999"
    (entry,) = import_entries()
    assert {k: entry.details[k] for k in ("inserted", "updated", "skipped_paid", "rejected")} == {
        "inserted": total - 2, "updated": 1, "skipped_paid": 1, "rejected": 2,
    }


def test_an_import_cannot_change_the_fine_a_plan_was_approved_for(app):
    from datetime import timedelta

    from violations.fees import business_today
    from violations.services import approve_plan
    today = business_today(app.config["BUSINESS_TIMEZONE"])
    planned = make_violation(notice_number="150203202611000123", fine=20000, decision_date=today)
    approve_plan(planned.id, due_dates=[today + timedelta(days=30), today + timedelta(days=60)], actor="boss")
    rows = read_csv([CSV_HEADER, csv_row(notice="150203202611000123", fine="30000", decision=today.isoformat()),
                     csv_row(notice="150203202611000124", fine="5000")])

    report = import_rows(rows)

    assert (report.inserted, report.updated) == (1, 0)
    assert [line for line, _reason in report.rejected] == [2]
    assert "instalments" in report.rejected[0][1]
    assert table()["150203202611000123"]["fine"] == 20000
    # The same row with nothing the plan depends on changed is imported as usual.
    same = import_rows(read_csv([CSV_HEADER, csv_row(notice="150203202611000123", fine="20000",
                                                     decision=today.isoformat(), location="New Road")]))
    assert (same.updated, same.rejected) == (1, [])
