"""Violation CSV uploads in the console: a dry run first, then apply; the CLI's importer; clean refusals."""
import io
import re

import pytest
from sqlalchemy import func, select

from finepay.extensions import db
from tests.factories import CSV_HEADER, csv_row
from tests.payments.helpers import create_ok, fresh_violation, payment_row, sandbox_intents, today
from tests.staff.helpers import audit_actions, make_supervisor, make_user, sign_in_as
from violations.models import Violation

GOOD = CSV_HEADER + csv_row(notice="150203202611000201") + csv_row(notice="150203202611000202", fine="5000")
WITH_BAD_ROWS = (CSV_HEADER + csv_row(notice="150203202611000301") + csv_row(notice="150203202611000302", fine="-1")
                 + csv_row(notice="150203202611000303", occurred="yesterday"))


@pytest.fixture
def staff(client):
    return sign_in_as(client, make_user("importer"))


def upload(client, content, filename="violations.csv", content_type="text/csv"):
    data = content.encode() if isinstance(content, str) else content
    return client.post("/staff/imports", data={"file": (io.BytesIO(data), filename, content_type)},
                       content_type="multipart/form-data")


def token_of(page):
    return re.search(r'/staff/imports/([0-9a-f]{32})/apply', page).group(1)


def violations():
    return db.session.execute(select(func.count()).select_from(Violation)).scalar_one()


def test_a_dry_run_shows_each_bad_row_and_writes_nothing(staff):
    response = upload(staff, WITH_BAD_ROWS)

    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert 'data-dry-run="yes"' in page and "nothing written yet" in page
    assert '<dd id="count-inserted">1</dd>' in page and '<dd id="count-rejected">2</dd>' in page
    assert "<td class=\"num\">3</td><td>fine must be a whole number" in page
    assert "<td class=\"num\">4</td><td>occurred_at is not an ISO 8601 date-time" in page
    assert violations() == 0
    assert "violations.imported" not in audit_actions()


def test_apply_writes_the_good_rows_with_the_clis_importer(staff):
    token = token_of(upload(staff, WITH_BAD_ROWS).get_data(as_text=True))

    response = staff.post(f"/staff/imports/{token}/apply")

    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert "Imported violations.csv" in page and '<dd id="count-inserted">1</dd>' in page
    assert violations() == 1
    entry = db.session.execute(select(Violation)).scalar_one()
    assert entry.notice_number == "150203202611000301"
    (imported,) = [a for a in audit_actions() if a == "violations.imported"]
    assert imported


def test_applying_twice_imports_once(staff):
    token = token_of(upload(staff, GOOD).get_data(as_text=True))

    first = staff.post(f"/staff/imports/{token}/apply")
    second = staff.post(f"/staff/imports/{token}/apply")

    assert first.status_code == 200
    assert second.status_code == 404
    assert violations() == 2
    assert audit_actions().count("violations.imported") == 1


def test_someone_elses_upload_cannot_be_applied(staff, app):
    token = token_of(upload(staff, GOOD).get_data(as_text=True))
    other = sign_in_as(app.test_client(), make_supervisor("someone"))

    assert other.post(f"/staff/imports/{token}/apply").status_code == 404
    assert violations() == 0


def test_reimporting_never_changes_a_paid_violation(staff):
    token = token_of(upload(staff, GOOD).get_data(as_text=True))
    staff.post(f"/staff/imports/{token}/apply")
    paid = db.session.execute(select(Violation).where(Violation.notice_number == "150203202611000201")).scalar_one()
    paid.status, paid.receipt_number = "paid", "FP-AAAA-BBBB-CCCC-DDDD"
    db.session.commit()

    page = upload(staff, CSV_HEADER + csv_row(notice="150203202611000201", fine="99999")).get_data(as_text=True)

    assert '<dd id="count-paid">1</dd>' in page


@pytest.mark.parametrize("content, filename, message", [
    (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)), "photo.png", "Only .csv files"),
    (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)), "photo.csv", "not UTF-8"),
    ("name,age\nbob,3\n", "people.csv", "missing columns"),
    ("", "empty.csv", "the file is empty"),
    (CSV_HEADER.encode("utf-16"), "wide.csv", "not UTF-8"),
])
def test_a_file_that_is_not_a_violations_csv_is_refused_cleanly(staff, content, filename, message):
    response = upload(staff, content, filename=filename)

    assert response.status_code == 422
    page = response.get_data(as_text=True)
    assert 'id="file-error"' in page and message in page
    assert violations() == 0


def test_no_file_is_explained_beside_the_field(staff):
    response = staff.post("/staff/imports", data={}, content_type="multipart/form-data")

    assert response.status_code == 422
    assert "Choose a CSV file." in response.get_data(as_text=True)


def test_a_50_mb_file_is_refused_before_it_is_read(staff):
    big = b"x" * (50 * 1024 * 1024)

    response = upload(staff, big)

    assert response.status_code == 413
    page = response.get_data(as_text=True)
    assert 'id="file-error"' in page and "larger than 20 MB" in page
    assert violations() == 0


@pytest.mark.parametrize("app_config", [{"STAFF_IMPORT_MAX_BYTES": 2048}])
def test_the_upload_limit_is_a_setting_and_other_forms_keep_the_small_one(staff):
    assert upload(staff, GOOD + csv_row(notice="150203202611000203") * 30).status_code == 413
    assert upload(staff, GOOD).status_code == 200
    # Everywhere else the app-wide MAX_CONTENT_LENGTH (1 MB) still applies.
    assert staff.post("/staff/reconciliation/fetch", data={"start": "x" * (2 * 1024 * 1024)}).status_code == 413


def test_a_bom_from_a_spreadsheet_is_fine(staff):
    response = upload(staff, "\ufeff" + GOOD)

    assert response.status_code == 200
    assert '<dd id="count-inserted">2</dd>' in response.get_data(as_text=True)


def test_an_upload_that_changes_a_quoted_violation_says_which_open_payment_it_cancels(staff):
    violation = fresh_violation(notice_number="150203202611000401", fine=40000)  # ¥400, quoted below
    payment = create_ok(staff, [violation.id])
    changed = CSV_HEADER + csv_row(notice=violation.notice_number, fine="50000", decision=today().isoformat())

    dry_run = upload(staff, changed).get_data(as_text=True)
    assert "Open payments that will be cancelled" in dry_run and payment["id"] in dry_run
    assert payment_row(payment["id"]).status == "created"

    applied = staff.post(f"/staff/imports/{token_of(dry_run)}/apply").get_data(as_text=True)

    assert '<dd id="count-canceled-payments">1</dd>' in applied
    assert "Open payments that were cancelled" in applied and payment["id"] in applied
    assert payment_row(payment["id"]).status == "canceled"
    assert sandbox_intents(payment_id=payment["id"])[0].status == "canceled"
    assert db.session.get(Violation, violation.id).fine == 50000

