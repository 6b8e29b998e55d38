"""A local stand-in for Tencent Cloud SMS (API 3.0): ``SendSms`` and ``PullSmsSendStatusByPhoneNumber``.

It checks each request as Tencent does: the TC3-HMAC-SHA256 signature over the
signed headers and body (computed here independently of Tencent's client), a
timestamp within 5 minutes, a known SdkAppId, sign name and template, and it
answers in Tencent's shape (HTTP 200 with ``Response``; an ``Error`` inside for a
refused request). Texts it takes are kept in ``sent``. ``faults`` scripts what
the next requests meet: an error code, a per-number status code, or ``"timeout"``
(the text is taken but the answer comes too late, so the caller cannot know).
Tests start it on 127.0.0.1 and stop it; ``flask --app wsgi simulate tencentsms``
runs one by hand.
"""
import hashlib
import hmac
import json
import threading
import time
import uuid
from datetime import UTC, datetime

import click
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

SERVICE = "sms"
VERSION = "2021-01-11"
MAX_SKEW_SECONDS = 300


def _sha256_hex(data):
    return hashlib.sha256(data).hexdigest()


def _hmac(key, message):
    return hmac.new(key, message.encode(), hashlib.sha256).digest()


def tc3_signature(secret_key, *, method, headers, signed_headers, body, timestamp, scope_date):
    """The TC3-HMAC-SHA256 signature of a request, per Tencent Cloud's API 3.0 signing document."""
    canonical_headers = "".join(f"{name}:{headers.get(name, '').strip().lower()}\n" for name in signed_headers)
    canonical_request = "\n".join([method, "/", "", canonical_headers, ";".join(signed_headers), _sha256_hex(body)])
    string_to_sign = "\n".join(["TC3-HMAC-SHA256", str(timestamp), f"{scope_date}/{SERVICE}/tc3_request",
                                _sha256_hex(canonical_request.encode())])
    secret_date = _hmac(("TC3" + secret_key).encode(), scope_date)
    secret_signing = _hmac(_hmac(secret_date, SERVICE), "tc3_request")
    return hmac.new(secret_signing, string_to_sign.encode(), hashlib.sha256).hexdigest()


