"""`notices send`: what is due goes once, quiet hours hold it, the daily cap spreads it, failures are retried."""
from datetime import timedelta

import pytest

from finepay.extensions import db
from notices import services
from notices.models import CANCELED, DUE_SOON, FAILED, HELD, LATE_FEE_STARTS, NEW_VIOLATION, RETRYING, SENT, UNKNOWN
from tests.factories import make_violation
from tests.notices.helpers import (
    PHONE,
    PLATE,
    ScriptedNotifier,
    local,
    reminders,
    subscribe,
    today,
    use_sender,
    vehicle,
)

pytestmark = pytest.mark.usefixtures("app")


def test_a_new_violation_is_sent_once_with_the_plate_and_vin_tail_and_no_link(app, client):
    vehicle()
    subscribe(client)
    fresh = make_violation(decision_date=today(), fine=20000)
    now = local(today(), 10)

    first = services.send_due(now)
    second = services.send_due(now + timedelta(minutes=10))

    assert (first.queued, first.sent, second.queued, second.sent) == (1, 1, 0, 0)
    [message] = reminders()
    assert (message.kind, message.status, message.violation_id) == (NEW_VIOLATION, SENT, fresh.id)
    assert PLATE in message.body and "2345" in message.body and "¥200.00" in message.body
    assert "http" not in message.body and "www" not in message.body
    assert message.provider_message_id == f"outbox-notice-{message.id}"


def test_the_subscribers_language(app, client):
    vehicle()
    subscribe(client, language="zh_CN")
    make_violation(decision_date=today())
    services.send_due(local(today(), 10))
    [message] = reminders()
    assert "车辆识别代号后4位2345" in message.body and "链接" in message.body and "TD" in message.body
    assert " " not in message.body.split("¥")[1]  # no space between Chinese sentences


def test_quiet_hours_hold_until_morning(app, client):
    vehicle()
    subscribe(client)
    make_violation(decision_date=today())
    night = local(today(), 23, 30)

    held = services.send_due(night)
    [message] = reminders()
    assert (held.sent, held.held_quiet, message.status, message.hold_reason) == (0, 1, HELD, "quiet_hours")
    assert message.next_attempt_at == local(today() + timedelta(days=1), 8)

    assert services.send_due(local(today() + timedelta(days=1), 7, 59)).sent == 0
    morning = services.send_due(local(today() + timedelta(days=1), 8))
    assert (morning.sent, reminders()[0].status) == (1, SENT)


def test_at_most_the_daily_cap_per_number(app, client):
    vehicle()
    subscribe(client)
    for _ in range(5):
        make_violation(decision_date=today())

    day_one = services.send_due(local(today(), 9))
    assert (day_one.sent, day_one.held_cap) == (3, 2)
    assert sorted(m.status for m in reminders()) == [HELD, HELD, SENT, SENT, SENT]
    assert services.send_due(local(today(), 15)).sent == 0  # still today: the cap holds

    day_two = services.send_due(local(today() + timedelta(days=1), 8, 5))
    assert day_two.sent == 2
    assert [m.status for m in reminders()] == [SENT] * 5


def test_three_days_before_the_late_fee_and_the_day_it_starts(app, client):
    vehicle()
    subscribe(client)
    # Recorded before the number subscribed: no "new violation", only the reminders. Grace: 15 days.
    soon = make_violation(decision_date=today() - timedelta(days=13), fine=10000)  # late fee starts in 3 days
    starts = make_violation(decision_date=today() - timedelta(days=16), fine=10000)  # starts today
    make_violation(decision_date=today() - timedelta(days=30), fine=10000)  # long started: nothing stale
    for violation in (soon, starts):
        violation.created_at -= timedelta(days=30)
    db.session.commit()

    services.send_due(local(today(), 9))

    kinds = {(m.violation_id, m.kind) for m in reminders()}
    assert kinds == {(soon.id, DUE_SOON), (starts.id, LATE_FEE_STARTS)}
    late = next(m for m in reminders() if m.kind == LATE_FEE_STARTS)
    assert "¥103.00" in late.body  # the fine and the first day's 3 %


def test_a_violation_paid_before_its_message_goes_is_not_reminded(app, client):
    vehicle()
    subscribe(client)
    violation = make_violation(decision_date=today())
    services.send_due(local(today(), 23))  # held for the night
    violation.status = "paid"
    db.session.commit()
    report = services.send_due(local(today() + timedelta(days=1), 8))
    assert (report.sent, report.canceled, reminders()[0].status) == (0, 1, CANCELED)


