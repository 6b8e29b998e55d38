"""The daily reconciliation: every kind of difference seeded through the sandbox gateway, on both databases."""
import csv
import io
import re
import uuid
from datetime import timedelta

import pytest
from flask_babel import force_locale
from sqlalchemy import func, select, update

from finepay.dbtypes import utcnow
from finepay.extensions import db
from finepay.formatting import format_money
from kiosk.services import enrol_terminal
from payments import services as payment_services
from payments.gateways import GatewayError, gateway_named
from payments.gateways.sandbox import SandboxIntent
from payments.models import GatewayRecord
from payments.reconciliation.export import BOM, COLUMNS, CSV_HEADER, csv_lines
from payments.reconciliation.fetch import fetch_gateway_records
from payments.reconciliation.lines import DUPLICATE, GATEWAY_ONLY, LEDGER_ONLY, MATCHED, MISMATCH
from payments.reconciliation.report import reconcile
from staff.charts import axis_top
from tests.conftest import in_app_language, in_both_languages, translated
from tests.payments.helpers import (
    PLATE,
    VIN,
    cancel_directly,
    capture_at_sandbox,
    create_ok,
    overdue_violation,
    payment_row,
    set_payment,
    today,
)
from tests.staff.helpers import csv_rows, fen, last_audit, make_supervisor, paid_payment, sign_in_as
from violations.fees import business_day_window


def window():
    """Yesterday and today: wide enough that a test run across midnight still finds its payments."""
    return today() - timedelta(days=1), today()


def fetch():
    """Fetch the window from the (one) configured gateway; the number of transactions read."""
    start, end = business_day_window(window())
    (fetched,) = fetch_gateway_records(start, end, actor="test")
    return fetched.transactions


def start(violation):
    return payment_services.start_payment(plate=PLATE, vin_last6=VIN, violation_ids=[violation.id],
                                          idempotency_key=f"test-{uuid.uuid4().hex}")


def sandbox_set(intent_id, **values):
    db.session.execute(update(SandboxIntent).where(SandboxIntent.id == intent_id).values(**values))
    db.session.commit()


def double_capture(client):
    """Two payments for one violation, both captured and applied: the second is the duplicate."""
    violation = overdue_violation(fine=10000)
    first = create_ok(client, [violation.id])
    cancel_directly(first["id"])
    second = create_ok(client, [violation.id])
    intents = {p["id"]: capture_at_sandbox(payment_row(p["id"]).gateway_intent_id) for p in (first, second)}
    payment_services.apply_intent(first["id"], intents[first["id"]])
    payment_services.apply_intent(second["id"], intents[second["id"]])
    return first["id"], second["id"]


def refuse_refund(*args, **kwargs):
    raise GatewayError("down", code="gateway_unavailable", retryable=True)


@pytest.fixture
def seeded(app, client, monkeypatch):
    """One line of every kind; returns their payment ids (or gateway ids) by name."""
    ids = {}
    ids["matched"] = paid_payment()[0].id

    # A charge the ledger never saw: made at the gateway by something other than FinePay.
    gateway = gateway_named("sandbox")
    ghost = gateway.create_intent(payment_id=None, amount=7700, currency="CNY", idempotency_key=f"ghost-{uuid.uuid4()}")
    ghost = gateway.confirm_intent(ghost.id, payment_method="pm_card_visa", idempotency_key=f"ghost-{ghost.id}")
    ids["ghost_intent"] = ghost.id

    # Captured at the gateway, but FinePay never heard: the payment is still "created".
    unsettled = start(overdue_violation(fine=3000))
    capture_at_sandbox(unsettled.gateway_intent_id)
    ids["unsettled"] = unsettled.id

    # Settled in the ledger behind the gateway's back: no money was ever taken.
    behind = start(overdue_violation(fine=4000))
    set_payment(behind.id, status="succeeded", amount_received=behind.amount, paid_at=utcnow(),
                receipt_number="FP-TEST-BEHI-NDTH-EBAK")
    ids["behind_back"] = behind.id

    # The gateway's amount and currency differ from the ledger's.
    amount_off = paid_payment(fine=5000)[0]
    sandbox_set(amount_off.gateway_intent_id, amount_received=amount_off.amount_received - 100)
    ids["amount_off"] = amount_off.id
    currency_off = paid_payment(fine=6000)[0]
    sandbox_set(currency_off.gateway_intent_id, currency="USD")
    ids["currency_off"] = currency_off.id

    # Two captures for one violation: the second refunded automatically...
    ids["dup_original"], ids["dup_refunded"] = double_capture(client)
    # ...and another whose automatic refund the gateway refused.
    with monkeypatch.context() as patch:
        patch.setattr(gateway, "refund", refuse_refund)
        ids["dup_original_2"], ids["dup_unrefunded"] = double_capture(client)

    # A refund made at the gateway's dashboard, never recorded in the ledger.
    refunded_outside = paid_payment(fine=8000)[0]
    outside = gateway.refund(refunded_outside.gateway_intent_id, amount=500, idempotency_key=f"outside-{uuid.uuid4()}")
    ids["refunded_outside"] = refunded_outside.id
    ids["outside_refund"] = outside.id

    # A kiosk payment, for the totals by terminal.
    kiosk = paid_payment(fine=9000)[0]
    enrol_terminal("hall-7", "test")
    from kiosk.models import Terminal
    terminal_id = db.session.execute(select(Terminal.id).where(Terminal.name == "hall-7")).scalar_one()
    set_payment(kiosk.id, channel="kiosk", terminal_id=terminal_id)
    ids["kiosk"] = kiosk.id
    return ids


