"""The Tencent Cloud SMS sender against a local stand-in of its API (which checks the TC3-HMAC-SHA256 signature)."""
import re
from datetime import timedelta

import pytest
from sqlalchemy import select
from tencentcloud.common.credential import Credential

from finepay.extensions import db
from notices import services
from notices.models import ACTIVE, CODE, RETRYING, SENT, STOPPED, UNKNOWN, Message, Subscription
from notices.notifiers.tencent.standin import TencentSmsStandIn
from tests.factories import make_violation
from tests.notices.helpers import PHONE, PLATE, VIN, local, reminders, today, vehicle

SECRET_ID, SECRET_KEY, APP_ID, SIGN = "AKIDstandin", "standin-secret-key", "1400123456", "包头交警"
TEMPLATES = {"code.zh_CN": "2001", "code.en": "2002", "new_violation.zh_CN": "2003", "new_violation.en": "2004",
             "due_soon.zh_CN": "2005", "due_soon.en": "2006", "late_fee_starts.zh_CN": "2007",
             "late_fee_starts.en": "2008"}
CALLBACK_TOKEN = "reply-token-0123456789abcdef"


@pytest.fixture
def standin():
    """The stand-in on 127.0.0.1, stopped after the test."""
    server = TencentSmsStandIn(secret_id=SECRET_ID, secret_key=SECRET_KEY, sdk_app_id=APP_ID, sign_name=SIGN,
                               templates=TEMPLATES.values(), timeout_seconds=2)
    endpoint = server.start()
    server.endpoint = endpoint
    yield server
    server.stop()


@pytest.fixture
def app_config(standin):
    return {
        "NOTICE_SENDER": "tencent", "TENCENT_SMS_SECRET_ID": SECRET_ID, "TENCENT_SMS_SECRET_KEY": SECRET_KEY,
        "TENCENT_SMS_SDK_APP_ID": APP_ID, "TENCENT_SMS_SIGN_NAME": SIGN,
        "TENCENT_SMS_TEMPLATES": ",".join(f"{k}={v}" for k, v in TEMPLATES.items()),
        "TENCENT_SMS_ENDPOINT": standin.endpoint, "TENCENT_SMS_SCHEME": "http", "TENCENT_SMS_TIMEOUT_SECONDS": 1,
        "TENCENT_SMS_CALLBACK_TOKEN": CALLBACK_TOKEN,
    }


def _subscribe(client, standin, language="en"):
    response = client.post("/notices/subscribe", data={"plate": "蒙B·12345", "vin_last6": VIN, "phone": PHONE,
                                                        "language": language})
    assert response.status_code == 200, response.text
    sms = standin.sent[-1]
    assert (sms["phone"], sms["template"]) == ("+86" + PHONE, TEMPLATES[f"code.{'en' if language == 'en' else 'zh_CN'}"])
    token = re.search(r'name="token" value="([^"]+)"', response.text).group(1)
    assert client.post("/notices/confirm", data={"token": token, "code": sms["params"][0]}).status_code == 200


def test_code_and_reminder_reach_the_provider_signed_and_once(app, client, runner, standin):
    vehicle()
    _subscribe(client, standin)
    code = db.session.execute(select(Message).where(Message.kind == CODE)).scalar_one()
    assert "******" in code.body and standin.sent[0]["params"][0] not in code.body  # no code at rest
    violation = make_violation(decision_date=today(), fine=20000)
    app.config["NOTICE_QUIET_HOURS"] = ""  # the command runs at the real time of day

    result = runner.invoke(args=["notices", "send"])
    assert result.exit_code == 0, result.output
    assert runner.invoke(args=["notices", "send"]).exit_code == 0  # a second run sends nothing more

    assert standin.refused == []
    reminder = standin.sent[-1]
    due = today() + timedelta(days=15)
    assert len(standin.sent) == 2
    assert reminder["template"] == TEMPLATES["new_violation.en"]
    assert reminder["params"] == [PLATE, "2345", "200.00", due.isoformat()]
    [message] = reminders()
    assert (message.status, message.provider_message_id, message.violation_id) == (SENT, reminder["serial"],
                                                                                    violation.id)
    assert reminder["session"] == f"notice-{message.id}"