def test_a_failed_send_is_retried_with_backoff_then_given_up_on(app, client):
    vehicle()
    subscribe(client)
    make_violation(decision_date=today())
    app.config.update(NOTICE_MAX_ATTEMPTS=3, NOTICE_RETRY_SECONDS=300)
    sender = use_sender(app, ScriptedNotifier(script=["retry", "retry", "retry"]))
    now = local(today(), 9)

    first = services.send_due(now)
    [message] = reminders()
    assert (first.retrying, message.status, message.attempts) == (1, RETRYING, 1)
    assert message.next_attempt_at == now + timedelta(seconds=300)
    assert services.send_due(now + timedelta(seconds=299)).retrying == 0  # not yet
    services.send_due(now + timedelta(seconds=300))
    assert reminders()[0].next_attempt_at == now + timedelta(seconds=900)  # twice as long
    last = services.send_due(now + timedelta(seconds=900))
    assert (last.failed, reminders()[0].status, sender.sent) == (1, FAILED, [])
    # A supervisor sends it again once the provider is back; it goes once.
    assert services.retry_now(reminders()[0].id, "boss", now=now + timedelta(hours=1))
    assert services.send_due(now + timedelta(hours=1)).sent == 1
    assert len(sender.sent) == 1


def test_an_unknown_outcome_is_looked_up_not_sent_again(app, client):
    vehicle()
    subscribe(client)
    make_violation(decision_date=today())
    sender = use_sender(app, ScriptedNotifier(script=["unknown"]))
    now = local(today(), 9)

    assert services.send_due(now).unknown == 1
    assert reminders()[0].status == UNKNOWN
    later = services.send_due(now + timedelta(minutes=10))

    [message] = reminders()
    assert (later.found_sent, later.sent, message.status, sender.lookups) == (1, 0, SENT, 1)
    assert len(sender.sent) == 1  # taken once, never sent twice
    assert message.provider_message_id == f"scripted-notice-{message.id}"


def test_a_send_the_provider_has_no_record_of_goes_again_after_the_recheck_window(app, client):
    vehicle()
    subscribe(client)
    make_violation(decision_date=today())
    sender = use_sender(app, ScriptedNotifier(script=["unknown"]))
    sender.find_sent = lambda text, since: None  # the provider never got it
    now = local(today(), 9)
    services.send_due(now)
    assert services.send_due(now + timedelta(minutes=29)).sent == 0
    assert services.send_due(now + timedelta(minutes=30)).sent == 1
    assert reminders()[0].status == SENT


def test_a_refusal_is_not_retried(app, client):
    vehicle()
    subscribe(client)
    make_violation(decision_date=today())
    use_sender(app, ScriptedNotifier(script=["refuse"]))
    report = services.send_due(local(today(), 9))
    assert (report.failed, reminders()[0].status) == (1, FAILED)
    assert services.send_due(local(today(), 10)).sent == 0


def test_a_stopped_number_gets_nothing(app, client):
    vehicle()
    subscribe(client)
    assert services.stop_by_reply("+86 138-0013-8000", " td ") == 1
    make_violation(decision_date=today())
    assert services.send_due(local(today(), 9)).queued == 0


def test_the_command_prints_the_figures(app, client, runner):
    vehicle()
    subscribe(client)
    make_violation(decision_date=today())
    result = runner.invoke(args=["notices", "send"])
    assert result.exit_code == 0, result.output
    assert "1 queued" in result.output
    assert PHONE not in result.output


def test_reminders_follow_the_due_date_a_case_set_and_skip_what_is_held_or_planned(app, client):
    from violations.services import approve_plan

    vehicle()
    subscribe(client)
    # Each of these would have its late fee start today by the policy's own date (decided 16 days ago) ...
    old = {"decision_date": today() - timedelta(days=16), "fine": 10000}
    contested = make_violation(contest_case="ABCDEFGHJK12", fee_stopped_on=today() - timedelta(days=1), **old)
    deferred = make_violation(due_on=today() + timedelta(days=60), fee_carried=500, **old)
    upheld = make_violation(due_on=today() - timedelta(days=1), fee_carried=500, **old)  # its new late fee: today
    planned = make_violation(**old)
    for violation in (contested, deferred, upheld, planned):
        violation.created_at -= timedelta(days=30)
    db.session.commit()
    approve_plan(planned.id, due_dates=[today() + timedelta(days=30), today() + timedelta(days=60)], actor="boss")

    services.send_due(local(today(), 9))

    # ... but an open contest holds it, a decision moved its due date, or a plan pays it: only the upheld one is
    # reminded, with what it carries (¥5.00 owed at the decision) and the first day's 3 %.
    [late] = reminders()
    assert (late.violation_id, late.kind) == (upheld.id, LATE_FEE_STARTS)
    assert "¥108.00" in late.body


def test_a_violation_contested_before_its_message_goes_is_not_reminded(app, client):
    vehicle()
    subscribe(client)
    violation = make_violation(decision_date=today())
    services.send_due(local(today(), 23))  # held for the night
    violation.contest_case, violation.fee_stopped_on = "ABCDEFGHJK12", today()
    db.session.commit()
    report = services.send_due(local(today() + timedelta(days=1), 8))
    assert (report.sent, report.canceled, reminders()[0].status) == (0, 1, CANCELED)
