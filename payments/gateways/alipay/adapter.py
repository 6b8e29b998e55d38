"""The Alipay adapter: RSA2 open-platform calls signed and verified by python-alipay-sdk, over ``requests``.

FinePay's intent is a trade in the adapter's ledger (models.py) until the
payer acts: on a computer or a kiosk ``alipay.trade.precreate`` places it and
its QR code is shown; in a phone browser the payer is sent to
``alipay.trade.wap.pay`` and back. Queries, closes, refunds, notifications and
the daily bill are turned into FinePay's words here, and nothing else in
FinePay knows Alipay's field names. Money crosses as yuan strings ("12.34"),
converted with Decimal only.
"""
import base64
import binascii
import csv
import hashlib
import io
import json
import re
import zipfile
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from urllib.parse import parse_qsl
from zoneinfo import ZoneInfo

import requests
from alipay import AliPay
from alipay.exceptions import AliPayException, AliPayValidationError
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from finepay.dbtypes import utcnow
from finepay.extensions import db
from finepay.settings import Setting, SettingsError, env_bool
from payments.gateways import (
    CANCELED,
    REQUIRES_PAYMENT_METHOD,
    SUCCEEDED,
    SURFACE_KIOSK,
    BillNotReady,
    GatewayError,
    GatewayEvent,
    GatewayIntent,
    GatewayRefund,
    GatewayTransaction,
    NextAction,
    PaymentGateway,
    WebhookVerificationError,
    return_url,
)

from .models import AlipayRefund, AlipayTrade

DEFAULT_GATEWAY_URL = "https://openapi.alipay.com/gateway.do"
NOTIFY_PATH = "/webhooks/alipay"
# Alipay's clock, expiry times and bills are Beijing time, whatever FinePay's BUSINESS_TIMEZONE is.
ALIPAY_TIME = ZoneInfo("Asia/Shanghai")
TIME_FORMAT = "%Y-%m-%d %H:%M:%S"
SUCCESS_CODE = "10000"
TIMEOUT = (3.05, 15)  # connect, read (seconds); the SDK's own read timeout is 15 s
# The bill's download URL lives 30 seconds: it is fetched at once, within that.
BILL_DOWNLOAD_SECONDS = 30
MAX_BILL_BYTES = 64 * 1024 * 1024  # uncompressed, per file of the zip

# Who is paying, by User-Agent: a phone browser goes to mobile web pay; inside WeChat's
# browser Alipay does not open at all (WeChat blocks it), so Alipay is not offered there.
PHONE_MARKERS = ("Mobile", "Android", "iPhone")
WECHAT_BROWSER_MARKER = "MicroMessenger"

# Trade statuses (trade_status) and what FinePay makes of them.
WAIT_BUYER_PAY = "WAIT_BUYER_PAY"
TRADE_SUCCESS = "TRADE_SUCCESS"
TRADE_FINISHED = "TRADE_FINISHED"  # paid, and no longer refundable
TRADE_CLOSED = "TRADE_CLOSED"  # unpaid and closed (or expired), or paid and refunded in full
REFUND_EVENT = "REFUND"  # FinePay's type for a notification that carries a refund

# sub_codes: Alipay busy (the same request may be sent again), FinePay's credentials refused, and refusals
# FinePay names.
RETRYABLE_SUB_CODES = frozenset({"ACQ.SYSTEM_ERROR", "aop.ACQ.SYSTEM_ERROR", "isp.unknow-error"})
AUTH_SUB_CODES = frozenset({"isv.invalid-signature", "isv.missing-signature", "isv.invalid-app-id"})
REFUSAL_CODES = {"ACQ.SELLER_BALANCE_NOT_ENOUGH": "insufficient_balance"}
TRADE_NOT_EXIST = "ACQ.TRADE_NOT_EXIST"
# close: nothing to close yet (never scanned), or no longer closable (paid): the query says which.
CLOSE_SETTLED_SUB_CODES = frozenset({TRADE_NOT_EXIST, "ACQ.TRADE_STATUS_ERROR"})
BILL_NOT_EXIST = "isp.bill_not_exist"

