"""The next day's reconciliation against WeChat Pay's and Alipay's own bills, through the real simulators on loopback.

Payments go through a live FinePay to both simulators (WeChat Pay Native and
Alipay precreate, approved on the simulators' payer pages), a refund is made
on each rail, the simulators' clocks are moved to the next morning and
`flask --app wsgi staff fetch-gateway` reads both bills. Discrepancies of every
class are seeded on each rail: a payment whose notification was lost (gateway
only), a payment marked paid by a direct database update (ledger only), a
settled amount changed in the ledger (mismatch) and a second payment whose
violation an earlier one had paid (duplicate). Each test prints a summary line
(`pytest -s`) of the figures. Runs on SQLite and PostgreSQL; the simulators
are started afresh for each test, so that a day's bills hold that test's
payments alone.
"""
import csv
import html
import io
from datetime import datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal
from zoneinfo import ZoneInfo

import pytest
from flask_babel import force_locale, gettext
from sqlalchemy import func, select

from finepay.extensions import db
from finepay.i18n import status_label
from payments.models import GatewayRecord, Payment, PaymentItem, Refund
from payments.reconciliation.export import CSV_HEADER
from payments.reconciliation.lines import DUPLICATE, GATEWAY_ONLY, LEDGER_ONLY, MATCHED, MISMATCH
from payments.reconciliation.report import reconcile
from staff.services import refund as staff_refund
from tests.conftest import translated
from tests.payments.helpers import overdue_violation, set_payment
from tests.reliability.rails import AlipaySimulator, FinePayServer, WeChatPaySimulator, new_payments, place_order
from tests.reliability.servers import free_port, wait_until
from tests.staff.helpers import make_supervisor, sign_in_as
from violations.fees import business_today

RAILS = ("wechatpay", "alipay")
CHINA = ZoneInfo("Asia/Shanghai")
FEE_RATE = Decimal("0.006")  # both simulators' default: 0.6 %, rounded half up, returned in proportion by a refund
SETTLE_SECONDS = 30
NOTICES = iter(range(1, 10_000))


@pytest.fixture
def simulators(tmp_path):
    """Both simulators, fresh for the test; WeChat Pay's refunds stay PROCESSING until the test settles them."""
    with WeChatPaySimulator(tmp_path) as wechatpay, AlipaySimulator(tmp_path) as alipay:
        wechatpay.admin("settings", {"refund_delay": None})
        yield {"wechatpay": wechatpay, "alipay": alipay}


@pytest.fixture
def finepay_server():
    """FinePay's loopback address, chosen before the app is made so that its notify URLs can name it."""
    return FinePayServer(free_port())


@pytest.fixture
def app_config(simulators, finepay_server):
    """Both rails, each pointed at its simulator and notifying finepay_server."""
    settings = {"PAYMENT_GATEWAYS": ",".join(RAILS)}
    for rail, simulator in simulators.items():
        settings.update(simulator.settings(finepay_server.notify_url(rail)))
    return settings


@pytest.fixture
def finepay(app, finepay_server):
    """FinePay serving the simulators' notifications (and the payer's API) in this process."""
    yield finepay_server.start(app)
    finepay_server.stop()


@pytest.fixture
def day():
    """The business day the payments fall on (today in China)."""
    return business_today("Asia/Shanghai")


def fee(amount):
    """What both simulators' bills charge on a payment of ``amount`` fen."""
    return int((amount * FEE_RATE).quantize(Decimal(1), ROUND_HALF_UP))


def fee_returned(total, refunded):
    """The part of a payment's fee a partial refund hands back."""
    return int((Decimal(fee(total)) * refunded / total).quantize(Decimal(1), ROUND_HALF_UP))


def violations(count, fine=20000):
    """``count`` overdue violations of the test vehicle, each its own fine (so that amounts tell lines apart)."""
    return [overdue_violation(notice_number=f"15020320261{next(NOTICES):07d}", fine=fine + 100 * i).id
            for i in range(count)]


def paid_at_rail(app, finepay, simulators, rail, count):
    """``count`` payments made by a desktop payer scanning each QR code and approving at ``rail``; their ids."""
    ids = new_payments(finepay.url, violations(count), rail)
    for payment_id in ids:
        assert simulators[rail].approve(place_order(app, payment_id)).status_code < 400
    return ids


def settled(ids, status="succeeded"):
    """Wait until every payment (or refund, by its payment) has this status in the ledger; the read ended after."""
    def done():
        db.session.expire_all()
        found = all(db.session.get(Payment, pid).status == status for pid in ids)
        db.session.rollback()
        return found
    assert wait_until(done, SETTLE_SECONDS), [db.session.get(Payment, pid).status for pid in ids]


def refund_settled(simulators, payment_id, amount):
    """A supervisor's partial refund of the payment, made at its rail (WeChat Pay's once FinePay has recorded it)."""
    staff_refund(payment_id, amount=amount, reason="paid twice at the counter", form_key="f1",
                 actor_name="staff:boss")
    refund = db.session.scalars(select(Refund).where(Refund.payment_id == payment_id)).one()
    if refund.status == "pending":
        simulators[db.session.get(Payment, payment_id).gateway].settle_refund(refund.gateway_refund_id)

    def done():
        db.session.expire_all()
        found = db.session.scalars(select(Refund.status).where(Refund.payment_id == payment_id)).all()
        db.session.rollback()
        return found == ["succeeded"]
    assert wait_until(done, SETTLE_SECONDS)


