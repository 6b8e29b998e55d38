"""WeChat Pay's and Alipay's notifications against FinePay, through the real simulators on loopback.

A storm (late, duplicated, reordered, replayed and forged notifications), a
lost one made good by `payments sync`, a gunicorn worker killed while the
simulators deliver, a quote that runs out before the payer pays, and a refund
still processing at the gateway. Each test prints a summary line
(`pytest -s`) with what the simulators sent and what FinePay did with it.
Runs on SQLite and PostgreSQL.
"""
import os
import signal
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
import requests
from sqlalchemy import func, select

from finepay.audit import AuditEntry, flush_refusals
from finepay.dbtypes import utcnow
from finepay.extensions import db
from payments.gateways.alipay import adapter as alipay_adapter
from payments.models import Payment, Refund, WebhookEvent
from staff.services import refund as staff_refund
from tests.conftest import fresh_database, make_app, translated
from tests.payments.helpers import overdue_violation, set_payment
from tests.reliability.ledger import ledger_report
from tests.reliability.rails import (
    AlipaySimulator,
    FinePayServer,
    WeChatPaySimulator,
    calling,
    new_payments,
    place_order,
    statuses,
)
from tests.reliability.servers import Gunicorn, free_port, wait_until

RAILS = ("wechatpay", "alipay")
# What each rail's sender takes as "received" (anything else is sent again), and FinePay's refusal.
TAKEN = {"wechatpay": (204, ""), "alipay": (200, "success")}
REFUSED = {"wechatpay": 400, "alipay": 200}
PAID = 6  # two delayed, two duplicated, two reordered
FORGERY_REPEATS = 3
REPLAYS = 3
SETTLE_SECONDS = 30


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request, tmp_path):
    """Both databases (the rest of the reliability suite is PostgreSQL only)."""
    return fresh_database(request, tmp_path, request.param)


@pytest.fixture(scope="module")
def simulators(tmp_path_factory):
    """Both simulators, for the module; WeChat Pay's refunds stay PROCESSING until a test settles them."""
    base = tmp_path_factory.mktemp("rails")
    with WeChatPaySimulator(base) as wechatpay, AlipaySimulator(base) as alipay:
        wechatpay.admin("settings", {"refund_delay": None})
        yield {"wechatpay": wechatpay, "alipay": alipay}


@pytest.fixture
def finepay_server():
    """FinePay's loopback address, chosen before the app is made so that its notify URLs can name it."""
    return FinePayServer(free_port())


def rail_settings(simulators, finepay_url):
    """FinePay with both rails, each pointed at its simulator and notifying ``finepay_url``."""
    settings = {"PAYMENT_GATEWAYS": ",".join(RAILS)}
    for rail, simulator in simulators.items():
        settings.update(simulator.settings(f"{finepay_url}/webhooks/{rail}"))
    return settings


@pytest.fixture
def app_config(simulators, finepay_server):
    """The app fixture's settings: both rails, notified at finepay_server."""
    return rail_settings(simulators, finepay_server.url)


@pytest.fixture
def finepay(app, finepay_server, simulators):
    """FinePay serving the simulators' notifications in this process; the simulators' switches reset after."""
    yield finepay_server.start(app)
    finepay_server.stop()
    for simulator in simulators.values():
        simulator.reset()


def violations(count, series):
    """``count`` overdue violations of the test vehicle; their ids."""
    return [overdue_violation(notice_number=f"15020320261{series:02d}{i:05d}").id for i in range(count)]


def audit_count(action):
    """Audit entries of this action."""
    return db.session.execute(select(func.count()).select_from(AuditEntry).where(AuditEntry.action == action)).scalar()


def refusals(rail):
    """Refused notifications to this rail's webhook, as the audit log counts them (its per-minute tallies written out)."""
    flush_refusals(include_current=True)
    entries = db.session.execute(select(AuditEntry).where(
        AuditEntry.action == "webhook.refused", AuditEntry.subject_id == rail)).scalars()
    return sum(entry.details["count"] for entry in entries)


def webhook_events(rail):
    """Notifications of this rail FinePay recorded (applied, or remembered as changing nothing)."""
    return db.session.execute(
        select(func.count()).select_from(WebhookEvent).where(WebhookEvent.gateway == rail)).scalar()


def intents(payment_ids):
    """The gateway intent (the order at the rail) of each payment, by payment id; the read transaction ended."""
    db.session.expire_all()
    found = {pid: db.session.get(Payment, pid).gateway_intent_id for pid in payment_ids}
    db.session.rollback()
    return found


def answer_of(response):
    """What a sender of notifications reads in FinePay's answer."""
    return response.status_code, response.text