# The trade bill's columns FinePay reads, by heading.
BILL_TRADE_NO = "支付宝交易号"
BILL_OUT_TRADE_NO = "商户订单号"
BILL_KIND = "业务类型"
BILL_FINISHED_AT = "完成时间"
BILL_AMOUNT = "订单金额（元）"
BILL_FEE = "服务费（元）"
BILL_REFUND_NO = "退款批次号/请求号"
BILL_KINDS = {"交易": "charge", "退款": "refund"}
# The trailer's counts: "#交易合计：3笔，商家实收共…" and "#退款合计：1笔，…".
BILL_TOTALS = {"交易": re.compile(r"^#交易合计：(\d+)笔", re.M), "退款": re.compile(r"^#退款合计：(\d+)笔", re.M)}

_SAFE_TRADE_NO = re.compile(r"[A-Za-z0-9_]{1,64}")


def to_yuan(fen):
    """Alipay's amount string ("12.34") for an integer number of fen."""
    if isinstance(fen, bool) or not isinstance(fen, int):
        raise ValueError(f"an amount must be an integer number of fen, not {fen!r}")
    return str(Decimal(fen).scaleb(-2))


def to_fen(yuan):
    """The integer number of fen in an Alipay amount string; ValueError for anything that is not one."""
    try:
        value = Decimal(str(yuan).strip())
    except InvalidOperation:
        raise ValueError(f"not an amount: {yuan!r}") from None
    fen = value.scaleb(2)
    if not value.is_finite() or fen != fen.to_integral_value():
        raise ValueError(f"not an amount in fen: {yuan!r}")
    return int(fen)


def out_trade_no_for(payment_id):
    """The out-trade-number of a payment: its id when Alipay's rules allow it (readable in Alipay's console)."""
    if _SAFE_TRADE_NO.fullmatch(payment_id):
        return payment_id
    return "fp_" + hashlib.sha256(payment_id.encode()).hexdigest()[:40]


def out_request_no_for(idempotency_key):
    """The out-request-number of a refund: one per idempotency key, so a retry is the same refund at Alipay."""
    return "rf_" + hashlib.sha256(str(idempotency_key).encode()).hexdigest()[:40]


def alipay_time(moment):
    """An aware datetime as Alipay writes times: Beijing time, "yyyy-MM-dd HH:mm:ss"."""
    return moment.astimezone(ALIPAY_TIME).strftime(TIME_FORMAT)


def is_phone(user_agent):
    """Whether a browser's User-Agent is a phone's (mobile web pay) rather than a computer's (a QR code)."""
    return any(marker in user_agent for marker in PHONE_MARKERS)


# -- Keys ---------------------------------------------------------------------------------------------------------

def _read_key_file(name, path, load_pem, load_der):
    """The key in the file named by setting ``name``: PEM, or the bare base64 Alipay's console shows.

    Errors name the setting and the file, never the key's bytes.
    """
    try:
        with open(path, "rb") as handle:
            content = handle.read()
    except OSError as error:
        raise SettingsError(f"{name}: cannot read the key file ({error.strerror})") from None
    try:
        if b"-----BEGIN" in content:
            return load_pem(content)
        return load_der(base64.b64decode(b"".join(content.split()), validate=True))
    except (ValueError, TypeError, binascii.Error):
        raise SettingsError(f"{name}: the file does not hold a readable RSA key") from None


def _pem(key, name, key_type):
    if not isinstance(key, key_type) or key.key_size < 2048:
        raise SettingsError(f"{name}: RSA2 needs an RSA key of at least 2048 bits")
    if key_type is rsa.RSAPrivateKey:
        return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                 serialization.NoEncryption()).decode("ascii")
    return key.public_bytes(serialization.Encoding.PEM,
                            serialization.PublicFormat.SubjectPublicKeyInfo).decode("ascii")


