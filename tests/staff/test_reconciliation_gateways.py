"""Reconciliation across gateways: each gateway's bill against the ledger's payments taken through it, on both databases.

Two test gateways (tests/staff/bill_gateways.py) each carry a seeded bill with
one discrepancy of every class, charges and refunds with fees; the second's
amounts are twice the first's, so that a figure taken from the wrong gateway shows.
"""
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, timedelta

import pytest
from flask_babel import force_locale
from sqlalchemy import event, select

from finepay.extensions import db
from payments.gateways import GatewayTransaction
from payments.models import GatewayRecord, Payment, Refund
from payments.reconciliation.fetch import BILL_NOT_READY_ACTION, FETCH_ACTION, fetch_days
from payments.reconciliation.lines import DUPLICATE, GATEWAY_ONLY, LEDGER_ONLY, MATCHED, MISMATCH, bill_not_ready_note
from payments.reconciliation.report import reconcile
from tests.conftest import LOCALES, translated, translated_plural
from tests.staff import bill_gateways
from tests.staff.bill_gateways import DOWN, SETTINGS, QrGateway, WalletGateway
from tests.staff.helpers import audit_actions, csv_rows, fen, last_audit, make_supervisor, sign_in_as
from violations.fees import business_day_window

DAY = date(2026, 11, 2)
NOT_READY_TEXT = "the gateway's bill for this day is not available yet (usually after about 10:00 the next day)"


@pytest.fixture
def app_config(request, tmp_path, monkeypatch):
    """PAYMENT_GATEWAYS=wallet,qrpay: two gateways known by their bills (installed first), in a language if asked."""
    bill_gateways.install(tmp_path, monkeypatch)
    return {**SETTINGS, **getattr(request, "param", {})}


# The user-facing tests run in each language (as tests.conftest.in_both_languages, on this module's app_config).
in_both_languages = pytest.mark.parametrize("app_config", [{"DEFAULT_LOCALE": code} for code in LOCALES],
                                            ids=LOCALES, indirect=True)


def at(hours):
    return business_day_window(DAY)[0] + timedelta(hours=hours)


def fee(amount):
    """The test gateways' fee: 0.6 % of a charge, the same share returned with a refund."""
    return amount * 6 // 1000


@dataclass
class Seeded:
    """What was seeded for one gateway: ledger payment ids and gateway transaction ids by what they stand for."""

    payments: dict
    transactions: dict


def seed(gateway_cls, scale, tag=""):
    """One line of every class for this gateway, amounts times ``scale``; added to the bill on the class.

    ``tag`` tells apart the ids of a second seeding.
    """
    prefix = gateway_cls.name + tag
    payments, transactions, bill = {}, {}, []

    def pay(key, amount, hours):
        payment = Payment(amount=amount * scale, currency="CNY", plate="蒙B12345", vin_last6="A12345",
                          gateway=gateway_cls.name,
                          gateway_intent_id=f"{prefix}-{key}", idempotency_key=f"{prefix}-{key}",
                          request_fingerprint="f" * 64, status="succeeded", amount_received=amount * scale,
                          expires_at=at(hours + 1), paid_at=at(hours), created_at=at(hours))
        db.session.add(payment)
        db.session.flush()
        payments[key] = payment.id
        return payment

    def charge(key, intent_key, amount, hours):
        amount *= scale
        bill.append(GatewayTransaction(f"{prefix}-ch-{key}", "charge", f"{prefix}-{intent_key}", None, amount, "CNY",
                                       at(hours) - timedelta(seconds=2), fee=fee(amount)))
        transactions[key] = f"{prefix}-ch-{key}"

    def refund(key, intent_key, amount, hours, ledger_payment=None, at_gateway=True):
        amount *= scale
        if ledger_payment is not None:
            db.session.add(Refund(payment_id=ledger_payment.id, amount=amount, currency="CNY", reason="test",
                                  status="succeeded", gateway_refund_id=f"{prefix}-re-{key}",
                                  idempotency_key=f"{prefix}-re-{key}", actor="staff:x", created_at=at(hours)))
        if at_gateway:
            bill.append(GatewayTransaction(f"{prefix}-re-{key}", "refund", f"{prefix}-{intent_key}", None, amount, "CNY",
                                           at(hours) + timedelta(seconds=1), fee=-fee(amount)))
        transactions[key] = f"{prefix}-re-{key}"

    matched = pay("matched", 10000, 1)
    charge("matched", "matched", 10000, 1)
    charge("gateway_only", "ghost", 7700, 2)  # a charge the ledger never saw
    pay("ledger_only", 4000, 3)  # settled in the ledger, no charge at the gateway
    pay("mismatch", 5000, 4)
    charge("mismatch", "mismatch", 4900, 4)
    pay("duplicate", 6000, 5)
    charge("duplicate", "duplicate", 6000, 5)
    charge("duplicate_again", "duplicate", 6000, 5)  # captured twice
    refunded = pay("refunded", 8000, 6)
    charge("refunded", "refunded", 8000, 6)
    refund("refund", "refunded", 3000, 7, ledger_payment=refunded)  # matched on both sides
    refund("refund_gateway_only", "matched", 500, 8)  # made at the gateway's dashboard
    refund("refund_ledger_only", "matched", 200, 9, ledger_payment=matched, at_gateway=False)
    db.session.commit()
    gateway_cls.bill = [*gateway_cls.bill, *bill]
    return Seeded(payments, transactions)


