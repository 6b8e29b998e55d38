"""The Stripe adapter: PaymentIntents over Stripe's REST API with ``requests``.

It speaks Stripe's form encoding (``metadata[payment_id]=...``), sends an
``Idempotency-Key`` on every POST, retries only where a retry cannot move money
twice, and turns Stripe's statuses and errors into FinePay's words.
``STRIPE_API_BASE`` points it at Stripe or at a local fake such as localstripe.
"""
import hashlib
import hmac
import json
import random
import time
from datetime import UTC, datetime

import requests
from flask import Blueprint
from flask_babel import lazy_gettext as _l
from urllib3.exceptions import ConnectTimeoutError, NewConnectionError

from finepay import security
from finepay.observability import current_request_id
from finepay.settings import Setting, env_bool, env_decimal, env_int
from payments.gateways import (
    CANCELED,
    DECLINE_CODES,
    FAILED,
    PROCESSING,
    REQUIRES_ACTION,
    REQUIRES_PAYMENT_METHOD,
    SUCCEEDED,
    SURFACE_BROWSER,
    GatewayError,
    GatewayEvent,
    GatewayIntent,
    GatewayRefund,
    GatewayTransaction,
    NextAction,
    PaymentGateway,
    WebhookVerificationError,
)

DEFAULT_API_BASE = "https://api.stripe.com"
DEFAULT_JS_URL = "https://js.stripe.com/v3/"
# Stripe.js opens its 3-D Secure frames from here.
HOOKS_ORIGIN = "https://hooks.stripe.com"
WEBHOOK_TOLERANCE_SECONDS = 300
MAX_BACKOFF_SECONDS = 4.0

_STATUS_WORDS = {
    "requires_confirmation": REQUIRES_PAYMENT_METHOD,
    "requires_action": REQUIRES_ACTION,
    # FinePay captures automatically; an authorised, uncaptured intent has not taken money yet.
    "requires_capture": PROCESSING,
    "processing": PROCESSING,
    "succeeded": SUCCEEDED,
    "canceled": CANCELED,
}

# Stripe's error and decline codes that FinePay words differently; the rest of
# DECLINE_CODES carry the same name at Stripe.
_DECLINE_ALIASES = {
    "payment_intent_authentication_failure": "authentication_failed",
    "authentication_required": "authentication_failed",
    "invalid_cvc": "incorrect_cvc",
    "invalid_number": "incorrect_number",
    "card_velocity_exceeded": "limit_exceeded",
    "withdrawal_count_limit_exceeded": "limit_exceeded",
    "amount_too_large": "limit_exceeded",
    "currency_not_supported": "card_not_supported",
    "transaction_not_allowed": "card_not_supported",
    "try_again_later": "processing_error",
    "issuer_not_available": "processing_error",
}

_REFUND_STATUSES = {"succeeded": "succeeded", "failed": "failed", "canceled": "failed"}


def encode_form(params, prefix=None):
    """Flatten ``params`` into Stripe's bracket notation as a list of (key, value) pairs."""
    pairs = []
    items = params.items() if isinstance(params, dict) else enumerate(params)
    for key, value in items:
        name = f"{prefix}[{key}]" if prefix else str(key)
        if value is None:
            continue
        if isinstance(value, dict):
            pairs.extend(encode_form(value, name))
        elif isinstance(value, list | tuple):
            if any(isinstance(v, dict | list | tuple) for v in value):
                pairs.extend(encode_form(list(value), name))
            else:
                pairs.extend((f"{name}[]", _scalar(v)) for v in value)
        else:
            pairs.append((name, _scalar(value)))
    return pairs


def _scalar(value):
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _id_of(value):
    """An id whether Stripe sent it as a string or as an expanded object."""
    if isinstance(value, dict):
        return value.get("id")
    return value or None


def _metadata_payment_id(obj):
    if not isinstance(obj, dict):
        return None
    return (obj.get("metadata") or {}).get("payment_id") or None


