"""Tencent Cloud SMS (API 3.0, ``SendSms`` of version 2021-01-11) through Tencent's own Python client.

The client (tencentcloud-sdk-python-sms) signs each request with TC3-HMAC-SHA256;
this adapter picks the approved template for the text's kind and language, fills
it with the text's params, passes FinePay's key as SessionContext (so a text whose
outcome is unknown can be found again with ``PullSmsSendStatusByPhoneNumber``) and
turns Tencent's answer into FinePay's words. Replies ("TD") arrive at FinePay's
reply callback (POST /notices/replies/tencent/<TENCENT_SMS_CALLBACK_TOKEN>, set
as the 回复回调 URL in Tencent's console): its body carries no signature, so the
unguessable token in the URL is what proves it came from there.
"""
import hmac
from datetime import UTC, datetime

from flask import abort
from flask_babel import lazy_gettext as _l
from tencentcloud.common import credential
from tencentcloud.common.exception.tencent_cloud_sdk_exception import TencentCloudSDKException
from tencentcloud.common.profile.client_profile import ClientProfile
from tencentcloud.common.profile.http_profile import HttpProfile
from tencentcloud.sms.v20210111 import models, sms_client

from finepay.settings import Setting, SettingsError, env_int
from notices.notifiers import InboundReply, Notifier, NotifierError, ReplyRejected, SendReceipt

# Tencent's codes for a request it did not take and may take later; any other error code is a refusal.
_RETRYABLE_PREFIXES = ("InternalError", "RequestLimitExceeded", "LimitExceeded", "AuthFailure", "ServerNetworkError",
                       "ResourceUnavailable")


def parse_templates(raw):
    """"code.zh_CN=1234,code.en=1235,..." -> {("code", "zh_CN"): "1234", ...}."""
    templates = {}
    for item in filter(None, (part.strip() for part in (raw or "").split(","))):
        key, _, template_id = item.partition("=")
        kind, _, locale = key.strip().partition(".")
        if not (kind and locale and template_id.strip().isdigit()):
            raise SettingsError(f"TENCENT_SMS_TEMPLATES: {item!r} is not KIND.LOCALE=TEMPLATE_ID (e.g. code.zh_CN=1234)")
        templates[(kind, locale)] = template_id.strip()
    return templates


def _retryable(code):
    return (code or "").startswith(_RETRYABLE_PREFIXES)