def classes_by_payment(lines, kind="charge"):
    return {line["payment_id"]: line["classification"] for line in lines if line["kind"] == kind}


def test_explanations_are_whole_translated_sentences_with_their_values_in_place(seeded):
    fetch()

    with force_locale("zh_Hans_CN"):
        lines = reconcile(*window(), limit=1000).discrepancies

    notes = {line["payment_id"]: line["note"] for line in lines if line["kind"] == "charge"}
    assert notes[seeded["currency_off"]] == "币种：账目 CNY，支付渠道 USD"
    assert notes[seeded["dup_refunded"]] == "该违法记录已由更早的缴款结清；重复扣款已退款"
    assert notes[seeded["dup_unrefunded"]] == "该违法记录已由更早的缴款结清；重复扣款未退款"
    assert notes[seeded["unsettled"]] == "账目中该缴款状态为“已创建”：款项已扣，但罚款未标记为已缴"


def test_every_kind_of_difference_is_classified(seeded):
    fetch()

    report = reconcile(*window(), limit=1000)
    lines = report.discrepancies
    charges = classes_by_payment(lines)

    assert seeded["matched"] not in charges  # matched lines are not differences
    assert charges[seeded["unsettled"]] == GATEWAY_ONLY
    assert charges[seeded["behind_back"]] == LEDGER_ONLY
    assert charges[seeded["amount_off"]] == MISMATCH
    assert charges[seeded["currency_off"]] == MISMATCH
    assert charges[seeded["dup_refunded"]] == DUPLICATE
    assert charges[seeded["dup_unrefunded"]] == DUPLICATE
    assert seeded["dup_original"] not in charges and seeded["dup_original_2"] not in charges
    (ghost,) = [line for line in lines if line["intent_id"] == seeded["ghost_intent"]]
    assert ghost["classification"] == GATEWAY_ONLY and ghost["payment_id"] is None
    assert ghost["gateway_amount"] == 7700 and ghost["note"] == "no payment in the ledger for this charge"

    notes = {line["payment_id"]: line["note"] for line in lines if line["kind"] == "charge"}
    assert notes[seeded["dup_refunded"]].endswith("the duplicate charge was refunded")
    assert notes[seeded["dup_unrefunded"]].endswith("the duplicate charge was NOT refunded")
    assert "payment is created" in notes[seeded["unsettled"]]
    assert notes[seeded["currency_off"]] == "currency: ledger CNY, gateway USD"

    refunds = {line["payment_id"]: line for line in lines if line["kind"] == "refund"}
    assert refunds[seeded["refunded_outside"]]["classification"] == GATEWAY_ONLY
    assert refunds[seeded["refunded_outside"]]["transaction_id"] == seeded["outside_refund"]
    assert refunds[seeded["dup_unrefunded"]]["classification"] == LEDGER_ONLY  # pending, never reached the gateway
    assert seeded["dup_refunded"] not in refunds  # its automatic refund matched

    counts = {cls: totals.count for cls, totals in report.classes.items()}
    assert counts == {MATCHED: 6, GATEWAY_ONLY: 3, LEDGER_ONLY: 2, MISMATCH: 2, DUPLICATE: 2}
    assert report.discrepancy_count == 9