def decline_code(error):
    """FinePay's decline code for a Stripe ``last_payment_error`` or ``error`` object."""
    for candidate in (error.get("decline_code"), error.get("code")):
        if candidate in DECLINE_CODES:
            return candidate
        if candidate in _DECLINE_ALIASES:
            return _DECLINE_ALIASES[candidate]
    return "card_declined"


def _is_before_send(exc):
    """Whether a connection error happened before any byte of the request left us."""
    if isinstance(exc, requests.ConnectTimeout | requests.exceptions.SSLError | requests.exceptions.ProxyError):
        return True
    reason = exc.args[0] if exc.args else None
    reason = getattr(reason, "reason", reason)  # urllib3's MaxRetryError wraps the cause
    return isinstance(reason, NewConnectionError | ConnectTimeoutError)


# Stripe's part of the pay page: its template and the script that drives Stripe.js.
bp = Blueprint("stripe", __name__, template_folder="templates", static_folder="static",
               static_url_path="/static/gateways/stripe")


class StripeGateway(PaymentGateway):
    """PaymentIntents at Stripe (or at localstripe through STRIPE_API_BASE)."""

    name = "stripe"
    label = _l("Bank card")
    intent_event_types = frozenset({
        "payment_intent.succeeded", "payment_intent.payment_failed", "payment_intent.canceled",
        "payment_intent.processing", "payment_intent.requires_action", "payment_intent.amount_capturable_updated",
    })
    # A refund Stripe accepted as pending reports its outcome in these.
    refund_event_types = frozenset({"refund.updated", "charge.refund.updated", "refund.failed"})
    #: Stripe's page size for list calls (its maximum).
    list_page_size = 100
    settings = (
        Setting("STRIPE_API_KEY", secret=True),
        Setting("STRIPE_PUBLISHABLE_KEY"),
        Setting("STRIPE_API_BASE", DEFAULT_API_BASE),
        Setting("STRIPE_WEBHOOK_SECRET", secret=True),
        Setting("STRIPE_JS_URL", DEFAULT_JS_URL),
        Setting("STRIPE_API_VERSION"),
        Setting("STRIPE_CONNECT_TIMEOUT", "3.05", env_decimal),
        Setting("STRIPE_READ_TIMEOUT", "20", env_decimal),
        Setting("STRIPE_MAX_RETRIES", 2, env_int),
        # localstripe refuses created[...] filters on its list endpoints.
        Setting("STRIPE_LIST_CREATED_FILTER", True, env_bool),
    )

    def __init__(self, config):
        super().__init__(config)
        self.api_key = config.get("STRIPE_API_KEY") or ""
        self.api_base = (config.get("STRIPE_API_BASE") or DEFAULT_API_BASE).rstrip("/")
        self.webhook_secret = config.get("STRIPE_WEBHOOK_SECRET") or None
        self.publishable_key = config.get("STRIPE_PUBLISHABLE_KEY")
        self.currency = config.get("CURRENCY", "CNY")
        self.timeout = (float(config.get("STRIPE_CONNECT_TIMEOUT", 3.05)), float(config.get("STRIPE_READ_TIMEOUT", 20)))
        self.max_retries = int(config.get("STRIPE_MAX_RETRIES", 2))
        self.retry_backoff = float(config.get("STRIPE_RETRY_BACKOFF", 0.5))
        # localstripe refuses created[...] filters on its list endpoints; we filter by date ourselves anyway.
        self.server_date_filter = bool(config.get("STRIPE_LIST_CREATED_FILTER", True))
        #: Replaceable in tests, so that backoff costs no time and the clock can be moved.
        self.sleep = time.sleep
        self.clock = time.time
        self.session = requests.Session()
        self.session.headers.update({
            "Authorization": f"Bearer {self.api_key}",
            "User-Agent": "FinePay (requests)",
            "Accept": "application/json",
        })
        if config.get("STRIPE_API_VERSION"):
            self.session.headers["Stripe-Version"] = config["STRIPE_API_VERSION"]

    # -- PaymentGateway ---------------------------------------------------------------------------

    def create_intent(self, *, payment_id, amount, currency, idempotency_key, description=None,
                      expires_at=None) -> GatewayIntent:
        """Create a card PaymentIntent tagged with FinePay's payment id.

        ``description`` is not sent: localstripe rejects it, and the payment id in
        the metadata already leads staff to the payment. Nor is ``expires_at``: a
        PaymentIntent does not expire, FinePay cancels it when the quote runs out.
        """
        if isinstance(amount, bool) or not isinstance(amount, int) or amount <= 0:
            raise ValueError(f"amount must be a positive integer of minor units, not {amount!r}")
        body = self._post("/v1/payment_intents", {
            "amount": amount,
            "currency": (currency or self.currency).lower(),
            "payment_method_types": ["card"],
            "metadata": {"payment_id": str(payment_id)},
        }, idempotency_key=idempotency_key)
        return self._intent(body)

    def confirm_intent(self, intent_id, *, payment_method, idempotency_key) -> GatewayIntent:
        """Attach ``payment_method`` with an update, then confirm (localstripe cannot do both at once).

        A declined card is an answer, not an error: the intent comes back FAILED.
        """
        path = f"/v1/payment_intents/{intent_id}"
        try:
            self._post(path, {"payment_method": payment_method}, idempotency_key=f"{idempotency_key}:attach")
            body = self._post(f"{path}/confirm", {}, idempotency_key=idempotency_key)
        except _CardDeclined as declined:
            return self._declined_intent(intent_id, declined.error)
        except _InvalidRequest as refused:
            outcome = self._refused_confirm(intent_id, refused)
            if isinstance(outcome, GatewayIntent):
                return outcome
            raise outcome from None
        return self._intent(body)

    def retrieve_intent(self, intent_id) -> GatewayIntent:
        """The intent as Stripe knows it now."""
        return self._intent(self._get(f"/v1/payment_intents/{intent_id}"))

    def cancel_intent(self, intent_id, *, idempotency_key) -> GatewayIntent:
        """Cancel an unfinished intent; an intent that succeeded meanwhile is returned as it is."""
        try:
            body = self._post(f"/v1/payment_intents/{intent_id}/cancel", {}, idempotency_key=idempotency_key)
        except _InvalidRequest:
            # Refused because it succeeded (or was canceled) meanwhile: report the intent as it is.
            intent = self._settled_or_none(intent_id)
            if intent is not None:
                return intent
            raise
        return self._intent(body)

    def refund(self, intent_id, *, amount, idempotency_key, reason=None) -> GatewayRefund:
        """Refund ``amount`` minor units of a succeeded intent.

        FinePay's reason goes into the refund's metadata: Stripe's own ``reason``
        takes three fixed words, and localstripe refuses the field.
        """
        if isinstance(amount, bool) or not isinstance(amount, int) or amount <= 0:
            raise ValueError(f"amount must be a positive integer of minor units, not {amount!r}")
        params = {"payment_intent": intent_id, "amount": amount}
        if reason:
            params["metadata"] = {"reason": str(reason)[:500]}
        body = self._post("/v1/refunds", params, idempotency_key=idempotency_key)
        return self._refund(body, intent_id, amount)

    def retrieve_refund(self, intent_id, refund_id) -> GatewayRefund:
        """The refund as Stripe knows it now (a pending one settles later)."""
        return self._refund(self._get(f"/v1/refunds/{refund_id}"), intent_id)

    def _refund(self, body, intent_id, amount=0):
        return GatewayRefund(
            id=body["id"],
            intent_id=_id_of(body.get("payment_intent")) or intent_id,
            amount=int(body.get("amount") or amount),
            currency=str(body.get("currency") or self.currency).upper(),
            status=_REFUND_STATUSES.get(body.get("status"), "pending"),
        )

    def list_transactions(self, start, end) -> list[GatewayTransaction]:
        """Succeeded charges and live refunds created in [start, end), oldest first."""
        if start.tzinfo is None or end.tzinfo is None:
            raise ValueError("list_transactions needs time zone aware datetimes")
        lo, hi = start.timestamp(), end.timestamp()
        transactions = []
        for charge in self._list("/v1/charges", lo, hi):
            if charge.get("status") != "succeeded" or charge.get("captured") is False or charge.get("paid") is False:
                continue
            transactions.append(self._transaction(charge, "charge", int(charge.get("amount_captured") or charge["amount"])))
        for refund in self._list("/v1/refunds", lo, hi):
            status = refund.get("status")
            if status not in ("succeeded", "pending"):
                continue
            transactions.append(self._transaction(refund, "refund", int(refund["amount"]), status=status))
        transactions.sort(key=lambda t: (t.created_at, t.kind, t.id))
        return transactions

    def parse_webhook(self, payload: bytes, headers) -> GatewayEvent:
        """Verify ``Stripe-Signature`` (HMAC-SHA256, 5-minute tolerance) and return the event."""
        if not self.webhook_secret:
            raise WebhookVerificationError("STRIPE_WEBHOOK_SECRET is not configured; unsigned webhooks are refused")
        if isinstance(payload, str):
            payload = payload.encode("utf-8")
        header = _header(headers, "Stripe-Signature")
        if not header:
            raise WebhookVerificationError("missing Stripe-Signature header")
        timestamp, signatures = _parse_signature_header(header)
        expected = hmac.new(self.webhook_secret.encode("utf-8"), timestamp.encode("ascii") + b"." + payload,
                            hashlib.sha256).hexdigest()
        if not any(hmac.compare_digest(expected, sig) for sig in signatures):
            raise WebhookVerificationError("signature does not match the payload")
        if abs(self.clock() - int(timestamp)) > WEBHOOK_TOLERANCE_SECONDS:
            raise WebhookVerificationError("signature timestamp is outside the 5-minute tolerance")
        try:
            event = json.loads(payload)
        except (UnicodeDecodeError, ValueError):
            raise WebhookVerificationError("webhook body is not JSON") from None
        if not isinstance(event, dict) or not isinstance(event.get("id"), str) or not isinstance(event.get("type"), str):
            raise WebhookVerificationError("webhook body is not a Stripe event")
        obj = (event.get("data") or {}).get("object") if isinstance(event.get("data"), dict) else None
        intent_id = payment_id = refund_id = None
        if isinstance(obj, dict):
            if obj.get("object") == "payment_intent":
                intent_id = obj.get("id")
            elif obj.get("object") in ("charge", "refund"):
                intent_id = _id_of(obj.get("payment_intent"))
                payment_id = _metadata_payment_id(obj.get("payment_intent"))
            if obj.get("object") == "refund":
                refund_id = obj.get("id")
            payment_id = _metadata_payment_id(obj) or payment_id
        return GatewayEvent(id=event["id"], type=event["type"], intent_id=intent_id, payment_id=payment_id,
                            refund_id=refund_id, data=event)

    def client_fields(self, intent) -> dict:
        """What Stripe.js needs on the payer's page."""
        return {"client_secret": intent.client_secret, "publishable_key": self.publishable_key}

    # -- The payer's page ------------------------------------------------------------------------

    @classmethod
    def init_app(cls, app):
        """Register Stripe's pay-page fragment and let the pages load Stripe.js, its frames and its API."""
        app.register_blueprint(bp)
        js_origin = security.origin(app.config.get("STRIPE_JS_URL")) or security.origin(DEFAULT_JS_URL)
        security.allow_sources(app, "script-src", js_origin)
        security.allow_sources(app, "frame-src", js_origin, HOOKS_ORIGIN)
        security.allow_sources(app, "connect-src",
                               security.origin(app.config.get("STRIPE_API_BASE")) or DEFAULT_API_BASE)

    def serves(self, payer):
        """A browser, with the publishable key Stripe.js needs; no card reader is set up."""
        return payer.surface == SURFACE_BROWSER and bool(self.publishable_key)

    def next_action(self, payment, payer):
        """Card details in Stripe's own field (Stripe.js) on FinePay's pages; no card reader is set up."""
        if payer.surface != SURFACE_BROWSER or not self.publishable_key:
            return None
        return NextAction.enter_card(
            "stripe/pay.html", publishable_key=self.publishable_key, client_secret=payment.client_secret,
            js_url=self.config.get("STRIPE_JS_URL") or DEFAULT_JS_URL,
        )

    # -- Stripe's words to FinePay's -------------------------------------------------------------

    def _intent(self, pi) -> GatewayIntent:
        status = pi.get("status")
        error = pi.get("last_payment_error") or None
        if status == "requires_payment_method":
            word = FAILED if error else REQUIRES_PAYMENT_METHOD
        else:
            # An unknown status is treated as not final: FinePay reads the intent again later.
            word = _STATUS_WORDS.get(status, PROCESSING)
        charge = pi.get("latest_charge")
        if not charge:
            older = (pi.get("charges") or {}).get("data") or []  # API versions before 2022-11-15
            charge = older[0] if older else None
        next_action = pi.get("next_action") or {}
        redirect = next_action.get("redirect_to_url") or {}
        return GatewayIntent(
            id=pi["id"],
            status=word,
            amount=int(pi["amount"]),
            currency=str(pi.get("currency") or self.currency).upper(),
            amount_received=self._amount_received(pi, charge),
            payment_id=_metadata_payment_id(pi),
            client_secret=pi.get("client_secret"),
            next_action_url=redirect.get("url") if word == REQUIRES_ACTION else None,
            charge_id=_id_of(charge),
            failure_code=decline_code(error) if word == FAILED else None,
            failure_message=error.get("message") if word == FAILED else None,
        )

    @staticmethod
    def _amount_received(pi, charge):
        if pi.get("amount_received") is not None:
            return int(pi["amount_received"])
        # localstripe has no amount_received: take it from the charge when it was expanded.
        if isinstance(charge, dict):
            if charge.get("status") == "succeeded" and charge.get("captured", True):
                return int(charge.get("amount_captured") or charge.get("amount") or 0)
            return 0
        return int(pi["amount"]) if pi.get("status") == "succeeded" else 0

    def _declined_intent(self, intent_id, error):
        """The FAILED intent after a 402 on confirm: from the error body, or read again."""
        pi = error.get("payment_intent") if isinstance(error.get("payment_intent"), dict) else None
        if pi is None:
            pi = self._get(f"/v1/payment_intents/{intent_id}")
        if pi.get("status") in ("requires_payment_method", "requires_confirmation", None):
            error_fields = {k: error.get(k) for k in ("code", "decline_code", "message") if error.get(k)}
            pi = {**pi, "status": "requires_payment_method",
                  "last_payment_error": pi.get("last_payment_error") or error_fields or {"code": "card_declined"}}
        return self._intent(pi)

    def _refused_confirm(self, intent_id, refused):
        """The intent, or the error to raise, for a refused attach or confirm, judged by the intent's state.

        Confirming twice (two tabs, a retry) is refused once the intent has moved
        on; the intent is then the answer. Otherwise the payment method is usually
        what the gateway could not use.
        """
        try:
            intent = self.retrieve_intent(intent_id)
        except GatewayError:
            return refused
        if intent.status in (SUCCEEDED, PROCESSING):
            return intent
        if intent.status == CANCELED:
            return GatewayError("The intent was canceled.", code="intent_canceled",
                                gateway_message=refused.gateway_message, status=409)
        # The intent exists, so a missing resource is the payment method (localstripe answers 404 for it).
        if refused.param == "payment_method" or refused.http_status == 404:
            return GatewayError("The gateway cannot use this payment method.", code="invalid_payment_method",
                                gateway_message=refused.gateway_message, status=422)
        return refused

    def _settled_or_none(self, intent_id):
        """The intent if it has reached a state a refused confirm/cancel should simply report."""
        try:
            intent = self.retrieve_intent(intent_id)
        except GatewayError:
            return None
        return intent if intent.status in (SUCCEEDED, PROCESSING, CANCELED) else None

    def _transaction(self, obj, kind, amount, status=SUCCEEDED):
        pi = obj.get("payment_intent")
        return GatewayTransaction(
            id=obj["id"],
            kind=kind,
            intent_id=_id_of(pi),
            payment_id=_metadata_payment_id(obj) or _metadata_payment_id(pi),
            amount=amount,
            currency=str(obj.get("currency") or self.currency).upper(),
            created_at=datetime.fromtimestamp(int(obj["created"]), UTC),
            status=status,
        )

    def _list(self, path, lo, hi):
        """Every object of a list endpoint created in [lo, hi), following ``starting_after``."""
        params = {"limit": self.list_page_size, "expand": ["data.payment_intent"]}
        if self.server_date_filter:
            params["created"] = {"gte": int(lo), "lt": int(hi) if hi == int(hi) else int(hi) + 1}
        seen = set()
        while True:
            page = self._get(path, params)
            data = page.get("data") or []
            for obj in data:
                if obj["id"] not in seen and lo <= int(obj["created"]) < hi:
                    seen.add(obj["id"])
                    yield obj
            if not page.get("has_more") or not data:
                return
            params = {**params, "starting_after": data[-1]["id"]}

    # -- HTTP ------------------------------------------------------------------------------------

    def _get(self, path, params=None):
        return self._request("GET", path, params or {})

    def _post(self, path, params, *, idempotency_key):
        if not idempotency_key:
            raise ValueError("every POST to Stripe needs an idempotency key")
        return self._request("POST", path, params, idempotency_key=str(idempotency_key))

    def _request(self, method, path, params, idempotency_key=None):
        """Send one API call with safe retries; return the JSON body or raise GatewayError."""
        url = self.api_base + path
        form = encode_form(params)
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
        if request_id := current_request_id():
            headers["X-Request-Id"] = request_id  # ties Stripe's request log to ours
        is_post = method == "POST"
        attempt = 0
        while True:
            retry_after = None
            try:
                response = self.session.request(
                    method, url, headers=headers, timeout=self.timeout,
                    data=form if is_post else None, params=None if is_post else form,
                )
            except requests.RequestException as exc:
                error, retry = self._transport_error(method, path, exc)
            else:
                body = _json_or_none(response)
                if 200 <= response.status_code < 300:
                    if isinstance(body, dict):
                        return body
                    error, retry = GatewayError(
                        f"Stripe answered {response.status_code} to {method} {path} without a JSON object",
                        outcome_unknown=is_post, status=502), False
                else:
                    error, retry = self._http_error(method, path, response, body)
                    retry_after = response.headers.get("Retry-After")
                    # Stripe says outright whether a retry can help; believe it.
                    should_retry = response.headers.get("Stripe-Should-Retry")
                    if should_retry in ("true", "false"):
                        retry = error.retryable = should_retry == "true"
            if not retry or attempt >= self.max_retries:
                raise error
            attempt += 1
            self.sleep(self._backoff(attempt, retry_after))

    def _transport_error(self, method, path, exc):
        """A GatewayError for a requests exception, and whether sending again here is safe."""
        kind = type(exc).__name__
        is_post = method == "POST"
        if isinstance(exc, requests.ConnectionError) and _is_before_send(exc):
            # Nothing was sent, so sending again cannot double anything.
            return GatewayError(f"could not reach Stripe for {method} {path} ({kind})", code="gateway_unavailable",
                                retryable=True, status=503), True
        if isinstance(exc, requests.Timeout):
            error = GatewayError(f"Stripe did not answer {method} {path} in time ({kind})", code="gateway_timeout",
                                 retryable=True, outcome_unknown=is_post, status=504)
        else:
            error = GatewayError(f"the connection to Stripe failed during {method} {path} ({kind})",
                                 code="gateway_unavailable", retryable=True, outcome_unknown=is_post, status=502)
        # A POST that may have arrived is never sent again here: ``payments sync`` finds out.
        return error, not is_post

    def _http_error(self, method, path, response, body):
        """A GatewayError for an error answer, and whether sending again here is safe."""
        status = response.status_code
        error = (body or {}).get("error") if isinstance(body, dict) else None
        error = error if isinstance(error, dict) else {}
        gateway_message = self._redact(error.get("message") or (response.text or "")[:300] or None)
        if status == 402:
            return _CardDeclined(error, gateway_message), False
        if status == 429 or status >= 500:
            # Stripe treats a 500 as indeterminate; a 429 or 503 was refused before it ran.
            unknown = method == "POST" and status not in (429, 503)
            # The same Idempotency-Key makes a repeated POST safe at Stripe.
            return GatewayError(f"Stripe answered {status} to {method} {path}", code="gateway_unavailable",
                                gateway_message=gateway_message, retryable=True, outcome_unknown=unknown,
                                status=503 if status in (429, 503) else 502), True
        if status in (401, 403):
            return GatewayError(f"Stripe refused FinePay's credentials for {method} {path} ({status})",
                                code="gateway_auth", gateway_message=gateway_message, status=502), False
        if status == 409:
            return GatewayError(f"Stripe reported a conflicting request for {method} {path}", code="gateway_conflict",
                                gateway_message=gateway_message, retryable=True, outcome_unknown=method == "POST",
                                status=503), False
        return _InvalidRequest(f"Stripe refused {method} {path} ({status})", gateway_message, status,
                               error.get("param")), False

    def _backoff(self, attempt, retry_after=None):
        if retry_after is not None:
            try:
                return min(max(float(retry_after), 0.0), MAX_BACKOFF_SECONDS)
            except ValueError:
                pass
        delay = min(self.retry_backoff * 2 ** (attempt - 1), MAX_BACKOFF_SECONDS)
        return delay * (0.5 + random.random() / 2)

    def _redact(self, text):
        if text and self.api_key:
            text = text.replace(self.api_key, "[redacted]")
        return text