def load_keys(config):
    """(FinePay's app private key, Alipay's public key) as PEM, or None when Alipay is not configured.

    Production refuses to start without them; anywhere, a key that is there
    but unreadable, or the wrong kind, is refused (SettingsError naming the
    setting).
    """
    names = ("ALIPAY_APP_ID", "ALIPAY_APP_PRIVATE_KEY_FILE", "ALIPAY_PUBLIC_KEY_FILE")
    missing = [name for name in names if not config.get(name)]
    if missing:
        if config.get("FINEPAY_ENV") == "production" or len(missing) < len(names):
            raise SettingsError(f"Alipay needs {', '.join(missing)}")
        return None
    private_name, public_name = names[1:]
    private_key = _read_key_file(private_name, config[private_name],
                                 lambda data: serialization.load_pem_private_key(data, None),
                                 lambda data: serialization.load_der_private_key(data, None))
    public_key = _read_key_file(public_name, config[public_name],
                                serialization.load_pem_public_key, serialization.load_der_public_key)
    return _pem(private_key, private_name, rsa.RSAPrivateKey), _pem(public_key, public_name, rsa.RSAPublicKey)


class _Client(AliPay):
    """python-alipay-sdk's client, with Beijing-time timestamps; FinePay sends its requests itself (``requests``)."""

    def build_body(self, method, biz_content=None, **kwargs):
        """The SDK's request parameters, stamped in Beijing time (the SDK uses the machine's local time)."""
        data = super().build_body(method, biz_content, **kwargs)
        data["timestamp"] = alipay_time(utcnow())
        return data

    def verified_response(self, raw, response_type):
        """The response object inside Alipay's signed answer, once the SDK has verified Alipay's signature."""
        return self._verify_and_return_sync_response(raw, response_type)


class _AlipayError(GatewayError):
    """Alipay answered and refused; ``sub_code`` is its reason, for the adapter's own decisions."""

    def __init__(self, message, sub_code, **kwargs):
        super().__init__(message, **kwargs)
        self.sub_code = sub_code


def _changes_state(method):
    """Whether a call may have done something when its answer is lost (all but the queries)."""
    return not method.endswith("query")


def _refusal(method, result):
    """The GatewayError for an answer whose code is not 10000."""
    code, sub_code = str(result.get("code") or ""), str(result.get("sub_code") or "")
    # For a refused signature Alipay quotes the whole signed string: staff need its start only.
    gateway_message = f"{code} {sub_code} {result.get('sub_msg') or result.get('msg') or ''}".strip()[:300]
    message = f"Alipay refused {method} ({sub_code or code})"
    if sub_code in RETRYABLE_SUB_CODES or code == "20000":
        return _AlipayError(message, sub_code, code="gateway_unavailable", gateway_message=gateway_message,
                            retryable=True, outcome_unknown=_changes_state(method), status=503)
    if sub_code in AUTH_SUB_CODES:
        return _AlipayError(message, sub_code, code="gateway_auth", gateway_message=gateway_message)
    if sub_code == BILL_NOT_EXIST:
        return BillNotReady(message, gateway_message=gateway_message)
    return _AlipayError(message, sub_code, code=REFUSAL_CODES.get(sub_code, "invalid_request"),
                        gateway_message=gateway_message, status=422)