@pytest.fixture
def seeded(app):
    """Both gateways seeded; DAY's bills are out, the next day's are not (as on the morning after)."""
    WalletGateway.bills_out_through = QrGateway.bills_out_through = DAY
    return {"wallet": seed(WalletGateway, 1), "qrpay": seed(QrGateway, 2)}


def bill_not_out(gateway_cls):
    """DAY's bill of this gateway is not out yet."""
    gateway_cls.bills_out_through = DAY - timedelta(days=1)


def fetch():
    return {f.gateway: f for f in fetch_days(DAY, DAY, actor="test")}


def section(report, name):
    (found,) = [s for s in report.gateways if s.name == name]
    return found


def lines_of(report, name):
    """(kind, payment id or transaction id) -> class, for one gateway's listed lines (a refund by its transaction)."""
    return {(line["kind"], line["kind"] == "charge" and line["payment_id"] or line["transaction_id"]):
            line["classification"] for line in report.discrepancies if line["gateway"] == name}


EXPECTED_CLASSES = {MATCHED: 3, GATEWAY_ONLY: 2, LEDGER_ONLY: 2, MISMATCH: 1, DUPLICATE: 1}


def test_each_gateway_is_fetched_and_reconciled_in_its_own_section(seeded):
    fetched = fetch()

    report = reconcile(DAY, DAY, limit=1000)

    assert {name: (f.transactions, f.bill_not_ready, f.error) for name, f in fetched.items()} == {
        "wallet": (8, False, None), "qrpay": (8, False, None)}
    assert [(s.name, str(s.label)) for s in report.gateways] == [("wallet", "Wallet Pay"), ("qrpay", "QR Pay")]
    for name in ("wallet", "qrpay"):
        own = section(report, name)
        assert {cls: t.count for cls, t in own.classes.items()} == EXPECTED_CLASSES
        assert own.fetched_at is not None and not own.bill_not_ready
    assert {cls: t.count for cls, t in report.classes.items()} == {cls: 2 * n for cls, n in EXPECTED_CLASSES.items()}
    assert report.discrepancy_count == 12


def test_every_class_of_difference_is_found_at_each_gateway(seeded):
    fetch()

    report = reconcile(DAY, DAY, limit=1000)

    for name, ids in seeded.items():
        p, t = ids.payments, ids.transactions
        assert lines_of(report, name) == {
            ("charge", t["gateway_only"]): GATEWAY_ONLY,
            ("charge", p["ledger_only"]): LEDGER_ONLY,
            ("charge", p["mismatch"]): MISMATCH,
            ("charge", p["duplicate"]): DUPLICATE,
            ("refund", t["refund_gateway_only"]): GATEWAY_ONLY,  # made at the gateway's dashboard
            ("refund", t["refund_ledger_only"]): LEDGER_ONLY,  # never heard of at the gateway
        }
        matched = reconcile(DAY, DAY, limit=1000, only=MATCHED, gateway=name).discrepancies
        assert {(line["kind"], line["payment_id"]) for line in matched} == {
            ("charge", p["matched"]), ("charge", p["refunded"]), ("refund", p["refunded"])}