class TencentSmsNotifier(Notifier):
    """Texts through Tencent Cloud SMS; replies through its 回复回调."""

    name = "tencent"
    label = _l("Tencent Cloud SMS")
    settings = (
        Setting("TENCENT_SMS_SECRET_ID", secret=True),
        Setting("TENCENT_SMS_SECRET_KEY", secret=True),
        Setting("TENCENT_SMS_SDK_APP_ID"),  # 短信 SdkAppId, e.g. 1400006666
        Setting("TENCENT_SMS_SIGN_NAME"),  # the approved 签名, e.g. 包头交警
        Setting("TENCENT_SMS_TEMPLATES"),  # KIND.LOCALE=TEMPLATE_ID,... (every kind in every language)
        Setting("TENCENT_SMS_REGION", "ap-guangzhou"),
        Setting("TENCENT_SMS_ENDPOINT", "sms.tencentcloudapi.com"),  # host[:port]; a stand-in's in tests
        Setting("TENCENT_SMS_SCHEME", "https"),
        Setting("TENCENT_SMS_TIMEOUT_SECONDS", 10, env_int),
        Setting("TENCENT_SMS_CALLBACK_TOKEN", secret=True),  # the last part of the reply callback's URL
    )

    @classmethod
    def init_app(cls, app):
        config = app.config
        missing = [name for name in ("TENCENT_SMS_SECRET_ID", "TENCENT_SMS_SECRET_KEY", "TENCENT_SMS_SDK_APP_ID",
                                     "TENCENT_SMS_SIGN_NAME", "TENCENT_SMS_TEMPLATES") if not config.get(name)]
        if missing:
            raise SettingsError(f"NOTICE_SENDER=tencent needs {', '.join(missing)}")
        if len(config.get("TENCENT_SMS_CALLBACK_TOKEN") or "") < 16:
            raise SettingsError("TENCENT_SMS_CALLBACK_TOKEN must be a random value of at least 16 characters")
        parse_templates(config["TENCENT_SMS_TEMPLATES"])

    def __init__(self, config):
        super().__init__(config)
        self.templates = parse_templates(config["TENCENT_SMS_TEMPLATES"])
        http = HttpProfile(endpoint=config["TENCENT_SMS_ENDPOINT"], reqTimeout=config["TENCENT_SMS_TIMEOUT_SECONDS"])
        http.scheme = config["TENCENT_SMS_SCHEME"]
        self.client = sms_client.SmsClient(
            credential.Credential(config["TENCENT_SMS_SECRET_ID"], config["TENCENT_SMS_SECRET_KEY"]),
            config["TENCENT_SMS_REGION"], ClientProfile(httpProfile=http))

    def _call(self, method, request):
        try:
            return getattr(self.client, method)(request)
        except TencentCloudSDKException as error:
            text = f"{error.code}: {error.message}"[:250]
            if error.code == "ClientNetworkError":
                # Refused before connecting: not sent. Anything later (a read timeout): it may have been.
                sent_nothing = any(word in str(error.message) for word in ("NewConnectionError", "ConnectTimeout",
                                                                            "Connection refused"))
                raise NotifierError(text, code="unreachable", retryable=sent_nothing,
                                    outcome_unknown=not sent_nothing) from None
            if error.code == "ServerNetworkError":  # an HTTP status other than 200 (a proxy's 502): unknown
                raise NotifierError(text, code="server_error", outcome_unknown=True) from None
            raise NotifierError(text, code=error.code or "error", retryable=_retryable(error.code)) from None

    def send(self, text):
        template = self.templates.get((text.kind, text.locale)) or self.templates.get((text.kind, "zh_CN"))
        if template is None:
            raise NotifierError(f"TENCENT_SMS_TEMPLATES has no template for {text.kind}.{text.locale}",
                                code="no_template", retryable=True)
        request = models.SendSmsRequest()
        request.PhoneNumberSet = [f"+86{text.phone}"]
        request.SmsSdkAppId = self.config["TENCENT_SMS_SDK_APP_ID"]
        request.SignName = self.config["TENCENT_SMS_SIGN_NAME"]
        request.TemplateId = template
        request.TemplateParamSet = [str(value) for value in text.params]
        request.SessionContext = text.key
        response = self._call("SendSms", request)
        status = (response.SendStatusSet or [None])[0]
        if status is None:
            raise NotifierError("SendSms answered without a status for the number", code="no_status",
                                outcome_unknown=True)
        if status.Code != "Ok":
            raise NotifierError(f"{status.Code}: {status.Message}"[:250], code=status.Code,
                                retryable=_retryable(status.Code))
        return SendReceipt(provider_message_id=status.SerialNo)

    def find_sent(self, text, since):
        request = models.PullSmsSendStatusByPhoneNumberRequest()
        request.PhoneNumber = f"+86{text.phone}"
        request.SmsSdkAppId = self.config["TENCENT_SMS_SDK_APP_ID"]
        request.BeginTime = int(since.timestamp())
        request.EndTime = int(datetime.now(UTC).timestamp())
        request.Offset = 0
        request.Limit = 100
        response = self._call("PullSmsSendStatusByPhoneNumber", request)
        for report in response.PullSmsSendStatusSet or []:
            if report.SessionContext == text.key:
                return SendReceipt(provider_message_id=report.SerialNo)
        return None

    def parse_reply(self, request):
        token = request.view_args.get("token", "")
        if not hmac.compare_digest(str(token), self.config["TENCENT_SMS_CALLBACK_TOKEN"]):
            abort(404)  # as for any unknown URL: the token is not confirmed or denied
        body = request.get_json(silent=True)
        if not isinstance(body, dict) or not isinstance(body.get("mobile"), str) \
                or not isinstance(body.get("text"), str):
            raise ReplyRejected("a reply needs mobile and text")
        if str(body.get("nationcode", "86")) != "86":
            raise ReplyRejected("a reply from outside mainland China")
        return InboundReply(phone=body["mobile"], text=body["text"][:200])

    def reply_answer(self, accepted):
        # Tencent's documented answer: result 0 and "OK", else an error code and message.
        return ({"result": 0, "errmsg": "OK"} if accepted else {"result": 1, "errmsg": "rejected"}), 200