class AlipayGateway(PaymentGateway):
    """Alipay (支付宝): QR codes on computers and kiosks, mobile web pay on phones, RSA2 throughout."""

    name = "alipay"
    label = _l("Alipay")
    intent_event_types = frozenset({WAIT_BUYER_PAY, TRADE_SUCCESS, TRADE_FINISHED, TRADE_CLOSED})
    refund_event_types = frozenset({REFUND_EVENT})
    settings = (
        Setting("ALIPAY_APP_ID"),
        Setting("ALIPAY_APP_PRIVATE_KEY_FILE", secret=True),
        Setting("ALIPAY_PUBLIC_KEY_FILE"),
        Setting("ALIPAY_SELLER_ID"),
        Setting("ALIPAY_GATEWAY_URL", DEFAULT_GATEWAY_URL),
        Setting("ALIPAY_NOTIFY_URL"),
        Setting("ALIPAY_SIMULATED", False, env_bool),
    )

    def __init__(self, config):
        super().__init__(config)
        self.simulated = bool(config.get("ALIPAY_SIMULATED"))
        self.app_id = config.get("ALIPAY_APP_ID") or ""
        self.seller_id = config.get("ALIPAY_SELLER_ID") or None
        self.gateway_url = config.get("ALIPAY_GATEWAY_URL") or DEFAULT_GATEWAY_URL
        base = (config.get("PUBLIC_BASE_URL") or "").rstrip("/")
        self.notify_url = config.get("ALIPAY_NOTIFY_URL") or (base + NOTIFY_PATH if base else None)
        self.session = requests.Session()
        self.session.headers["User-Agent"] = "FinePay (requests)"
        keys = load_keys(config)
        self.client = None if keys is None else _Client(
            appid=self.app_id, app_notify_url=self.notify_url, app_private_key_string=keys[0],
            alipay_public_key_string=keys[1], sign_type="RSA2",
        )

    @classmethod
    def init_app(cls, app):
        """Check the keys now: production refuses to start without them. FinePay draws Alipay's QR code and link."""
        load_keys(app.config)

    # -- The payer ------------------------------------------------------------------------------------------------

    def serves(self, payer):
        """Every browser but WeChat's own (where Alipay cannot open), and the kiosk; nothing when not configured."""
        return self.client is not None and WECHAT_BROWSER_MARKER not in payer.user_agent

    def next_action(self, payment, payer):
        """A phone goes to mobile web pay and back; a computer or a kiosk shows the precreated trade's QR code."""
        if not self.serves(payer) or not payment.gateway_intent_id:
            return None
        trade = self._trade(payment.gateway_intent_id)
        if payer.surface != SURFACE_KIOSK and is_phone(payer.user_agent):
            return NextAction.redirect(self._wap_url(trade))
        return NextAction.scan_qr(self._placed_qr_code(trade))

    def _wap_url(self, trade):
        """The signed alipay.trade.wap.pay link for a trade: Alipay's page, then back to the payment's page."""
        back = return_url(trade.payment_id)
        biz = {**self._order(trade), "product_code": "QUICK_WAP_PAY", "quit_url": back}
        return f"{self.gateway_url}?{self._signed_query('alipay.trade.wap.pay', biz, return_url=back)}"

    def _placed_qr_code(self, trade):
        """The trade's QR code, precreated once: the same payer kind always gets the same order back."""
        if trade.qr_code:
            return trade.qr_code
        result = self._call("alipay.trade.precreate", self._order(trade))
        qr_code = result.get("qr_code")
        if not qr_code:
            raise GatewayError("Alipay answered precreate without a QR code", code="gateway_error",
                               retryable=True)
        with self._session() as session:
            session.get(AlipayTrade, trade.id).qr_code = qr_code
            session.commit()
        return qr_code

    @staticmethod
    def _order(trade):
        order = {"out_trade_no": trade.id, "total_amount": to_yuan(trade.amount), "subject": trade.subject}
        if trade.expires_at is not None:
            order["time_expire"] = alipay_time(trade.expires_at)
        return order

    # -- Intents --------------------------------------------------------------------------------------------------

    def create_intent(self, *, payment_id, amount, currency, idempotency_key, description=None,
                      expires_at=None) -> GatewayIntent:
        """Record the trade in the ledger; it is placed at Alipay when the payer's page says how they pay.

        One trade per payment (the out-trade-number comes from its id), so a
        repeated call returns the trade recorded first.
        """
        if isinstance(amount, bool) or not isinstance(amount, int) or amount <= 0:
            raise ValueError(f"amount must be a positive integer of minor units, not {amount!r}")
        if currency != "CNY":
            raise GatewayError("Alipay takes payments in CNY only.", code="invalid_request",
                               gateway_message=currency, status=422)
        out_trade_no = out_trade_no_for(payment_id)
        with self._session() as session:
            trade = session.get(AlipayTrade, out_trade_no)
            if trade is None:
                subject = description or _("Traffic fine payment %(payment)s", payment=payment_id)
                trade = AlipayTrade(id=out_trade_no, payment_id=payment_id, amount=amount,
                                    currency=currency, subject=subject[:256], expires_at=expires_at)
                session.add(trade)
                try:
                    session.commit()
                except IntegrityError:  # the same payment raced in: the first trade is the one
                    session.rollback()
                    trade = session.get(AlipayTrade, out_trade_no)
            return self._intent(trade, REQUIRES_PAYMENT_METHOD)

    def retrieve_intent(self, intent_id) -> GatewayIntent:
        """The trade as alipay.trade.query tells it; a trade closed after a full refund is still a captured one."""
        trade = self._trade(intent_id)
        try:
            result = self._call("alipay.trade.query", {"out_trade_no": intent_id})
        except _AlipayError as error:
            if error.sub_code != TRADE_NOT_EXIST:
                raise
            # Never scanned: it can no longer be paid once FinePay closed it or it expired.
            over = trade.closed_at is not None or (trade.expires_at is not None and trade.expires_at <= utcnow())
            return self._intent(trade, CANCELED if over else REQUIRES_PAYMENT_METHOD)
        status, trade_no = result.get("trade_status"), result.get("trade_no")
        if status in (TRADE_SUCCESS, TRADE_FINISHED):
            return self._intent(trade, SUCCEEDED, received=to_fen(result["total_amount"]), trade_no=trade_no)
        if status == TRADE_CLOSED:
            # Closed after it was paid means refunded in full (from FinePay or from Alipay's console): still captured.
            paid = to_fen(result["total_amount"])
            if result.get("send_pay_date") or self._refunded(trade) >= paid:
                return self._intent(trade, SUCCEEDED, received=paid, trade_no=trade_no)
            return self._intent(trade, CANCELED, trade_no=trade_no)
        return self._intent(trade, REQUIRES_PAYMENT_METHOD, trade_no=trade_no)

    def cancel_intent(self, intent_id, *, idempotency_key) -> GatewayIntent:
        """Close the trade at Alipay and return it as it then is (paid meanwhile: SUCCEEDED)."""
        self._trade(intent_id)
        try:
            self._call("alipay.trade.close", {"out_trade_no": intent_id})
        except _AlipayError as error:
            if error.sub_code not in CLOSE_SETTLED_SUB_CODES:
                raise
        with self._session() as session:
            trade = session.get(AlipayTrade, intent_id)
            trade.closed_at = trade.closed_at or utcnow()
            session.commit()
        return self.retrieve_intent(intent_id)

    def _refunded(self, trade):
        """How much of the trade the refunds FinePay asked for sent back, as Alipay reports each one."""
        with self._session() as session:
            request_nos = session.execute(
                select(AlipayRefund.id).where(AlipayRefund.trade_id == trade.id)
            ).scalars().all()
        refunds = (self.retrieve_refund(trade.id, request_no) for request_no in request_nos)
        return sum(refund.amount for refund in refunds if refund.status == SUCCEEDED)

    # -- Refunds --------------------------------------------------------------------------------------------------

    def refund(self, intent_id, *, amount, idempotency_key, reason=None) -> GatewayRefund:
        """alipay.trade.refund with one out-request-number per idempotency key; money moved: succeeded."""
        if isinstance(amount, bool) or not isinstance(amount, int) or amount <= 0:
            raise ValueError(f"amount must be a positive integer of minor units, not {amount!r}")
        self._trade(intent_id)
        out_request_no = out_request_no_for(idempotency_key)
        with self._session() as session:
            # Recorded before it is sent: a refund whose answer is lost still counts once Alipay reports it.
            if session.get(AlipayRefund, out_request_no) is None:
                session.add(AlipayRefund(id=out_request_no, trade_id=intent_id, amount=amount))
                try:
                    session.commit()
                except IntegrityError:
                    session.rollback()
        biz = {"out_trade_no": intent_id, "refund_amount": to_yuan(amount), "out_request_no": out_request_no}
        if reason:
            biz["refund_reason"] = str(reason)[:256]
        result = self._call("alipay.trade.refund", biz)
        if result.get("fund_change") == "Y":
            return GatewayRefund(out_request_no, intent_id, amount, "CNY", SUCCEEDED)
        # "N": this request moved no money now (a repeat, or still processing): the refund query says which.
        return self.retrieve_refund(intent_id, out_request_no)

    def retrieve_refund(self, intent_id, refund_id) -> GatewayRefund:
        """alipay.trade.fastpay.refund.query: reported (REFUND_SUCCESS or no status) is done; not reported, pending."""
        with self._session() as session:
            recorded = session.get(AlipayRefund, refund_id)
        if recorded is None or recorded.trade_id != intent_id:
            raise GatewayError("No such Alipay refund.", code="invalid_request", gateway_message=refund_id)
        result = self._call("alipay.trade.fastpay.refund.query",
                            {"out_trade_no": intent_id, "out_request_no": refund_id})
        reported = result.get("refund_amount") is not None
        done = reported and result.get("refund_status") in (None, "REFUND_SUCCESS")
        amount = to_fen(result["refund_amount"]) if reported else recorded.amount
        return GatewayRefund(refund_id, intent_id, amount, "CNY", SUCCEEDED if done else "pending")

    # -- Notifications --------------------------------------------------------------------------------------------

    def parse_webhook(self, payload: bytes, headers) -> GatewayEvent:
        """Verify an asynchronous notification (RSA2 over the sorted parameters) against the ledger.

        Refused: a bad signature, another app's or seller's, an unknown trade.
        The amount it says was paid is the event's ``amount``, for FinePay to
        compare with the payment's.
        """
        if self.client is None:
            raise WebhookVerificationError("Alipay is not configured; its notifications are refused")
        params = _form(payload)
        signature = params.pop("sign", None)
        if not signature or params.get("sign_type") != "RSA2":
            raise WebhookVerificationError("the notification is not signed with RSA2")
        # Alipay signs the parameters that have a value; the SDK would sign empty ones too.
        try:
            verified = self.client.verify({k: v for k, v in params.items() if v != ""}, signature)
        except (AliPayException, ValueError, TypeError, binascii.Error):
            verified = False
        if not verified:
            raise WebhookVerificationError("the notification's signature does not verify")
        if params.get("app_id") != self.app_id:
            raise WebhookVerificationError("the notification is for another app")
        if self.seller_id and params.get("seller_id") != self.seller_id:
            raise WebhookVerificationError("the notification is for another seller")
        with self._session() as session:
            trade = session.get(AlipayTrade, params.get("out_trade_no") or "")
        if trade is None:
            raise WebhookVerificationError("the notification is for a trade FinePay did not open")
        # An amount other than the trade's is carried, not refused: FinePay records the mismatch and settles nothing.
        try:
            amount = to_fen(params.get("total_amount"))
        except ValueError:
            raise WebhookVerificationError("the notification has no valid total amount") from None
        refund_id = params.get("out_biz_no") or None
        event_type = REFUND_EVENT if refund_id else params.get("trade_status") or "unknown"
        return GatewayEvent(id=params.get("notify_id") or "", type=event_type, intent_id=trade.id,
                            payment_id=trade.payment_id, amount=amount, refund_id=refund_id, data=params)

    def webhook_reply(self, outcome):
        """Alipay stops sending a notification once it reads a plain ``success``."""
        return "success", 200, {"Content-Type": "text/plain; charset=utf-8"}

    def webhook_refusal(self, error):
        """Anything but ``success`` makes Alipay send the notification again later; it expects ``fail``."""
        return "fail", 200, {"Content-Type": "text/plain; charset=utf-8"}

    # -- The daily bill -------------------------------------------------------------------------------------------

    def list_transactions(self, start, end) -> list[GatewayTransaction]:
        """Charges and refunds finished in [start, end), from each Beijing day's trade bill, fees included.

        Raises BillNotReady when a day's bill is not available yet (about 10:00 the next day).
        """
        if start.tzinfo is None or end.tzinfo is None:
            raise ValueError("list_transactions needs time zone aware datetimes")
        day, last = start.astimezone(ALIPAY_TIME).date(), (end - timedelta(microseconds=1)).astimezone(ALIPAY_TIME).date()
        rows = []
        while day <= last:
            rows += self._bill_rows(day)
            day += timedelta(days=1)
        with self._session() as session:
            trade_nos = {row[BILL_OUT_TRADE_NO] for row in rows}
            payments = dict(session.execute(
                select(AlipayTrade.id, AlipayTrade.payment_id).where(AlipayTrade.id.in_(trade_nos))
            ).all()) if trade_nos else {}
        transactions = [self._transaction(row, payments) for row in rows]
        transactions = [t for t in transactions if start <= t.created_at < end]
        return sorted(transactions, key=lambda t: (t.created_at, t.kind, t.id))

    def _bill_rows(self, day):
        """The charge and refund rows of one day's trade bill (downloaded at once: its URL lives 30 s)."""
        result = self._call("alipay.data.dataservice.bill.downloadurl.query",
                            {"bill_type": "trade", "bill_date": day.isoformat()})
        url = result.get("bill_download_url")
        if not url:
            raise GatewayError("Alipay gave no bill download URL", code="gateway_error", retryable=True)
        try:
            response = self.session.get(url, timeout=(TIMEOUT[0], BILL_DOWNLOAD_SECONDS))
        except requests.RequestException as error:
            raise GatewayError(f"could not download Alipay's bill for {day} ({type(error).__name__})",
                               code="gateway_unavailable", retryable=True, status=503) from None
        if response.status_code != 200:
            raise GatewayError(f"Alipay's bill for {day} did not download ({response.status_code})",
                               code="gateway_unavailable", retryable=True, status=503)
        return parse_bill(response.content, day)

    def _transaction(self, row, payments):
        kind = BILL_KINDS[row[BILL_KIND]]
        fee = abs(to_fen(row.get(BILL_FEE) or "0"))
        return GatewayTransaction(
            id=(row.get(BILL_REFUND_NO) or row[BILL_TRADE_NO]) if kind == "refund" else row[BILL_TRADE_NO],
            kind=kind, intent_id=row[BILL_OUT_TRADE_NO] or None, payment_id=payments.get(row[BILL_OUT_TRADE_NO]),
            amount=abs(to_fen(row[BILL_AMOUNT])), currency="CNY",
            created_at=datetime.strptime(row[BILL_FINISHED_AT], TIME_FORMAT).replace(tzinfo=ALIPAY_TIME),
            fee=fee if kind == "charge" else -fee,
        )

    # -- The ledger and the wire ----------------------------------------------------------------------------------

    def _session(self):
        # Its own session: the ledger records what was asked of Alipay, whatever FinePay's transaction does.
        return Session(db.engine, expire_on_commit=False)

    def _trade(self, out_trade_no):
        with self._session() as session:
            trade = session.get(AlipayTrade, out_trade_no)
        if trade is None:
            raise GatewayError("No such Alipay trade.", code="invalid_request", gateway_message=out_trade_no)
        return trade

    @staticmethod
    def _intent(trade, status, *, received=0, trade_no=None):
        return GatewayIntent(id=trade.id, status=status, amount=trade.amount, currency=trade.currency,
                             amount_received=received, payment_id=trade.payment_id, charge_id=trade_no)

    def _signed_query(self, method, biz_content, **kwargs):
        if self.client is None:
            raise GatewayError("Alipay is not configured.", code="gateway_auth")
        return self.client.client_api(method, biz_content, **kwargs)

    def _call(self, method, biz_content):
        """One open-platform call: signed by the SDK, sent as the SDK sends it, the answer verified by the SDK.

        Returns the response object (code 10000) or raises GatewayError.
        """
        url = f"{self.gateway_url}?{self._signed_query(method, biz_content)}"
        try:
            response = self.session.get(url, timeout=TIMEOUT)
        except requests.ConnectTimeout:  # nothing was sent
            raise GatewayError(f"could not reach Alipay for {method} (connect timeout)", code="gateway_unavailable",
                               retryable=True, status=503) from None
        except requests.Timeout:
            raise GatewayError(f"Alipay did not answer {method} in time", code="gateway_timeout", retryable=True,
                               outcome_unknown=_changes_state(method), status=504) from None
        except requests.RequestException as error:
            raise GatewayError(f"the connection to Alipay failed during {method} ({type(error).__name__})",
                               code="gateway_unavailable", retryable=True,
                               outcome_unknown=_changes_state(method), status=503) from None
        if response.status_code != 200:
            raise GatewayError(f"Alipay answered {response.status_code} to {method}", code="gateway_unavailable",
                               retryable=True, outcome_unknown=_changes_state(method), status=502)
        return self._verified(method, response.content.decode("utf-8", "replace"))

    def _verified(self, method, raw):
        response_type = method.replace(".", "_") + "_response"
        try:
            body = json.loads(raw)
            result = body.get(response_type) or body.get("error_response")
        except (ValueError, AttributeError):
            body = result = None
        if not isinstance(result, dict):
            raise GatewayError(f"Alipay's answer to {method} is not one", code="gateway_error", retryable=True,
                               outcome_unknown=_changes_state(method))
        if "sign" not in body or "error_response" in body:
            # An unsigned answer is only ever believed as a refusal (Alipay cannot sign for an app it does not know).
            if result.get("code") == SUCCESS_CODE:
                raise GatewayError(f"Alipay's answer to {method} is not signed", code="gateway_error",
                                   retryable=True, outcome_unknown=_changes_state(method))
            raise _refusal(method, result)
        try:
            result = self.client.verified_response(raw, response_type)
        except (AliPayValidationError, AliPayException, ValueError, binascii.Error):
            raise GatewayError(f"Alipay's signature on its answer to {method} does not verify",
                               code="gateway_error", retryable=True, outcome_unknown=_changes_state(method)) from None
        if result.get("code") != SUCCESS_CODE:
            raise _refusal(method, result)
        return result