def test_only_lists_one_class(seeded):
    fetch()

    report = reconcile(*window(), only=MATCHED)

    assert {line["classification"] for line in report.discrepancies} == {MATCHED}
    assert seeded["matched"] in classes_by_payment(report.discrepancies)
    assert seeded["dup_original"] in classes_by_payment(report.discrepancies)


def test_totals_are_the_ledgers_and_the_gateways(seeded):
    fetch()

    report = reconcile(*window())

    settled = db.session.execute(
        select(func.count(), func.sum(payment_services.Payment.amount_received))
        .where(payment_services.Payment.status.in_(("succeeded", "refunded")))
    ).one()
    assert (report.collected.count, report.collected.amount) == (settled[0], settled[1])
    assert {k for k, _t in report.by_channel} == {"web", "kiosk"}
    assert [(name, t.count) for name, t in report.by_terminal] == [("hall-7", 1)]
    assert [k for k, _t in report.by_gateway] == ["sandbox"]
    dup_refunded = payment_row(seeded["dup_refunded"])
    assert report.refunds.amount == dup_refunded.amount_received  # the only succeeded refund in the ledger
    assert report.refunds_pending.count == 1
    assert report.net == report.collected.amount - report.refunds.amount
    charged = db.session.execute(select(func.sum(SandboxIntent.amount_received))
                                 .where(SandboxIntent.status == "succeeded", SandboxIntent.currency == "CNY")).scalar()
    assert sum(t.amount for _g, c, t in report.gateway_charges if c == "CNY") == charged
    assert sum(t.amount for _l, t in [(h[0], h[0]) for h in report.hourly]) == report.collected.amount
    assert sum(h[1].count for h in report.hourly) == sum(t.count for _g, _c, t in report.gateway_charges)
    assert report.fetched_at is not None


def test_the_csv_has_every_line_classified(seeded, client):
    fetch()
    sign_in_as(client, make_supervisor())
    first, last = window()

    response = client.get(f"/staff/reconciliation.csv?start={first}&end={last}")

    assert response.status_code == 200
    assert response.mimetype == "text/csv"
    assert response.headers["Content-Disposition"] == f'attachment; filename="reconciliation-{first}-to-{last}.csv"'
    rows = csv_rows(response.get_data(as_text=True))
    charges = {r["payment_id"]: r for r in rows if r["kind"] == "charge" and r["payment_id"]}
    assert charges[seeded["matched"]]["classification"] == MATCHED
    assert charges[seeded["unsettled"]]["classification"] == GATEWAY_ONLY
    assert charges[seeded["behind_back"]]["classification"] == LEDGER_ONLY
    assert charges[seeded["behind_back"]]["gateway_amount"] == ""
    assert charges[seeded["amount_off"]]["classification"] == MISMATCH
    assert fen(charges[seeded["amount_off"]]["ledger_amount"]) - fen(charges[seeded["amount_off"]]["gateway_amount"]) == 100
    assert charges[seeded["dup_refunded"]]["classification"] == DUPLICATE
    assert charges[seeded["dup_refunded"]]["description"] == "Duplicate charge for one violation"
    assert "NOT refunded" in charges[seeded["dup_unrefunded"]]["note"]
    assert charges[seeded["kiosk"]]["terminal"] == "hall-7"
    assert charges[seeded["matched"]]["ledger_at"].endswith("+08:00")
    ghost = [r for r in rows if r["intent_id"] == seeded["ghost_intent"]]
    assert [r["classification"] for r in ghost] == [GATEWAY_ONLY]
    assert len(rows) == 15
    entry = last_audit("reconciliation.exported")
    assert entry.actor == "staff:boss" and entry.subject_id == f"{first}..{last}"


def test_the_report_page_explains_the_differences(seeded, client):
    fetch()
    sign_in_as(client, make_supervisor())
    first, last = window()

    page = client.get(f"/staff/reconciliation?start={first}&end={last}").get_data(as_text=True)

    assert "9 differences to explain" in page
    assert f'data-payment="{seeded["behind_back"]}"' in page
    assert "no charge at the gateway for this settled payment" in page
    assert '<svg xmlns="http://www.w3.org/2000/svg"' in page and 'class="bar-ledger"' in page
    assert "<script" not in page
    assert 'id="csv-link" href="/staff/reconciliation.csv?start=' in page