def test_charges_refunds_fees_and_the_net_settlement_per_gateway(seeded):
    fetch()

    report = reconcile(DAY, DAY)

    for name, scale in (("wallet", 1), ("qrpay", 2)):
        own = section(report, name)
        charges = [10000, 7700, 4900, 6000, 6000, 8000]
        refunds = [3000, 500]
        assert [(c, t.count, t.amount) for c, t in own.charges] == [("CNY", 6, sum(charges) * scale)]
        assert [(c, t.count, t.amount) for c, t in own.refunds] == [("CNY", 2, sum(refunds) * scale)]
        assert own.net == (42600 - 3500) * scale
        fees = sum(fee(a * scale) for a in charges) - sum(fee(a * scale) for a in refunds)
        assert own.fees == fees == 234 * scale
        assert own.settlement == own.charged - own.refunded - own.fees == 38866 * scale
        assert own.collected.count == 5
        assert own.ledger_refunds.amount == 3200 * scale
        assert own.ledger_net == (10000 + 4000 + 5000 + 6000 + 8000 - 3200) * scale
    assert report.gateway_net == sum(s.net for s in report.gateways)


def test_a_charge_just_before_midnight_meets_its_settlement_while_the_next_days_bill_is_not_out(seeded):
    late = Payment(amount=3000, currency="CNY", plate="蒙B12345", vin_last6="A12345", gateway="wallet",
                   gateway_intent_id="wallet-midnight", idempotency_key="wallet-midnight", request_fingerprint="f" * 64,
                   status="succeeded", amount_received=3000, expires_at=at(1), paid_at=at(0) + timedelta(seconds=10),
                   created_at=at(0) - timedelta(minutes=5))
    db.session.add(late)
    db.session.commit()
    WalletGateway.bill = [*WalletGateway.bill, GatewayTransaction("wallet-ch-midnight", "charge", "wallet-midnight",
                                                                  None, 3000, "CNY", at(0) - timedelta(seconds=10))]

    fetched = fetch()
    report = reconcile(DAY, DAY, limit=1000)

    assert fetched["wallet"].transactions == 9 and not fetched["wallet"].bill_not_ready
    assert ("charge", late.id) not in lines_of(report, "wallet")
    assert section(report, "wallet").classes[MATCHED].count == EXPECTED_CLASSES[MATCHED] + 1


def test_lines_belong_to_the_gateway_recorded_on_the_payment(seeded):
    # The second gateway's bill has a charge for an intent id that the first gateway's payment carries.
    QrGateway.bill = [*QrGateway.bill, GatewayTransaction("qrpay-ch-stray", "charge", "wallet-ledger_only", None,
                                                          4000, "CNY", at(3))]
    fetch()

    report = reconcile(DAY, DAY, limit=1000)

    assert lines_of(report, "wallet")[("charge", seeded["wallet"].payments["ledger_only"])] == LEDGER_ONLY
    assert lines_of(report, "qrpay")[("charge", "qrpay-ch-stray")] == GATEWAY_ONLY