def _form(payload):
    """A notification's form parameters (each once), decoded in the charset it declares."""
    if isinstance(payload, str):
        payload = payload.encode("utf-8")
    try:
        text = payload.decode("ascii")
        pairs = parse_qsl(text, keep_blank_values=True, strict_parsing=True, encoding="utf-8", errors="strict")
        charset = dict(pairs).get("charset", "utf-8").lower()
        if charset != "utf-8":
            pairs = parse_qsl(text, keep_blank_values=True, strict_parsing=True, encoding=charset, errors="strict")
    except (UnicodeDecodeError, ValueError, LookupError):
        raise WebhookVerificationError("the notification is not a form") from None
    params = dict(pairs)
    if len(params) != len(pairs):
        raise WebhookVerificationError("the notification repeats a parameter")
    return params


def parse_bill(content, day):
    """The charge and refund rows (dicts by heading) of a trade bill: a zip holding GBK CSVs.

    The detail file is the one whose heading names the columns FinePay reads
    (the other is the summary). Its preface and trailer lines start with "#";
    the trailer's counts of trades and refunds must match the rows read.
    """
    try:
        archive = zipfile.ZipFile(io.BytesIO(content))
        members = [m for m in archive.infolist() if not m.is_dir() and m.file_size <= MAX_BILL_BYTES]
        texts = [archive.read(member).decode("gb18030") for member in members]
    except (zipfile.BadZipFile, UnicodeDecodeError, OSError):
        raise GatewayError(f"Alipay's bill for {day} is not a zip of GBK CSV files", code="bill_unreadable") from None
    for text in texts:
        data_lines = [line for line in text.splitlines() if line.strip() and not line.startswith("#")]
        if not data_lines:
            continue
        rows = list(csv.reader(data_lines))
        heading = [cell.strip() for cell in rows[0]]
        if not {BILL_TRADE_NO, BILL_OUT_TRADE_NO, BILL_KIND, BILL_AMOUNT} <= set(heading):
            continue
        records = [dict(zip(heading, (cell.strip() for cell in row), strict=False)) for row in rows[1:]]
        records = [record for record in records if record.get(BILL_KIND) in BILL_KINDS]
        _check_totals(text, records, day)
        return records
    raise GatewayError(f"Alipay's bill for {day} has no detail file", code="bill_unreadable")


def _check_totals(text, records, day):
    """A bill cut short or padded is refused: the trailer counts its trades and refunds."""
    for kind, pattern in BILL_TOTALS.items():
        total = pattern.search(text)
        if total is None or int(total.group(1)) != sum(record[BILL_KIND] == kind for record in records):
            raise GatewayError(f"Alipay's bill for {day} does not add up to its own totals", code="bill_unreadable")