@pytest.mark.parametrize("rail", RAILS)
def test_a_storm_of_late_duplicated_reordered_replayed_and_forged_notifications_settles_each_payment_once(
        app, finepay, simulators, rail):
    simulator, notify_url = simulators[rail], finepay.notify_url(rail)
    *paid, target = new_payments(finepay.url, violations(PAID + 1, 10), rail)
    codes = {pid: place_order(app, pid) for pid in [*paid, target]}
    orders = intents([*paid, target])

    # Two late, two twice, two held and sent newest first; paid at the simulator as the payer's phone would.
    for (mode, extra), pair in zip((("delay", 0.5), ("duplicate", 0), ("reorder", 0)),
                                   (paid[0:2], paid[2:4], paid[4:6]), strict=True):
        simulator.switch(mode, 2, seconds=extra)
        for pid in pair:
            assert simulator.approve(codes[pid]).status_code in (200, 303)
    target_row = db.session.get(Payment, target)
    forgeries = simulator.forgeries(orders[target], target_row.amount)
    forged_answers = Counter()
    for kind, body, headers in forgeries * FORGERY_REPEATS:
        forged_answers[(kind, *answer_of(requests.post(notify_url, data=body, headers=headers, timeout=10)))] += 1
    simulator.release()

    assert wait_until(lambda: set(statuses(paid).values()) == {"succeeded"} and simulator.settled(notify_url),
                      SETTLE_SECONDS), (statuses(paid), simulator.deliveries(notify_url))
    forged_bodies = {body for _kind, body, _headers in forgeries}
    deliveries = [entry for entry in finepay.received(rail) if entry[1] not in forged_bodies]
    delivery_answers = Counter(status for _path, _body, _headers, status, _text in deliveries)
    genuine = {body: headers for _path, body, headers, _status, _text in deliveries}
    replayed = Counter(answer_of(requests.post(notify_url, data=body, headers=headers, timeout=10))
                       for body, headers in list(genuine.items()) * REPLAYS)
    figures = simulator.figures(notify_url)
    report = ledger_report(simulator.charges(list(orders.values())))
    refused = sum(n for (kind, status, text), n in forged_answers.items() if (status, text) != TAKEN[rail])
    mismatches = audit_count("payment.notification_mismatch")
    print(f"\n[reliability] {rail} storm: payments paid {PAID} (+1 unpaid, forged at); simulator notifications "
          f"{figures['notifications']}, sent {figures['sent']} (duplicated {figures['duplicated']}, delayed 2, "
          f"reordered 2, retried {figures['retried']}), FinePay's answers to them "
          f"{dict(delivery_answers)}; forged posts {sum(forged_answers.values())} "
          f"({len(forgeries)} kinds x{FORGERY_REPEATS}): refused {refused}, recorded as amount mismatch {mismatches}; "
          f"replayed {sum(replayed.values())}: answers {dict(replayed)}; applied (events recorded) "
          f"{webhook_events(rail)}; settled {report['settled']}, charged {report['charged']}, double charges "
          f"{report['double_charges']}, lost {report['payments_lost']}, audit disagreements "
          f"{report['audit_disagreements']}")

    assert figures["notifications"] == PAID and figures["duplicated"] >= 2
    assert statuses([target]) == {target: "created"}
    # Every forgery refused (answered so that the rail would send it again) and audited; Alipay hands a verified
    # notification of another amount to FinePay, which records the mismatch, settles nothing and takes it.
    taken_forgeries = {kind for (kind, status, text) in forged_answers if (status, text) == TAKEN[rail]}
    assert taken_forgeries == ({"another amount"} if rail == "alipay" else set()), forged_answers
    assert all(status == REFUSED[rail] for (kind, status, _text) in forged_answers if kind not in taken_forgeries)
    assert refusals(rail) == refused
    assert mismatches == len(taken_forgeries)
    assert set(replayed) == {TAKEN[rail]} and len(genuine) >= PAID
    assert webhook_events(rail) == PAID + mismatches  # each genuine notification applied once, replays and all
    assert (report["charged"], report["settled"], report["violations_paid"]) == (PAID, PAID, PAID), report
    assert report["double_charges"] == report["payments_lost"] == report["audit_disagreements"] == 0, report
    assert report["audit_chain_ok"], report