def test_a_bill_not_out_yet_is_said_for_its_gateway_while_the_other_reconciles(seeded, client):
    bill_not_out(QrGateway)

    fetched = fetch()
    report = reconcile(DAY, DAY, limit=1000)

    assert fetched["qrpay"].bill_not_ready and fetched["wallet"].transactions == 8
    entry = last_audit(BILL_NOT_READY_ACTION)
    assert (entry.subject_id, entry.actor) == ("qrpay", "test")
    waiting = section(report, "qrpay")
    assert waiting.bill_not_ready and waiting.fetched_at is not None
    assert lines_of(report, "qrpay") == {}  # not listed as ledger-only
    assert {cls: t.count for cls, t in report.classes.items()} == EXPECTED_CLASSES  # the wallet's alone
    assert {cls: t.count for cls, t in section(report, "wallet").classes.items()} == EXPECTED_CLASSES
    wallet = section(report, "wallet")
    assert report.net_difference == wallet.ledger_net - wallet.net  # the waiting gateway's payments are not a difference

    sign_in_as(client, make_supervisor())
    page = client.get(f"/staff/reconciliation?start={DAY}&end={DAY}").get_data(as_text=True)
    qrpay_part = page.split('id="gateway-qrpay"')[1].split("</section>")[0]
    wallet_part = page.split('id="gateway-wallet"')[1].split("</section>")[0]
    assert NOT_READY_TEXT in qrpay_part and NOT_READY_TEXT not in wallet_part
    assert 'data-figure="settlement"' not in qrpay_part and 'data-figure="settlement"' in wallet_part
    assert 'data-gateway="qrpay"' not in page.split('id="lines"')[1]

    rows = csv_rows(client.get(f"/staff/reconciliation.csv?start={DAY}&end={DAY}").get_data(as_text=True))
    waiting_rows = [r for r in rows if r["gateway"] == "qrpay"]
    assert waiting_rows and {r["classification"] for r in waiting_rows} == {LEDGER_ONLY}
    assert {r["note"] for r in waiting_rows} == {NOT_READY_TEXT}


@contextmanager
def statements():
    """The SQL statements the database is sent inside the block."""
    sent = []

    def count(conn, cursor, statement, *args):
        sent.append(statement)

    event.listen(db.engine, "before_cursor_execute", count)
    try:
        yield sent
    finally:
        event.remove(db.engine, "before_cursor_execute", count)


def test_the_report_is_a_handful_of_statements_whatever_the_volume(seeded):
    fetch()
    with statements() as few:
        reconcile(DAY, DAY)
    seed(WalletGateway, 3, tag="-more")
    seed(QrGateway, 4, tag="-more")
    fetch()

    with statements() as more:
        report = reconcile(DAY, DAY)

    assert report.discrepancy_count == 24
    assert len(more) == len(few) <= 10


def test_the_bill_once_out_replaces_the_notice(seeded):
    bill_not_out(QrGateway)
    fetch()
    QrGateway.bills_out_through = DAY

    fetch()
    report = reconcile(DAY, DAY, limit=1000)

    assert not section(report, "qrpay").bill_not_ready
    assert {cls: t.count for cls, t in section(report, "qrpay").classes.items()} == EXPECTED_CLASSES
    assert audit_actions(subject_id="qrpay") == [BILL_NOT_READY_ACTION, FETCH_ACTION]


def test_the_bill_not_ready_note_is_translated(app):
    with force_locale("zh_Hans_CN"):
        note = bill_not_ready_note()

    assert note != NOT_READY_TEXT and "10:00" in note


def test_the_fetch_command_fetches_every_gateway(seeded, runner):
    result = runner.invoke(args=["staff", "fetch-gateway", "--date", DAY.isoformat()])

    assert result.exit_code == 0, result.output
    assert f"wallet: fetched 8 gateway transactions for {DAY}." in result.output
    assert f"qrpay: fetched 8 gateway transactions for {DAY}." in result.output
    start, end = business_day_window(DAY)
    for name in ("wallet", "qrpay"):
        entries = [e for e in db.session.execute(select(GatewayRecord.transaction_id)
                                                 .where(GatewayRecord.gateway == name)).scalars()]
        assert len(entries) == 8
    entry = last_audit(FETCH_ACTION)
    assert (entry.details["start"], entry.details["end"]) == (start.isoformat(), end.isoformat())


def test_the_fetch_command_says_which_bill_is_not_out_and_fetches_the_rest(seeded, runner):
    bill_not_out(QrGateway)

    result = runner.invoke(args=["staff", "fetch-gateway", "--date", DAY.isoformat()])

    assert result.exit_code == 0, result.output
    assert f"qrpay: the bill for {DAY} is not available yet" in result.output
    assert f"wallet: fetched 8 gateway transactions for {DAY}." in result.output


def test_the_fetch_command_says_when_only_the_first_days_of_a_range_are_out(seeded, runner):
    next_day = DAY + timedelta(days=1)

    result = runner.invoke(args=["staff", "fetch-gateway", "--date", DAY.isoformat(), "--end", next_day.isoformat()])

    assert result.exit_code == 0, result.output
    assert (f"wallet: fetched 8 gateway transactions of the days whose bill is out; the rest of {DAY} to {next_day} "
            "waits for its bill") in result.output