def amount_of(payment_id):
    """What the ledger says the payment took."""
    return db.session.get(Payment, payment_id).amount_received


def next_morning(simulators, day, **hours):
    """Move each rail's clock to the morning after ``day`` (Beijing time): {rail: hour} (default 10:30)."""
    for rail, simulator in simulators.items():
        hour = hours.get(rail, 10.5)
        simulator.move_clock(datetime.combine(day + timedelta(days=1), time(), CHINA) + timedelta(hours=hour))


def fetch(runner, day):
    """`flask --app wsgi staff fetch-gateway --date DAY`: (exit code, its output)."""
    result = runner.invoke(args=["staff", "fetch-gateway", "--date", day.isoformat()])
    return result.exit_code, result.output


def section(report, rail):
    """The rail's GatewaySection of the report."""
    return next(s for s in report.gateways if s.name == rail)


def counts(section_):
    """Lines by class, the empty classes left out."""
    return {cls: t.count for cls, t in section_.classes.items() if t.count}


def csv_lines(client, day):
    """The report's CSV lines for the day, as dicts by CSV_HEADER."""
    text = client.get(f"/staff/reconciliation.csv?start={day}&end={day}").get_data(as_text=True)
    return list(csv.DictReader(io.StringIO(text), fieldnames=CSV_HEADER))[1:]


def records(rail):
    """Gateway records fetched for this rail (its bill lines read)."""
    return db.session.execute(select(func.count()).select_from(GatewayRecord)
                              .where(GatewayRecord.gateway == rail)).scalar()


def summary(title, fetched, report):
    """The figures line for the closing note."""
    parts = []
    for rail in RAILS:
        s = section(report, rail)
        classes = ", ".join(f"{cls} {s.classes[cls].count}" for cls in s.classes)
        parts.append(f"{rail}: {fetched.get(rail, 0)} bill lines read, {classes}, fees {s.fees}, "
                     f"net settlement {s.settlement}")
    print(f"\n[bills] {title}: " + "; ".join(parts))


def test_the_next_days_reconciliation_matches_both_bills_with_their_fees(
        app, finepay, simulators, runner, day):
    paid = {rail: paid_at_rail(app, finepay, simulators, rail, 2) for rail in RAILS}
    settled([pid for ids in paid.values() for pid in ids])
    for rail in RAILS:
        refund_settled(simulators, paid[rail][0], 2000)

    # At 09:30 WeChat Pay's bill is out (10:30 on its clock) but Alipay's is not: it says so, WeChat Pay reconciles.
    next_morning(simulators, day, alipay=9.5)
    code, early = fetch(runner, day)
    report = reconcile(day, day)
    assert code == 0, early
    assert f"alipay: the bill for {day} is not available yet" in early
    assert section(report, "alipay").bill_not_ready and counts(section(report, "alipay")) == {}
    assert counts(section(report, "wechatpay")) == {MATCHED: 3}

    next_morning(simulators, day)
    code, output = fetch(runner, day)
    report = reconcile(day, day)

    assert code == 0, output
    fetched = {rail: records(rail) for rail in RAILS}
    for rail in RAILS:
        s = section(report, rail)
        amounts = [amount_of(pid) for pid in paid[rail]]
        fees = sum(fee(a) for a in amounts) - fee_returned(amounts[0], 2000)
        assert f"{rail}: fetched {fetched[rail]} gateway transactions for {day}" in output
        assert not s.bill_not_ready and counts(s) == {MATCHED: 3}  # two charges and the refund
        assert (s.charged, s.refunded, s.fees) == (sum(amounts), 2000, fees)
        assert s.settlement == sum(amounts) - 2000 - fees and s.net == s.ledger_net
    assert report.discrepancy_count == 0 and report.net_difference == 0
    summary("matched", fetched, report)


def seed_discrepancies(app, finepay, simulators, rail):
    """One line of every class at ``rail`` beside two matched payments; the payment ids by what they stand for."""
    simulator = simulators[rail]
    matched, mismatched, *pair = paid_at_rail(app, finepay, simulators, rail, 4)
    settled([matched, mismatched, *pair])
    # Notifications may settle them in either order: the earlier is the one the ledger says was paid first.
    earlier, later = sorted(pair, key=lambda pid: db.session.get(Payment, pid).paid_at)
    # Gateway only: paid at the rail, its notification lost and nobody ran `payments sync`.
    simulator.switch("drop", 1)
    [lost] = new_payments(finepay.url, violations(1, fine=30000), rail)
    assert simulator.approve(place_order(app, lost)).status_code < 400
    assert wait_until(lambda: simulator.settled(finepay.notify_url(rail)), SETTLE_SECONDS)
    # Ledger only: marked paid in FinePay's ledger by hand, never paid at the rail.
    [forged] = new_payments(finepay.url, violations(1, fine=40000), rail)
    amount = db.session.get(Payment, forged).amount
    set_payment(forged, status="succeeded", amount_received=amount,
                paid_at=db.session.get(Payment, matched).paid_at)
    # Amount mismatch: the ledger says one yuan more was taken than the rail did.
    set_payment(mismatched, amount_received=amount_of(mismatched) + 100)
    # Duplicate: the later payment's violation becomes the one the earlier payment had already paid.
    earlier_item = db.session.scalars(select(PaymentItem).where(PaymentItem.payment_id == earlier)).one()
    later_item = db.session.scalars(select(PaymentItem).where(PaymentItem.payment_id == later)).one()
    later_item.violation_id, later_item.settled = earlier_item.violation_id, False
    db.session.commit()
    return {MATCHED: matched, GATEWAY_ONLY: lost, LEDGER_ONLY: forged, MISMATCH: mismatched, DUPLICATE: later}