@pytest.mark.parametrize("rail", RAILS)
def test_a_lost_notification_is_made_good_by_payments_sync(app, finepay, simulators, runner, rail):
    simulator, notify_url = simulators[rail], finepay.notify_url(rail)
    [payment] = new_payments(finepay.url, violations(1, 11), rail)
    simulator.switch("drop", 1)
    assert simulator.approve(place_order(app, payment)).status_code in (200, 303)
    assert wait_until(lambda: simulator.figures(notify_url)["dropped"] == 1, 10)
    before = statuses([payment])[payment]

    sync = runner.invoke(args=["payments", "sync"])

    after = statuses([payment])[payment]
    print(f"\n[reliability] {rail} lost notification: simulator notifications {simulator.figures(notify_url)}, "
          f"FinePay received {len(finepay.received(rail))}; before sync {before}, after `payments sync` {after}")
    assert sync.exit_code == 0, sync.output
    assert (before, after) == ("created", "succeeded")
    assert finepay.received(rail) == [] and audit_count("payment.succeeded") == 1


@pytest.mark.parametrize("rail", RAILS)
def test_a_payment_after_the_quote_ran_out_is_refused_and_the_order_closed(app, finepay, simulators, rail):
    simulator = simulators[rail]
    [payment] = new_payments(finepay.url, violations(1, 12), rail)
    code = place_order(app, payment)
    row = db.session.get(Payment, payment)
    order, expires_at = row.gateway_intent_id, row.expires_at
    simulator.move_clock(expires_at + timedelta(seconds=5))

    late = simulator.approve(code)
    set_payment(payment, expires_at=utcnow() - timedelta(seconds=1))  # FinePay's clock past the quote too
    page = requests.get(f"{finepay.url}/pay/{payment}", headers={"User-Agent": "Mozilla/5.0 (X11; Linux x86_64)"},
                        timeout=30)

    at_gateway = simulator.order_state(order)
    print(f"\n[reliability] {rail} quote expired: the payer's late approval answered {late.status_code}, nothing "
          f"charged; FinePay's "
          f"pay page {page.status_code}, payment {statuses([payment])[payment]}; the order at the simulator "
          f"{at_gateway}; charged {simulator.charges([order])}")
    assert simulator.charges([order]) == {}
    assert statuses([payment]) == {payment: "expired"}
    assert translated(app, "This price has expired") in page.text and 'id="pay-qr"' not in page.text
    assert at_gateway in ("CLOSED", "TRADE_CLOSED")


def paid_by(app, simulator, finepay, rail, series):
    """A payment paid at the simulator and settled by its notification; its id."""
    [payment] = new_payments(finepay.url, violations(1, series), rail)
    assert simulator.approve(place_order(app, payment)).status_code in (200, 303)
    assert wait_until(lambda: statuses([payment])[payment] == "succeeded", SETTLE_SECONDS)
    return payment


def refund_row(payment_id):
    db.session.expire_all()
    return db.session.execute(select(Refund).where(Refund.payment_id == payment_id)).scalar_one()


@pytest.mark.parametrize("settled_by", ["notification", "payments sync"])
def test_a_refund_processing_at_wechat_pay_is_settled_later(app, finepay, simulators, runner, settled_by):
    simulator, notify_url = simulators["wechatpay"], finepay.notify_url("wechatpay")
    payment = paid_by(app, simulator, finepay, "wechatpay", 13)
    amount = db.session.get(Payment, payment).amount

    staff_refund(payment, amount=2000, reason="paid twice at the counter", form_key="f1", actor_name="staff:boss")

    refund = refund_row(payment)
    processing = (refund.status, simulator.refund_state(refund.gateway_refund_id))
    if settled_by == "payments sync":
        simulator.switch("drop", 1)
    simulator.settle_refund(refund.gateway_refund_id)
    if settled_by == "payments sync":
        assert wait_until(lambda: simulator.figures(notify_url)["dropped"] == 1, 10)
        assert runner.invoke(args=["payments", "sync"]).exit_code == 0
    assert wait_until(lambda: refund_row(payment).status == "succeeded", SETTLE_SECONDS), refund_row(payment).status
    kept = simulator.charges([intents([payment])[payment]])
    print(f"\n[reliability] wechatpay refund settled by {settled_by}: FinePay/simulator while processing {processing}; "
          f"then {refund_row(payment).status}/{simulator.refund_state(refund.gateway_refund_id)}; simulator "
          f"notifications {simulator.figures(notify_url)}; kept at the simulator {kept}")
    assert processing == ("pending", "PROCESSING")
    assert kept == {intents([payment])[payment]: amount - 2000}
    assert audit_count("refund.succeeded") == 1


PER_RAIL = 6
QUERY_HELD_SECONDS = 2