def test_fetching_again_updates_and_never_duplicates(seeded):
    first = fetch()
    records = db.session.execute(select(func.count()).select_from(GatewayRecord)).scalar_one()

    again = fetch()

    assert first == again == records
    assert db.session.execute(select(func.count()).select_from(GatewayRecord)).scalar_one() == records
    assert last_audit("reconciliation.gateway_fetched").details["transactions"] == records


def test_without_a_fetch_the_report_says_so(app, client):
    paid_payment()
    sign_in_as(client, make_supervisor())
    first, last = window()

    report = reconcile(first, last)
    page = client.get(f"/staff/reconciliation?start={first}&end={last}").get_data(as_text=True)

    assert report.fetched_at is None
    assert [line["classification"] for line in report.discrepancies] == [LEDGER_ONLY]
    assert "have not been fetched" in page


def test_a_clean_day_has_no_differences(app, client):
    paid_payment()
    paid_payment()
    fetch()
    sign_in_as(client, make_supervisor())
    first, last = window()

    report = reconcile(first, last)
    page = client.get(f"/staff/reconciliation?start={first}&end={last}").get_data(as_text=True)

    assert report.discrepancies == []
    assert report.classes[MATCHED].count == 2
    assert report.net == report.gateway_net
    assert "Everything matches" in page and 'id="no-differences"' in page


def test_the_refresh_button_fetches_the_dates_on_screen(app, client):
    paid_payment()
    sign_in_as(client, make_supervisor())
    first, last = window()

    response = client.post("/staff/reconciliation/fetch", data={"start": first.isoformat(), "end": last.isoformat()})

    assert response.status_code == 303
    assert response.headers["Location"] == f"/staff/reconciliation?start={first}&end={last}"
    assert db.session.execute(select(func.count()).select_from(GatewayRecord)).scalar_one() == 1
    assert "Fetched 1 transaction from Card (sandbox)." in client.get(response.headers["Location"]).get_data(as_text=True)


def test_the_fetch_command_defaults_to_yesterday(app, runner):
    result = runner.invoke(args=["staff", "fetch-gateway"])

    assert result.exit_code == 0, result.output
    yesterday = today() - timedelta(days=1)
    assert f"for {yesterday}." in result.output
    start, end = business_day_window(yesterday)
    entry = last_audit("reconciliation.gateway_fetched")
    assert (entry.details["start"], entry.details["end"]) == (start.isoformat(), end.isoformat())
    assert start.utcoffset() == timedelta(hours=8)


def test_the_fetch_command_refuses_bad_dates(runner):
    assert runner.invoke(args=["staff", "fetch-gateway", "--date", "yesterday"]).exit_code == 2
    result = runner.invoke(args=["staff", "fetch-gateway", "--date", "2026-11-02", "--end", "2026-11-01"])
    assert result.exit_code == 1 and "before the start" in result.output


def test_the_page_defaults_to_yesterday(client):
    sign_in_as(client, make_supervisor())

    page = client.get("/staff/reconciliation").get_data(as_text=True)

    yesterday = (today() - timedelta(days=1)).isoformat()
    assert f'id="start" name="start" type="date" value="{yesterday}"' in page
    assert f'id="end" name="end" type="date" value="{yesterday}"' in page


@pytest.mark.parametrize("query, message", [
    ("start=2026-11-05&end=2026-11-01", "The end date is before the start date."),
    ("start=2026-01-01&end=2026-03-01", "Choose at most 31 days."),
    ("start=yesterday", "Not a valid date value."),
    ("start=2026-02-30", "Not a valid date value."),
])
def test_bad_dates_are_explained_beside_the_fields(client, query, message):
    sign_in_as(client, make_supervisor())

    page = client.get(f"/staff/reconciliation?{query}")
    csv_response = client.get(f"/staff/reconciliation.csv?{query}")

    assert page.status_code == csv_response.status_code == 422
    assert message in page.get_data(as_text=True)
    assert message in csv_response.get_data(as_text=True)