class TencentSmsStandIn:
    """The stand-in's state and its WSGI app."""

    def __init__(self, *, secret_id, secret_key, sdk_app_id, sign_name, templates, timeout_seconds=2.0):
        self.secrets = {secret_id: secret_key}
        self.sdk_app_id = sdk_app_id
        self.sign_name = sign_name
        self.templates = set(templates)
        self.timeout_seconds = timeout_seconds
        self.sent = []  # every text taken: dict(phone, template, params, session, serial, at)
        self.refused = []  # (action, error code) of every request refused
        self.faults = []  # what the next SendSms requests meet, first first
        # When a text is taken, in epoch seconds: a test that sends at a chosen local time sets it to that
        # time, so that the status lookup's window (from when FinePay claimed the text) finds it.
        self.clock = time.time
        self.lock = threading.Lock()
        self.server = None
        self.thread = None

    # --- the API -----------------------------------------------------------------------------------------

    def _error(self, code, message):
        self.refused.append(code)
        return {"Response": {"Error": {"Code": code, "Message": message}, "RequestId": str(uuid.uuid4())}}

    def _check_signature(self, request, body):
        auth = request.headers.get("Authorization", "")
        try:
            algorithm, rest = auth.split(" ", 1)
            fields = dict(part.strip().split("=", 1) for part in rest.split(","))
            secret_id, scope_date, service, terminator = fields["Credential"].split("/")
            signed_headers = fields["SignedHeaders"].split(";")
            timestamp = int(request.headers["X-TC-Timestamp"])
        except (ValueError, KeyError):
            return "AuthFailure.InvalidAuthorization", "the Authorization header is malformed"
        if algorithm != "TC3-HMAC-SHA256" or service != SERVICE or terminator != "tc3_request" \
                or "host" not in signed_headers or "content-type" not in signed_headers:
            return "AuthFailure.InvalidAuthorization", "not a TC3-HMAC-SHA256 authorization for sms"
        if abs(time.time() - timestamp) > MAX_SKEW_SECONDS:
            return "AuthFailure.SignatureExpire", "the request's timestamp is more than 5 minutes off"
        if datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d") != scope_date:
            return "AuthFailure.InvalidAuthorization", "the credential's date is not the timestamp's"
        secret_key = self.secrets.get(secret_id)
        if secret_key is None:
            return "AuthFailure.SecretIdNotFound", "unknown SecretId"
        headers = {name.lower(): value for name, value in request.headers.items()}
        expected = tc3_signature(secret_key, method=request.method, headers=headers, signed_headers=signed_headers,
                                 body=body, timestamp=timestamp, scope_date=scope_date)
        if not hmac.compare_digest(expected, fields.get("Signature", "")):
            return "AuthFailure.SignatureFailure", "the signature does not match"
        return None

    def _send_sms(self, params):
        if params.get("SmsSdkAppId") != self.sdk_app_id:
            return self._error("InvalidParameterValue.SdkAppIdNotExist", "SdkAppId not found")
        if params.get("SignName") != self.sign_name:
            return self._error("FailedOperation.SignatureIncorrectOrUnapproved", "sign name not approved")
        if params.get("TemplateId") not in self.templates:
            return self._error("FailedOperation.TemplateIncorrectOrUnapproved", "template not approved")
        fault = self.faults.pop(0) if self.faults else None
        if fault and "." in fault and not fault.startswith("LimitExceeded.PhoneNumber"):
            return self._error(fault, "scripted failure")
        statuses = []
        for phone in params.get("PhoneNumberSet") or []:
            if fault and fault.startswith("LimitExceeded.PhoneNumber"):
                statuses.append({"SerialNo": "", "PhoneNumber": phone, "Fee": 0, "SessionContext":
                                 params.get("SessionContext", ""), "Code": fault, "Message": "scripted",
                                 "IsoCode": "CN"})
                continue
            serial = f"2433:{uuid.uuid4().int % 10**28:028d}"
            self.sent.append({"phone": phone, "template": params["TemplateId"],
                              "params": list(params.get("TemplateParamSet") or []),
                              "session": params.get("SessionContext", ""), "serial": serial, "at": int(self.clock())})
            statuses.append({"SerialNo": serial, "PhoneNumber": phone, "Fee": 1,
                             "SessionContext": params.get("SessionContext", ""), "Code": "Ok",
                             "Message": "send success", "IsoCode": "CN"})
        if fault == "timeout":
            time.sleep(self.timeout_seconds)  # taken, but the caller gives up waiting for the answer
        return {"Response": {"SendStatusSet": statuses, "RequestId": str(uuid.uuid4())}}

    def _pull_status(self, params):
        if params.get("SmsSdkAppId") != self.sdk_app_id:
            return self._error("InvalidParameterValue.SdkAppIdNotExist", "SdkAppId not found")
        begin = int(params.get("BeginTime", 0))
        reports = [{"UserReceiveTime": datetime.fromtimestamp(item["at"], UTC).strftime("%Y-%m-%d %H:%M:%S"),
                    "CountryCode": "86", "SubscriberNumber": item["phone"][3:], "PhoneNumber": item["phone"],
                    "SerialNo": item["serial"], "ReportStatus": "SUCCESS", "Description": "DELIVRD",
                    "SessionContext": item["session"]}
                   for item in self.sent if item["phone"] == params.get("PhoneNumber") and item["at"] >= begin]
        return {"Response": {"PullSmsSendStatusSet": reports, "RequestId": str(uuid.uuid4())}}

    def __call__(self, environ, start_response):
        request = Request(environ)
        body = request.get_data()
        with self.lock:
            problem = None
            if request.method != "POST" or request.path != "/":
                problem = ("UnsupportedOperation", "POST / only")
            elif request.headers.get("X-TC-Version") != VERSION:
                problem = ("InvalidParameter.Version", "version 2021-01-11 only")
            else:
                problem = self._check_signature(request, body)
            if problem:
                answer = self._error(*problem)
            else:
                params = json.loads(body or b"{}")
                action = request.headers.get("X-TC-Action")
                answer = {"SendSms": self._send_sms, "PullSmsSendStatusByPhoneNumber": self._pull_status}.get(
                    action, lambda _params: self._error("InvalidAction", f"unknown action {action}"))(params)
        return Response(json.dumps(answer), content_type="application/json")(environ, start_response)

    # --- running it --------------------------------------------------------------------------------------

    def start(self, port=0):
        """Serve on 127.0.0.1 (a free port by default); returns host:port for TENCENT_SMS_ENDPOINT."""
        self.server = make_server("127.0.0.1", port, self, threaded=True)
        self.thread = threading.Thread(target=self.server.serve_forever, name="tencent-sms-standin", daemon=True)
        self.thread.start()
        return f"127.0.0.1:{self.server.server_port}"

    def stop(self):
        """Stop serving."""
        if self.server is not None:
            self.server.shutdown()
            self.thread.join(timeout=10)
            self.server.server_close()
            self.server = None


@click.command("tencentsms", help="Run the Tencent Cloud SMS stand-in on 127.0.0.1 (prints what it is sent).")
@click.option("--port", default=9281, show_default=True)
@click.option("--secret-id", default="standin-id", show_default=True)
@click.option("--secret-key", default="standin-key", show_default=True)
@click.option("--sdk-app-id", default="1400000000", show_default=True)
@click.option("--sign-name", default="FinePay", show_default=True)
@click.option("--templates", default="1,2,3,4,5,6,7,8", show_default=True, help="Approved template ids.")
def command(port, secret_id, secret_key, sdk_app_id, sign_name, templates):
    standin = TencentSmsStandIn(secret_id=secret_id, secret_key=secret_key, sdk_app_id=sdk_app_id,
                                sign_name=sign_name, templates=templates.split(","))
    click.echo(f"Tencent Cloud SMS stand-in on {standin.start(port)} (TENCENT_SMS_SCHEME=http); Ctrl-C stops it")
    seen = 0
    try:
        while True:
            time.sleep(1)
            for item in standin.sent[seen:]:
                click.echo(json.dumps(item, ensure_ascii=False))
            seen = len(standin.sent)
    except KeyboardInterrupt:
        standin.stop()