def test_a_worker_killed_while_the_simulators_deliver_loses_and_doubles_nothing(database_url, simulators, tmp_path):
    server = Gunicorn(tmp_path, database_url, workers=2, threads=2)
    settings = rail_settings(simulators, server.url)
    server.env.update({name: "true" if value is True else str(value) for name, value in settings.items()})
    app = make_app(database_url, **settings)
    with app.app_context(), server:
        payments = {rail: new_payments(server.url, violations(PER_RAIL, 20 + n), rail) for n, rail in enumerate(RAILS)}
        every = [pid for ids in payments.values() for pid in ids]
        rail_of = {pid: rail for rail, ids in payments.items() for pid in ids}

        def pay(rail, pid):
            with app.app_context():
                return simulators[rail].approve(place_order(app, pid)).status_code

        first, rest = every[::2], every[1::2]
        with ThreadPoolExecutor(4) as pool:
            # The handlers of the first notifications wait on the rail's answer to their query: a worker killed
            # now dies holding some, and the simulators see those connections break.
            for simulator in simulators.values():
                simulator.slow_queries(3, QUERY_HELD_SECONDS)
            approvals = Counter(pool.map(lambda pid: pay(rail_of[pid], pid), first))
            victim = wait_until(lambda: calling(server.worker_pids(), [s.port for s in simulators.values()]),
                                QUERY_HELD_SECONDS)
            assert victim, "no worker was seen handling a notification"
            os.kill(victim, signal.SIGKILL)
            approvals.update(pool.map(lambda pid: pay(rail_of[pid], pid), rest))
        settled = wait_until(lambda: set(statuses(every).values()) == {"succeeded"}
                             and all(s.settled(f"{server.url}/webhooks/{rail}") for rail, s in simulators.items()),
                             SETTLE_SECONDS * 2)
        figures = {rail: s.figures(f"{server.url}/webhooks/{rail}") for rail, s in simulators.items()}
        orders = intents(every)
        kept = {**simulators["wechatpay"].charges([orders[p] for p in payments["wechatpay"]]),
                **simulators["alipay"].charges([orders[p] for p in payments["alipay"]])}
        report = ledger_report(kept)
        log = server.log()
        db.session.remove()
        db.engine.dispose()

    print(f"\n[reliability] worker SIGKILLed while notifications arrive: payments {dict(Counter(approvals))} approved "
          f"at the simulators ({PER_RAIL} a rail), a worker killed (SIGKILL) while it handled one; notifications sent "
          + ", ".join(f"{rail} {f['sent']} for {f['notifications']}, retried {f['retried']}"
                      for rail, f in figures.items())
          + f"; WeChat Pay's tries unanswered (connection broken) {figures['wechatpay']['answers'].get('None', 0)}; "
          f"settled {report['settled']}, charged "
          f"{report['charged']}, double charges {report['double_charges']}, lost {report['payments_lost']}, audit "
          f"disagreements {report['audit_disagreements']}")
    message = f"{report}\n{figures}\n{log}"
    assert settled, message
    assert all(f["notifications"] == PER_RAIL for f in figures.values()), message
    assert sum(f["retried"] for f in figures.values()) > 0, message  # the kill did break a delivery
    assert (report["charged"], report["settled"]) == (2 * PER_RAIL, 2 * PER_RAIL), message
    assert report["double_charges"] == report["payments_lost"] == report["audit_disagreements"] == 0, message
    assert report["audit_chain_ok"], message


def test_an_alipay_refund_whose_answer_was_lost_is_made_once_by_payments_sync(app, finepay, simulators, runner,
                                                                              monkeypatch):
    simulator = simulators["alipay"]
    payment = paid_by(app, simulator, finepay, "alipay", 15)
    amount = db.session.get(Payment, payment).amount
    order = intents([payment])[payment]
    # Alipay makes a refund at once (the simulator has no refund that stays processing): its answer is what is lost.
    monkeypatch.setattr(alipay_adapter, "TIMEOUT", (3.05, 0.5))
    simulator.slow_calls("alipay.trade.refund", 1, 1.5)

    staff_refund(payment, amount=2000, reason="paid twice at the counter", form_key="f1", actor_name="staff:boss")

    made = wait_until(lambda: simulator.charges([order]) == {order: amount - 2000}, 10)  # the held call, done
    pending = (refund_row(payment).status, simulator.charges([order]))
    sync = runner.invoke(args=["payments", "sync"])
    print(f"\n[reliability] alipay refund whose answer timed out: FinePay {pending[0]} while the simulator kept "
          f"{pending[1]}; after `payments sync` FinePay {refund_row(payment).status}, the simulator kept "
          f"{simulator.charges([order])}; simulator notifications {simulator.figures(finepay.notify_url('alipay'))}")
    assert sync.exit_code == 0, sync.output
    assert made and pending == ("pending", {order: amount - 2000})
    assert refund_row(payment).status == "succeeded" and simulator.charges([order]) == {order: amount - 2000}
    assert audit_count("refund.succeeded") == 1