def test_the_fetch_command_fails_when_a_gateway_does_not_answer_after_fetching_the_others(seeded, runner, caplog):
    WalletGateway.bill = DOWN

    result = runner.invoke(args=["staff", "fetch-gateway", "--date", DAY.isoformat()])

    assert result.exit_code == 1
    assert "wallet: the gateway did not answer: connection refused" in result.output
    assert f"qrpay: fetched 8 gateway transactions for {DAY}." in result.output
    assert audit_actions(action=FETCH_ACTION) == [FETCH_ACTION]
    assert "fetching wallet failed: connection refused (gateway_unavailable)" in caplog.text


def test_the_csv_has_each_lines_gateway_and_fees(seeded, client):
    fetch()
    sign_in_as(client, make_supervisor())

    rows = csv_rows(client.get(f"/staff/reconciliation.csv?start={DAY}&end={DAY}").get_data(as_text=True))

    report = reconcile(DAY, DAY)
    for name, ids in seeded.items():
        own = [r for r in rows if r["gateway"] == name]
        assert len(own) == 9
        duplicate = [r for r in own if r["payment_id"] == ids.payments["duplicate"]][0]
        assert fen(duplicate["gateway_fee"]) == 2 * fee(fen(duplicate["gateway_amount"]) // 2)
        refund = [r for r in own if r["transaction_id"] == ids.transactions["refund"]][0]
        assert fen(refund["gateway_net"]) == -fen(refund["gateway_amount"]) - fen(refund["gateway_fee"])
        assert fen(refund["gateway_fee"]) < 0
        assert sum(fen(r["gateway_net"] or "0") for r in own) == section(report, name).settlement


@in_both_languages
def test_the_page_has_a_section_per_gateway_with_its_figures(app, seeded, client):
    fetch()
    sign_in_as(client, make_supervisor())

    page = client.get(f"/staff/reconciliation?start={DAY}&end={DAY}").get_data(as_text=True)

    with app.test_request_context(), force_locale(app.config["DEFAULT_LOCALE"]):
        from finepay.formatting import format_money
        settlement = format_money(38866 * 2)
        fees = "−" + format_money(234 * 2)
    qrpay_part = page.split('id="gateway-qrpay"')[1].split("</section>")[0]
    assert "QR Pay" in qrpay_part
    assert translated(app, "Net settlement") in qrpay_part and settlement in qrpay_part
    assert translated(app, "Gateway fees") in qrpay_part and fees in qrpay_part
    assert translated_plural(app, "Show its %(num)d difference", "Show its %(num)d differences", 6) in qrpay_part
    assert page.index('id="gateway-wallet"') < page.index('id="gateway-qrpay"')


def test_the_gateway_link_lists_one_gateways_lines(seeded, client):
    fetch()
    sign_in_as(client, make_supervisor())

    page = client.get(f"/staff/reconciliation?start={DAY}&end={DAY}&gateway=wallet").get_data(as_text=True)

    listed = page.split('id="lines"')[1]
    assert listed.count('data-gateway="wallet"') == 6 and 'data-gateway="qrpay"' not in listed


@in_both_languages
def test_the_refresh_button_says_what_each_gateway_gave(app, seeded, client):
    bill_not_out(QrGateway)
    sign_in_as(client, make_supervisor())

    response = client.post("/staff/reconciliation/fetch", data={"start": DAY.isoformat(), "end": DAY.isoformat()})
    page = client.get(response.headers["Location"]).get_data(as_text=True)

    assert response.status_code == 303
    assert translated_plural(app, "Fetched %(num)d transaction from %(gateway)s.",
                             "Fetched %(num)d transactions from %(gateway)s.", 8, gateway="Wallet Pay") in page
    assert translated(app, "%(gateway)s: the bill for these dates is not available yet (usually after about 10:00 "
                           "the next day). Refresh again later.", gateway="QR Pay") in page


def test_a_gateway_no_longer_configured_keeps_a_section_for_its_payments(seeded, client):
    db.session.add(Payment(amount=9900, currency="CNY", plate="蒙B12345", vin_last6="A12345", gateway="retired",
                           gateway_intent_id="retired-1", idempotency_key="retired-1", request_fingerprint="f" * 64,
                           status="succeeded", amount_received=9900, expires_at=at(2), paid_at=at(1),
                           created_at=at(1)))
    db.session.commit()
    fetch()

    report = reconcile(DAY, DAY, limit=1000)

    assert [s.name for s in report.gateways] == ["wallet", "qrpay", "retired"]
    retired = section(report, "retired")
    assert not retired.configured and retired.collected.amount == 9900
    assert retired.classes[LEDGER_ONLY].count == 1
    assert report.fetched_at is not None  # every configured gateway was fetched
    sign_in_as(client, make_supervisor())
    page = client.get(f"/staff/reconciliation?start={DAY}&end={DAY}").get_data(as_text=True)
    assert "No longer configured" in page.split('id="gateway-retired"')[1].split("</section>")[0]


def test_a_gateway_without_a_label_goes_by_its_name(seeded, monkeypatch):
    monkeypatch.setattr(QrGateway, "label", "")

    fetched = fetch()
    report = reconcile(DAY, DAY)

    assert fetched["qrpay"].label == section(report, "qrpay").label == "qrpay"


@in_both_languages
def test_the_refresh_button_says_which_gateway_did_not_answer(app, seeded, client):
    WalletGateway.bill = DOWN
    sign_in_as(client, make_supervisor())

    response = client.post("/staff/reconciliation/fetch", data={"start": DAY.isoformat(), "end": DAY.isoformat()})
    page = client.get(response.headers["Location"]).get_data(as_text=True)

    assert translated(app, "%(gateway)s did not answer; the report still shows what was fetched from it before. "
                           "Try again shortly.", gateway="Wallet Pay") in page
    assert translated_plural(app, "Fetched %(num)d transaction from %(gateway)s.",
                             "Fetched %(num)d transactions from %(gateway)s.", 8, gateway="QR Pay") in page


def test_a_range_reconciles_the_days_whose_bill_is_out_and_waits_for_the_rest(seeded, client):
    next_day = DAY + timedelta(days=1)
    waiting = Payment(amount=4500, currency="CNY", plate="蒙B12345", vin_last6="A12345", gateway="wallet",
                      gateway_intent_id="wallet-next-day", idempotency_key="wallet-next-day",
                      request_fingerprint="f" * 64, status="succeeded", amount_received=4500, expires_at=at(27),
                      paid_at=at(26), created_at=at(26))
    db.session.add(waiting)
    db.session.commit()

    fetched = {f.gateway: f for f in fetch_days(DAY, next_day, actor="test")}
    report = reconcile(DAY, next_day, limit=1000)

    assert (fetched["wallet"].transactions, fetched["wallet"].bill_not_ready) == (8, True)
    wallet = section(report, "wallet")
    assert wallet.bill_not_ready and wallet.partly_ready
    assert wallet.waiting_from == business_day_window(next_day)[0]
    assert {cls: t.count for cls, t in wallet.classes.items()} == EXPECTED_CLASSES  # the next day's is not a difference
    assert ("charge", waiting.id) not in lines_of(report, "wallet")
    day_alone = section(reconcile(DAY, DAY), "wallet")
    assert not day_alone.bill_not_ready and day_alone.fetched_at is not None
    sign_in_as(client, make_supervisor())
    rows = csv_rows(client.get(f"/staff/reconciliation.csv?start={DAY}&end={next_day}").get_data(as_text=True))
    (row,) = [r for r in rows if r["payment_id"] == waiting.id]
    assert (row["classification"], row["note"]) == (LEDGER_ONLY, NOT_READY_TEXT)
    assert {r["note"] for r in rows if r["payment_id"] == seeded["wallet"].payments["ledger_only"]} != {NOT_READY_TEXT}
    response = client.post("/staff/reconciliation/fetch", data={"start": DAY.isoformat(), "end": next_day.isoformat()})
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    wallet_part = page.split('id="gateway-wallet"')[1].split("</section>")[0]
    assert NOT_READY_TEXT in wallet_part and 'data-figure="settlement"' in wallet_part
    assert "Fetched 8 transactions from Wallet Pay." in page
    assert "Wallet Pay: the bill for these dates is not available yet" in page