class _CardDeclined(GatewayError):
    """A 402 from Stripe; confirm turns it into a FAILED intent, anything else raises it."""

    def __init__(self, error, gateway_message):
        super().__init__("the card was declined", code=decline_code(error), gateway_message=gateway_message)
        self.error = error


class _InvalidRequest(GatewayError):
    """A 400 or 404: Stripe understood the request and refused it."""

    def __init__(self, message, gateway_message, http_status, param):
        super().__init__(message, code="invalid_request", gateway_message=gateway_message, status=502)
        self.http_status = http_status
        self.param = param


def _json_or_none(response):
    try:
        return response.json()
    except ValueError:
        return None


def _header(headers, name):
    value = headers.get(name) if hasattr(headers, "get") else None
    if value is None and hasattr(headers, "items"):
        wanted = name.lower()
        value = next((v for k, v in headers.items() if k.lower() == wanted), None)
    return value


def _parse_signature_header(header):
    timestamp, signatures = None, []
    for part in str(header).split(","):
        key, sep, value = part.strip().partition("=")
        if not sep:
            raise WebhookVerificationError("malformed Stripe-Signature header")
        if key == "t":
            timestamp = value.strip()
        elif key == "v1":
            signatures.append(value.strip())
    if not timestamp or not timestamp.isdigit() or not timestamp.isascii():
        raise WebhookVerificationError("Stripe-Signature header has no valid timestamp")
    if not signatures:
        raise WebhookVerificationError("Stripe-Signature header has no v1 signature")
    return timestamp, signatures