def test_discrepancies_of_every_class_show_in_their_rails_section_and_the_csv(
        app, finepay, simulators, runner, client, day):
    seeded = {rail: seed_discrepancies(app, finepay, simulators, rail) for rail in RAILS}
    for rail in RAILS:
        refund_settled(simulators, seeded[rail][MATCHED], 1000)
    next_morning(simulators, day)

    code, output = fetch(runner, day)
    report = reconcile(day, day)

    assert code == 0, output
    for rail in RAILS:
        # Matched: two charges (the matched one and the earlier of the duplicate pair) and the refund.
        assert counts(section(report, rail)) == {MATCHED: 3, GATEWAY_ONLY: 1, LEDGER_ONLY: 1, MISMATCH: 1,
                                                 DUPLICATE: 1}
    lines = {(line["gateway"], line["classification"], line["payment_id"])
             for line in csv_lines(sign_in_as(client, make_supervisor()), day)}
    page = client.get(f"/staff/reconciliation?start={day}&end={day}").get_data(as_text=True)
    for rail in RAILS:
        for cls, payment_id in seeded[rail].items():
            assert (rail, cls, payment_id) in lines
            if cls != MATCHED:
                assert f'data-classification="{cls}" data-payment="{payment_id}" data-gateway="{rail}"' in page
        assert f'id="gateway-{rail}"' in page
    assert_a_clerk_reads_rails_by_name_and_an_unsettled_payment_by_its_status(
        app, page, day, {rail: seeded[rail][GATEWAY_ONLY] for rail in RAILS})
    summary("seeded", {rail: records(rail) for rail in RAILS}, report)


def assert_a_clerk_reads_rails_by_name_and_an_unsettled_payment_by_its_status(app, page, day, lost):
    """The ledger's totals name each rail by its label; a payment taken at a rail but not settled in the ledger
    says "not settled" and its status in the clerk's language, not the status's code."""
    by_gateway = page.split('id="by-gateway"')[1].split("</table>")[0]
    assert "WeChat Pay" in by_gateway and "Alipay" in by_gateway and "wechatpay" not in by_gateway
    with app.test_request_context(), force_locale("zh_CN"):
        notes = {line["payment_id"]: line["note"] for line in reconcile(day, day).discrepancies}
        for rail, payment_id in lost.items():
            status = status_label(db.session.get(Payment, payment_id).status)
            assert notes[payment_id] == gettext(
                "the ledger's payment is %(status)s: money taken but the fines not marked paid", status=status)
            assert status != db.session.get(Payment, payment_id).status
            row = page.split(f'data-payment="{payment_id}" data-gateway="{rail}"')[1].split("</tr>")[0]
            assert "not settled" in row


def test_a_wechat_pay_bill_that_does_not_match_its_sha1_is_refused_and_nothing_is_recorded(
        app, finepay, simulators, runner, client, day):
    paid = {rail: paid_at_rail(app, finepay, simulators, rail, 1) for rail in RAILS}
    settled([pid for ids in paid.values() for pid in ids])
    next_morning(simulators, day)
    simulators["wechatpay"].admin("faults", {"kind": "bill_hash_mismatch", "count": 2, "path": "/v3/bill/tradebill"})

    code, output = fetch(runner, day)  # from cron
    refreshed = sign_in_as(client, make_supervisor()).post(  # and from the console's button
        "/staff/reconciliation/fetch", data={"start": day.isoformat(), "end": day.isoformat()})
    page = client.get(refreshed.headers["Location"]).get_data(as_text=True)
    report = reconcile(day, day)

    refusal = f"the {day} bill does not match its SHA1: refused"
    assert code == 1 and f"wechatpay: nothing was recorded: {refusal}" in output
    assert translated(app, "Fetching from %(gateway)s failed (%(reason)s): nothing was recorded from it, and the "
                           "report still shows what was fetched from it before. Try again later; if it fails "
                           "again, tell the technical staff.",
                      gateway=translated(app, "WeChat Pay"), reason=refusal) in html.unescape(page)
    assert records("wechatpay") == 0 and section(report, "wechatpay").fetched_at is None
    assert counts(section(report, "alipay")) == {MATCHED: 1}
