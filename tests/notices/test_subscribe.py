"""Subscribing through the pages: prove the vehicle (as a lookup, same limits), confirm the number's code, stop."""
import re
from datetime import timedelta

import pytest
from flask import g
from sqlalchemy import func, select

from finepay.audit import AuditEntry
from finepay.extensions import db
from notices import services
from notices.models import ACTIVE, CODE, PENDING, STOPPED, Message, Subscription
from tests.conftest import both_languages, translated
from tests.factories import make_violation
from tests.notices.helpers import (
    PHONE,
    VIN,
    ScriptedNotifier,
    last_code,
    local,
    reminders,
    subscribe,
    today,
    use_sender,
    vehicle,
)
from tests.payments.helpers import end_session_after_each_request
from tests.staff.helpers import make_supervisor, make_user, sign_in_as


def start(client, phone=" +86 138-0013-8000 ", vin=VIN, language="en", addr="10.0.0.1"):
    return client.post("/notices/subscribe", data={"plate": "蒙B·12345", "vin_last6": vin, "phone": phone,
                                                    "language": language}, environ_base={"REMOTE_ADDR": addr})


def token_of(response):
    return re.search(r'name="token" value="([^"]+)"', response.text).group(1)


def subscription():
    return db.session.execute(select(Subscription).execution_options(populate_existing=True)).scalar_one()


@both_languages(LOOKUP_RATE_LIMIT="1000/minute")
def test_subscribe_and_confirm_in_each_language(app, client):
    vehicle()
    page = client.get("/notices/")
    assert page.status_code == 200
    assert translated(app, "Reminders by text message") in page.text

    response = start(client)

    assert response.status_code == 200
    assert translated(app, "Enter the code") in response.text
    assert "138****8000" in response.text and PHONE not in response.text
    sub = subscription()
    assert (sub.phone, sub.status, sub.code_attempts) == (PHONE, PENDING, 0)
    assert last_code() not in sub.code_hash  # the code is kept only as an HMAC
    done = client.post("/notices/confirm", data={"token": token_of(response), "code": last_code()})
    assert done.status_code == 200
    assert translated(app, "Reminders are on") in done.text
    assert subscription().status == ACTIVE


@pytest.mark.parametrize(("quiet", "says"), [
    ("21:30-09:00", ("Texts come between %(start)s and %(end)s, never with a link.", {"start": "09:00", "end": "21:30"})),
    ("", ("Texts can come at any hour, never with a link.", {})),
])
def test_the_confirmation_says_the_configured_hours(app, client, quiet, says):
    app.config["NOTICE_QUIET_HOURS"] = quiet
    vehicle()
    response = start(client)
    done = client.post("/notices/confirm", data={"token": token_of(response), "code": last_code()})
    assert translated(app, says[0], **says[1]) in done.text
    assert "8:00" not in done.text


def test_a_wrong_vin_code_is_a_failed_lookup_and_sends_nothing(app, client):
    vehicle()
    response = start(client, vin="B99999")
    assert response.status_code == 404
    assert 'id="no-match"' in response.text
    assert db.session.execute(select(func.count()).select_from(Message)).scalar_one() == 0


def test_an_invalid_number_is_refused_with_a_hint(app, client):
    vehicle()
    for number in ("12345678901", "1380013800", "+1 415 555 0100", "138001380001"):
        response = start(client, phone=number)
        assert response.status_code == 422
        assert 'id="phone-error"' in response.text


class TestLimits:
    @pytest.fixture
    def app_config(self):
        return {"PLATE_FAILURE_RATE_LIMIT": "2/hour", "LOOKUP_RATE_LIMIT": "1000/minute",
                "NOTICE_CODE_RATE_LIMIT": "2/hour"}

    def test_wrong_codes_spend_the_plates_budget_like_a_lookup(self, app, client):
        vehicle()
        assert start(client, vin="B99999", addr="10.0.0.7").status_code == 404
        assert client.post("/lookup", data={"proof": "vin", "plate": "蒙B12345", "vin_last6": "C99999"},
                           environ_base={"REMOTE_ADDR": "10.0.0.8"}).status_code == 404
        response = start(client, addr="10.0.0.9")  # the right code now needs the proof-of-work check too
        assert response.status_code == 429
        assert "data-challenge" in response.text

    def test_codes_per_number_are_limited(self, app, client):
        vehicle()
        assert start(client).status_code == 200
        assert start(client).status_code == 200
        third = start(client)
        assert third.status_code == 429
        assert 'id="refused"' in third.text


def test_wrong_codes_use_up_the_code(app, client):
    vehicle()
    token = token_of(start(client))
    right = last_code()
    wrong = f"{(int(right) + 1) % 10 ** 6:06d}"
    for _ in range(4):
        response = client.post("/notices/confirm", data={"token": token, "code": wrong})
        assert response.status_code == 422 and 'id="wrong-code"' in response.text
    assert client.post("/notices/confirm", data={"token": token, "code": wrong}).status_code == 400
    spent = client.post("/notices/confirm", data={"token": token, "code": right})
    assert spent.status_code == 400 and 'id="code-expired"' in spent.text
    assert subscription().status == PENDING