def test_a_spreadsheet_formula_from_the_gateway_is_defused(app):
    start_at, _end = business_day_window(today())
    db.session.add(GatewayRecord(gateway="sandbox", transaction_id="=HYPERLINK(\"http://x\")", kind="charge",
                                 intent_id=None, amount=100, currency="CNY", status="succeeded",
                                 created_at=start_at + timedelta(hours=1)))
    db.session.commit()

    text = "".join(csv_lines(today(), today(), "Asia/Shanghai"))

    assert "'=HYPERLINK" in text
    assert ",=HYPERLINK" not in text


def charge_and_refund():
    """Two 200-yuan payments through the sandbox, 50 yuan of one refunded, fetched: (refunded payment, its violation)."""
    payment, violation = paid_payment(fine=20000, decision_date=today())
    paid_payment(fine=20000, decision_date=today())
    payment_services.refund_payment(payment.id, 5000, reason="test", actor="test")
    fetch()
    return payment, violation


@in_both_languages
def test_charges_refunds_and_net_are_separate_figures_never_one_amount(app, client):
    payment, _violation = charge_and_refund()
    sign_in_as(client, make_supervisor())
    first, last = window()

    report = reconcile(first, last)
    page = client.get(f"/staff/reconciliation?start={first}&end={last}").get_data(as_text=True)

    matched = report.classes[MATCHED]
    assert (matched.count, matched.charges, matched.refunds, matched.net) == (3, 40000, 5000, 35000)
    (sandbox,) = report.gateways
    assert (sandbox.charged, sandbox.refunded, sandbox.net) == (40000, 5000, 35000)
    assert (report.gateway_charged, report.gateway_refunded, report.gateway_net) == (40000, 5000, 35000)
    with in_app_language(app):
        charges, refunds, net = format_money(40000), "−" + format_money(5000), format_money(35000)
    headings = page.split('id="classification"')[1].split("</thead>")[0]
    assert [translated(app, word) in headings for word in ("Charges", "Refunds", "Net")] == [True] * 3
    for row in (page.split('id="count-matched"')[1].split("</tr>")[0],
                page.split('id="gateway-totals-row"')[1].split("</tr>")[0],
                page.split('id="gateway-sandbox"')[1].split('data-class="matched"')[1].split("</tr>")[0]):
        assert f'data-figure="charges">{charges}<' in row
        assert f'data-figure="refunds">{refunds}<' in row
        assert f'data-figure="net">{net}<' in row


def test_an_empty_days_chart_reads_zero_to_a_round_amount(app, client):
    sign_in_as(client, make_supervisor())
    first, last = window()

    page = client.get(f"/staff/reconciliation?start={first}&end={last}").get_data(as_text=True)

    chart = page.split('id="hourly-chart"')[1].split("</svg>")[0]
    with app.test_request_context():
        axis = [format_money(amount) for amount in (0, 2500, 5000, 7500, 10000)]
    assert [f">{label}</text>" in chart for label in axis] == [True] * 5
    assert "nan" not in chart.lower() and "inf" not in chart.lower()
    assert chart.count('height="0.0"') == 48
    assert "Nothing settled or charged on these dates" in chart
    assert page.count("No charges or refunds on these dates") == 2  # not "Everything matches": there is nothing
    assert "Everything matches" not in page


@pytest.mark.parametrize(("highest", "top"), [(0, 10000), (1, 10000), (20000, 20000), (20001, 40000),
                                             (95000, 100000), (1234567, 2000000)])
def test_the_charts_axis_is_four_round_steps_above_the_highest_bar(highest, top):
    assert axis_top(highest) == top
    assert axis_top(highest) >= highest