def test_a_wrong_key_is_refused_by_the_signature_check_and_retried(app, client, standin):
    vehicle()
    _subscribe(client, standin)
    make_violation(decision_date=today())
    app.extensions["finepay.notifiers"].client.credential = Credential(SECRET_ID, "not-the-key")

    report = services.send_due(local(today(), 9))

    assert standin.refused == ["AuthFailure.SignatureFailure"]
    [message] = reminders()
    assert (report.retrying, message.status) == (1, RETRYING)
    assert "AuthFailure.SignatureFailure" in message.last_error


def test_a_timeout_is_looked_up_with_pull_status_not_sent_again(app, client, standin):
    vehicle()
    _subscribe(client, standin)
    make_violation(decision_date=today())
    standin.faults.append("timeout")
    now = local(today(), 9)
    standin.clock = now.timestamp  # the provider takes the text at FinePay's 09:00, whatever the wall clock says

    assert services.send_due(now).unknown == 1
    assert reminders()[0].status == UNKNOWN
    later = services.send_due(now + timedelta(minutes=5))

    [message] = reminders()
    assert (later.found_sent, later.sent, message.status) == (1, 0, SENT)
    assert [s["session"] for s in standin.sent].count(f"notice-{message.id}") == 1
    assert message.provider_message_id == standin.sent[-1]["serial"]


def test_a_busy_provider_is_retried_and_a_daily_limit_at_the_provider_too(app, client, standin):
    vehicle()
    _subscribe(client, standin)
    make_violation(decision_date=today())
    standin.faults.extend(["InternalError.Timeout", "LimitExceeded.PhoneNumberDailyLimit"])
    now = local(today(), 9)
    assert services.send_due(now).retrying == 1
    assert services.send_due(now + timedelta(minutes=5)).retrying == 1
    assert services.send_due(now + timedelta(minutes=15)).sent == 1
    assert reminders()[0].attempts == 3


@pytest.mark.parametrize("word", ["TD", "退订", "stop"])
def test_a_stop_reply_through_the_callback_stops_the_number(app, client, standin, word):
    vehicle()
    _subscribe(client, standin)
    url = f"/notices/replies/tencent/{CALLBACK_TOKEN}"
    reply = {"extend": "", "mobile": PHONE, "nationcode": "86", "sign": SIGN, "text": word, "time": 1764500000}

    assert client.post("/notices/replies/tencent/wrong-token-0123456789", json=reply).status_code == 404
    assert db.session.execute(select(Subscription.status)).scalar_one() == ACTIVE
    other = client.post(url, json={**reply, "text": "hello"})
    assert (other.status_code, other.json) == (200, {"result": 0, "errmsg": "OK"})
    assert db.session.execute(select(Subscription.status)).scalar_one() == ACTIVE

    response = client.post(url, json=reply)

    assert (response.status_code, response.json) == (200, {"result": 0, "errmsg": "OK"})
    db.session.expire_all()
    assert db.session.execute(select(Subscription.status)).scalar_one() == STOPPED
    make_violation(decision_date=today())
    assert services.send_due(local(today(), 9)).queued == 0


def test_a_malformed_reply_is_answered_in_tencents_shape(app, client):
    response = client.post(f"/notices/replies/tencent/{CALLBACK_TOKEN}", json={"mobile": 13800138000})
    assert (response.status_code, response.json["result"]) == (200, 1)


def test_the_tencent_sender_needs_its_settings(app_config):
    from finepay.settings import SettingsError
    from tests.conftest import make_app

    with pytest.raises(SettingsError, match="TENCENT_SMS_SIGN_NAME"):
        make_app("sqlite://", **{**app_config, "TENCENT_SMS_SIGN_NAME": ""})