def test_an_expired_code_is_refused(app, client):
    vehicle()
    start(client)
    sub = subscription()
    later = sub.code_expires_at + timedelta(seconds=1)
    assert services.subscribe_confirm(sub.id, last_code(), now=later) == services.CODE_EXPIRED
    assert services.subscribe_confirm(sub.id, last_code(), now=later - timedelta(seconds=2)) == services.CONFIRMED


def test_a_forged_token_is_refused(app, client):
    vehicle()
    start(client)
    response = client.post("/notices/confirm", data={"token": "1.forged.token", "code": last_code()})
    assert response.status_code == 400
    assert subscription().status == PENDING


def test_stop_from_the_page_says_the_same_whether_or_not_subscribed(app, client):
    vehicle()
    subscribe(client)
    form = {"plate": "蒙B12345", "vin_last6": VIN, "phone": "13900139000"}
    other = client.post("/notices/stop", data=form)
    assert other.status_code == 200 and 'id="stopped"' in other.text
    assert subscription().status == ACTIVE
    mine = client.post("/notices/stop", data={**form, "phone": PHONE})
    assert mine.status_code == 200 and 'id="stopped"' in mine.text
    assert (subscription().status, subscription().stopped_by) == (STOPPED, "page")
    assert client.post("/notices/stop", data={**form, "vin_last6": "B99999"}).status_code == 404


def test_an_active_subscription_changes_language_only_with_the_code(app, client):
    vehicle()
    subscribe(client, language="zh_CN")
    start(client, phone=PHONE, language="en")  # anyone with the plate and VIN code could start this
    assert (subscription().status, subscription().locale) == (ACTIVE, "zh_CN")
    subscribe(client, language="en")  # the number's owner confirms it with the code
    assert (subscription().status, subscription().locale) == (ACTIVE, "en")


def test_subscribing_again_after_stopping(app, client):
    vehicle()
    subscribe(client)
    services.stop_by_reply(PHONE, "退订")
    assert subscription().status == STOPPED
    subscribe(client)
    assert subscription().status == ACTIVE


class TestConsole:
    @pytest.fixture(autouse=True)
    def _each_request_starts_afresh(self, app):
        """As in production: no signed-in user carried over in ``g`` from one test request to the next."""
        @app.before_request
        def _forget_the_previous_user():
            g.pop("_login_user", None)

        end_session_after_each_request(app)

    def test_staff_see_the_outbox_with_masked_numbers(self, app, client):
        vehicle()
        subscribe(client)
        make_violation(decision_date=today())
        services.send_due(local(today(), 23))  # held for the night
        sign_in_as(client, make_user())

        page = client.get("/staff/notices")

        assert page.status_code == 200
        assert "138****8000" in page.text and PHONE not in page.text
        assert 'id="attention"' in page.text and "VIN ending 2345" in page.text
        assert 'href="/staff/notices"' in client.get("/staff/", follow_redirects=True).text  # the console's navigation has it

    def test_the_console_names_the_sender_in_the_clerks_language(self, app, client):
        sign_in_as(client, make_user())

        page = client.get("/staff/notices")

        assert translated(app, "Sender: %(name)s.", name=translated(app, "The console outbox")) \
            in page.text  # the sender's label, not its setting's identifier ("outbox")

    def test_a_supervisor_records_a_stop_reply_for_the_outbox_sender(self, app, client):
        vehicle()
        subscribe(client)
        make_violation(decision_date=today())
        services.send_due(local(today(), 23))
        [held] = reminders()
        clerk = make_user()
        sign_in_as(client, clerk)
        assert client.post(f"/staff/notices/{held.id}/stop").status_code == 403
        sign_in_as(client, make_supervisor())

        response = client.post(f"/staff/notices/{held.id}/stop")

        assert response.status_code == 303
        assert (subscription().status, subscription().stopped_by) == (STOPPED, "staff")
        assert reminders()[0].status == "canceled"
        actions = db.session.execute(select(AuditEntry.action)).scalars().all()
        assert "notice.stopped" in actions


    def test_a_supervisor_sends_a_failed_message_again(self, app, client):
        vehicle()
        subscribe(client)
        make_violation(decision_date=today())
        use_sender(app, ScriptedNotifier(script=["refuse"]))
        services.send_due(local(today(), 9))
        [failed] = reminders()
        assert failed.status == "failed"
        sign_in_as(client, make_supervisor())
        assert "failed" in client.get("/staff/notices").text

        assert client.post(f"/staff/notices/{failed.id}/retry").status_code == 303

        assert reminders()[0].status == "retrying"
        assert services.send_due(local(today() + timedelta(days=1), 9)).sent == 1  # the next run, out of quiet hours
        assert reminders()[0].status == "sent"


def test_replies_go_only_to_the_configured_sender(app, client):
    vehicle()
    subscribe(client)
    assert client.post("/notices/replies/tencent/anything-at-all-here", json={"mobile": PHONE, "text": "TD"}
                       ).status_code == 404
    assert client.post("/notices/replies/outbox/anything", json={"mobile": PHONE, "text": "TD"}).status_code == 400
    assert subscription().status == ACTIVE


def test_code_messages_never_count_against_the_daily_cap(app, client):
    vehicle()
    app.config["NOTICE_DAILY_CAP"] = 1
    subscribe(client)
    make_violation(decision_date=today())
    assert services.send_due(local(today(), 9)).sent == 1
    assert db.session.execute(select(func.count()).select_from(Message).where(Message.kind == CODE)).scalar_one() == 1
