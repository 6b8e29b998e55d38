"""Two `notices send` runs at once (threads, each with its own connection) send every message exactly once."""
import threading
import time
from collections import Counter
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from finepay.extensions import db
from notices import services
from notices.models import ACTIVE, Message, Subscription
from notices.notifiers import Notifier, NotifierError, SendReceipt
from tests.conftest import fresh_database, make_app
from tests.factories import make_violation
from tests.notices.helpers import local, today

NUMBERS, PER_NUMBER = 12, 3


class SlowCountingNotifier(Notifier):
    """Takes texts slowly (so the runners overlap), counting each key it takes; every ``flaky``-th call is busy."""

    name = "outbox"

    def __init__(self, flaky=0):
        super().__init__({})
        self.taken = Counter()
        self.calls = 0
        self.flaky = flaky
        self.lock = threading.Lock()

    def send(self, text):
        time.sleep(0.01)
        with self.lock:
            self.calls += 1
            if self.flaky and self.calls % self.flaky == 0:
                raise NotifierError("busy", code="busy", retryable=True)
            self.taken[text.key] += 1
        return SendReceipt(f"slow-{text.key}")


def run_two(app, now):
    """Two `notices send` runs at ``now``, at once; their reports."""
    reports, errors = [], []

    def run():
        with app.app_context():
            try:
                reports.append(services.send_due(now))
            except Exception as error:  # noqa: BLE001 - reported below
                errors.append(error)
            finally:
                db.session.remove()

    runners = [threading.Thread(target=run) for _ in range(2)]
    for runner in runners:
        runner.start()
    for runner in runners:
        runner.join(60)
    assert errors == []
    return reports


def statuses(app):
    with app.app_context():
        found = dict(db.session.execute(select(Message.status, func.count()).group_by(Message.status)).all())
        db.session.remove()
    return found


@pytest.mark.parametrize("kind", ["postgresql", "sqlite"])
def test_two_concurrent_senders_send_each_message_once(request, tmp_path, kind):
    app = make_app(fresh_database(request, tmp_path, kind), NOTICE_DAILY_CAP=PER_NUMBER)
    sender = SlowCountingNotifier()
    app.extensions["finepay.notifiers"] = sender
    now = local(today(), 10)
    with app.app_context():
        for n in range(NUMBERS):
            plate, vin = f"蒙B{n:05d}", f"A{n:05d}"
            db.session.add(Subscription(plate=plate, vin_last6=vin, phone=f"1380000{n:04d}", locale="en",
                                        status=ACTIVE, code_attempts=0, confirmed_at=now - timedelta(days=1)))
            db.session.commit()
            for _ in range(PER_NUMBER + 1):  # one more than the cap: it must be held, by exactly one runner
                make_violation(plate=plate, vin_last6=vin, decision_date=today())
        db.session.remove()

    reports = run_two(app, now)

    with app.app_context():
        total = db.session.execute(select(func.count()).select_from(Message)).scalar_one()
        by_status = dict(db.session.execute(select(Message.status, func.count()).group_by(Message.status)).all())
        db.session.remove()
        db.engine.dispose()
    duplicated = sum(count - 1 for count in sender.taken.values() if count > 1)
    assert duplicated == 0
    assert total == NUMBERS * (PER_NUMBER + 1)  # each reminder queued once, though both runners planned
    assert sum(sender.taken.values()) == NUMBERS * PER_NUMBER == by_status["sent"]
    assert by_status["held"] == NUMBERS  # the cap held, across both runners
    assert sum(r.sent for r in reports) == NUMBERS * PER_NUMBER
    assert all(r.sent for r in reports) or kind == "sqlite"  # on PostgreSQL both runners really worked


def test_a_night_and_a_morning_of_two_concurrent_senders_with_a_flaky_provider(request, tmp_path):
    """The figures of docs/notices.md: held at night, sent in the morning, retried, never duplicated."""
    app = make_app(fresh_database(request, tmp_path, "postgresql"), NOTICE_DAILY_CAP=PER_NUMBER,
                   NOTICE_RETRY_SECONDS=300)
    sender = SlowCountingNotifier(flaky=7)
    app.extensions["finepay.notifiers"] = sender
    night = local(today(), 23)
    with app.app_context():
        for n in range(NUMBERS):
            plate, vin = f"蒙C{n:05d}", f"C{n:05d}"
            db.session.add(Subscription(plate=plate, vin_last6=vin, phone=f"1390000{n:04d}", locale="zh_CN",
                                        status=ACTIVE, code_attempts=0, confirmed_at=night - timedelta(days=1)))
            db.session.commit()
            for _ in range(PER_NUMBER):
                make_violation(plate=plate, vin_last6=vin, decision_date=today())
        db.session.remove()
    due = NUMBERS * PER_NUMBER

    at_night = run_two(app, night)
    assert sum(r.held_quiet for r in at_night) == due and sum(r.sent for r in at_night) == 0
    morning = run_two(app, local(today() + timedelta(days=1), 8))
    retried = sum(r.retrying for r in morning)
    assert retried > 0 and sum(r.sent for r in morning) == due - retried
    later = run_two(app, local(today() + timedelta(days=1), 8, 5))

    assert sum(r.sent for r in later) == retried
    assert statuses(app) == {"sent": due}
    assert sum(count - 1 for count in sender.taken.values()) == 0  # duplicated: none
    assert len(sender.taken) == due
    print(f"\nfigures: {due} sent, {due} held in quiet hours, {retried} retried, 0 duplicated")