@in_both_languages
def test_the_csv_opens_in_excel_and_wps_with_the_consoles_headings_and_yuan(app, client):
    payment, violation = charge_and_refund()
    sign_in_as(client, make_supervisor())
    first, last = window()

    body = client.get(f"/staff/reconciliation.csv?start={first}&end={last}").get_data()

    assert body.startswith(b"\xef\xbb\xbf")
    text = body.decode("utf-8")
    assert text.count("\n") == text.count("\r\n") > 1
    rows = list(csv.reader(io.StringIO(text.removeprefix(BOM))))
    assert rows[0] == [translated(app, heading) for _code, heading in COLUMNS]
    lines = csv_rows(text)
    transaction = db.session.execute(select(GatewayRecord.transaction_id).where(
        GatewayRecord.intent_id == payment.gateway_intent_id, GatewayRecord.kind == "charge")).scalar_one()
    (charge,) = [line for line in lines if line["payment_id"] == payment.id and line["kind"] == "charge"]
    assert (charge["plate"], charge["notice_numbers"], charge["receipt_number"], charge["transaction_id"]) == (
        violation.plate, violation.notice_number, payment.receipt_number, transaction)
    assert (charge["ledger_amount"], charge["gateway_amount"], charge["gateway_net"]) == ("200.00", "200.00", "200.00")
    assert (charge["gateway"], charge["gateway_fee"], charge["refunded"]) == ("sandbox", "0.00", "50.00")
    (refund,) = [line for line in lines if line["payment_id"] == payment.id and line["kind"] == "refund"]
    assert (refund["plate"], refund["receipt_number"], refund["ledger_amount"], refund["gateway_net"]) == (
        violation.plate, payment.receipt_number, "50.00", "-50.00")
    assert charge["description"] == translated(app, "Matched")
    raw = dict(zip(CSV_HEADER, [row for row in rows if payment.id in row and "charge" in row][0], strict=True))
    assert raw["notice_numbers"] == "\t" + violation.notice_number  # an 18-digit number stays text in Excel
    assert raw["receipt_number"] == payment.receipt_number and raw["plate"] == violation.plate


@pytest.mark.parametrize("app_config", [{"DEFAULT_LOCALE": "zh_CN"}])
def test_a_console_in_english_gets_english_headings_where_chinese_is_the_default(app, client):
    sign_in_as(client, make_supervisor())
    first, last = window()

    text = client.get(f"/staff/reconciliation.csv?start={first}&end={last}",
                      headers={"Accept-Language": "en"}).get_data(as_text=True)

    assert text.startswith(BOM + "Result code,Result,Kind,Payment ID,Receipt number,Plate,Notice numbers,Gateway,"
                                 "Gateway order,Gateway transaction number,")
    assert "车牌" not in text


def test_a_long_transaction_number_stays_text_in_a_spreadsheet(app):
    start_at, _end = business_day_window(today())
    number = "4200001234202611301234567890"  # as WeChat Pay numbers its transactions: 28 digits
    db.session.add(GatewayRecord(gateway="sandbox", transaction_id=number, kind="charge", intent_id=None,
                                 amount=100, currency="CNY", status="succeeded", created_at=start_at + timedelta(hours=1)))
    db.session.commit()

    text = "".join(csv_lines(today(), today(), "Asia/Shanghai"))

    (line,) = [row for row in csv.reader(io.StringIO(text)) if number in "".join(row)]
    assert line[CSV_HEADER.index("transaction_id")] == "\t" + number
    assert line[CSV_HEADER.index("gateway_amount")] == "1.00"


@pytest.mark.parametrize("app_config", [{"DEFAULT_LOCALE": "zh_CN"}], ids=["zh_CN"])
def test_the_chinese_page_names_each_class_once_with_one_date_style_and_a_full_width_colon(app, client):
    charge_and_refund()
    sign_in_as(client, make_supervisor())
    first, last = window()

    page = client.get(f"/staff/reconciliation?start={first}&end={last}").get_data(as_text=True)

    matched_row = page.split('id="count-matched"')[1].split("</tr>")[0]
    assert matched_row.count("一致") == 1  # was 一致 一致: a status badge before the class's name
    dates = f"{first.year}年{first.month}月{first.day}日 至 {last.year}年{last.month}月{last.day}日"
    assert page.split('id="report-dates">')[1].startswith(dates + "<")
    assert f"每小时结清与扣款金额，{dates}" in page
    assert not re.search(r"\d{4}-\d\d-\d\d", re.sub(r"<[^>]*>", " ", page))  # no ISO date in what is read

    error = client.get("/staff/reconciliation?start=2026-11-05&end=2026-11-01").get_data(as_text=True)
    assert "<title>错误：对账 · " in error  # not 错误: 对账, an English colon glued to a Chinese word
    one_day = client.get(f"/staff/reconciliation?start={last}&end={last}").get_data(as_text=True)
    assert one_day.split('id="report-dates">')[1].startswith(f"{last.year}年{last.month}月{last.day}日<")
