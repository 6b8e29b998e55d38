"""Trades and refunds as Alipay keeps them: their states, expiry, the payer's moves, and the notifications they cause.

A trade placed by ``alipay.trade.precreate`` or a cashier redirect does not exist at
Alipay until the buyer scans its QR code or opens the cashier: until then a query or a
close answers ACQ.TRADE_NOT_EXIST, and the QR code stays payable until it expires.
States: WAIT_BUYER_PAY, TRADE_SUCCESS, TRADE_CLOSED (unpaid and expired or closed, or
fully refunded), TRADE_FINISHED (no longer refundable). A failed payment (insufficient
balance) leaves the trade waiting, as Alipay's cashier does. Amounts are kept in fen.
"""
import json
import re
import secrets
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from .clock import BEIJING, format_time, parse

WAIT_BUYER_PAY = "WAIT_BUYER_PAY"
TRADE_SUCCESS = "TRADE_SUCCESS"
TRADE_CLOSED = "TRADE_CLOSED"
TRADE_FINISHED = "TRADE_FINISHED"
PRODUCTS = {
    "alipay.trade.precreate": "FACE_TO_FACE_PAYMENT",
    "alipay.trade.wap.pay": "QUICK_WAP_WAY",
    "alipay.trade.page.pay": "FAST_INSTANT_TRADE_PAY",
}
# How long a trade stays payable when the request sets neither timeout_express nor time_expire:
# a face-to-face QR code lasts two hours; a cashier trade, fifteen days.
DEFAULT_TIMEOUTS = {"alipay.trade.precreate": timedelta(hours=2)}
DEFAULT_CASHIER_TIMEOUT = timedelta(days=15)
MAX_AMOUNT = Decimal("100000000")
TIMEOUT_EXPRESS = re.compile(r"^([1-9]\d*)([mhdc])$")
BALANCE_KEY = "seller_balance_fen"


@dataclass(eq=False)
class Refused(Exception):
    """A request Alipay answers with an error: ``code``/``msg`` and ``sub_code``/``sub_msg``, plus ``extra`` fields."""

    sub_code: str
    sub_msg: str
    code: str = "40004"
    msg: str = "Business Failed"
    extra: dict = field(default_factory=dict)

    def payload(self):
        """The response object."""
        return {"code": self.code, "msg": self.msg, "sub_code": self.sub_code, "sub_msg": self.sub_msg, **self.extra}


def invalid(message):
    """ACQ.INVALID_PARAMETER with Alipay's wording and what was wrong."""
    return Refused("ACQ.INVALID_PARAMETER", f"参数无效：{message}")


def parse_amount(value, name):
    """A yuan amount (string or number, at most two decimals, 0.01 to 100000000) in fen."""
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        raise invalid(name) from None
    if not amount.is_finite() or amount != amount.quantize(Decimal("0.01")) or amount < Decimal("0.01"):
        raise invalid(name)
    if amount > MAX_AMOUNT:
        raise Refused("ACQ.TOTAL_FEE_EXCEED", "订单金额超过限额")
    return int(amount * 100)


def yuan(fen):
    """Fen as Alipay writes yuan: ``12.34``, ``-0.01``."""
    sign = "-" if fen < 0 else ""
    return f"{sign}{abs(fen) // 100}.{abs(fen) % 100:02d}"


def _expiry(method, biz, now):
    if biz.get("time_expire"):
        try:
            return parse(str(biz["time_expire"]))
        except ValueError:
            raise invalid("time_expire") from None
    if biz.get("timeout_express"):
        match = TIMEOUT_EXPRESS.match(str(biz["timeout_express"]))
        if not match:
            raise invalid("timeout_express")
        count, unit = int(match[1]), match[2]
        if unit == "c":  # "1c": until the end of today
            return datetime.combine(now.date(), time(23, 59, 59), BEIJING)
        span = {"m": timedelta(minutes=count), "h": timedelta(hours=count), "d": timedelta(days=count)}[unit]
        if not timedelta(minutes=1) <= span <= timedelta(days=15):
            raise invalid("timeout_express")
        return now + span
    return now + DEFAULT_TIMEOUTS.get(method, DEFAULT_CASHIER_TIMEOUT)


def _digits(count):
    return "".join(secrets.choice("0123456789") for _ in range(count))


class Trades:
    """The merchant's trades at the simulated Alipay; every change that Alipay notifies queues a notification."""

    def __init__(self, store, clock, account, notifier):
        self.store = store
        self.clock = clock
        self.account = account
        self.notifier = notifier

    def now_text(self):
        """The clock as Alipay writes it."""
        return format_time(self.clock.now())

    # placing and finding
    def place(self, method, biz, params):
        """Record a trade placed by ``method`` (precreate or a cashier redirect), or find the same one again."""
        out_trade_no = str(biz.get("out_trade_no") or "")
        subject = str(biz.get("subject") or "")
        if not out_trade_no or len(out_trade_no) > 64 or not subject:
            raise invalid("subject" if out_trade_no and len(out_trade_no) <= 64 else "out_trade_no")
        total = parse_amount(biz.get("total_amount"), "total_amount")
        now = self.clock.now()
        expires = _expiry(method, biz, now)
        with self.store.lock:
            self.expire_due()
            existing = self.store.trade(out_trade_no)
            if existing:
                return self._placed_again(existing, total, params)
            self.store.insert_trade(
                out_trade_no=out_trade_no, token=secrets.token_urlsafe(12), trade_no=self._trade_no(now),
                method=method, product_code=PRODUCTS[method], subject=subject, total_fen=total,
                notify_url=params.get("notify_url"), return_url=params.get("return_url"),
                quit_url=biz.get("quit_url"), sign_type=params["sign_type"], status=WAIT_BUYER_PAY,
                requested_at=format_time(now), expires_at=format_time(expires))
            return self.store.trade(out_trade_no)

    def _placed_again(self, trade, total, params):
        if trade["status"] in (TRADE_SUCCESS, TRADE_FINISHED):
            raise Refused("ACQ.TRADE_HAS_SUCCESS", "交易已被支付")
        if trade["status"] == TRADE_CLOSED:
            raise Refused("ACQ.TRADE_HAS_CLOSE", "交易已经关闭")
        if trade["total_fen"] != total:
            raise Refused("ACQ.CONTEXT_INCONSISTENT", "交易信息被篡改")
        if params.get("notify_url"):
            self.store.update_trade(trade["out_trade_no"], notify_url=params["notify_url"])
        return self.store.trade(trade["out_trade_no"])

    def _trade_no(self, now):
        return now.strftime("%Y%m%d") + "22001" + _digits(15)

    def existing(self, biz):
        """The trade named by ``trade_no`` (preferred) or ``out_trade_no`` if Alipay knows it, else ACQ.TRADE_NOT_EXIST."""
        if not biz.get("trade_no") and not biz.get("out_trade_no"):
            raise invalid("out_trade_no")
        self.expire_due()
        if biz.get("trade_no"):
            trade = self.store.trade_by("trade_no", str(biz["trade_no"]))
        else:
            trade = self.store.trade(str(biz["out_trade_no"]))
        if trade is None or trade["gmt_create"] is None:
            raise Refused("ACQ.TRADE_NOT_EXIST", "交易不存在")
        return trade

    # the payer's moves
    def open_by_payer(self, token):
        """The buyer scanned the QR code or reached the cashier: from now on Alipay knows the trade."""
        with self.store.lock:
            self.expire_due()
            trade = self.store.trade_by("token", token)
            if trade and trade["status"] == WAIT_BUYER_PAY and trade["gmt_create"] is None:
                self.store.update_trade(trade["out_trade_no"], gmt_create=self.now_text(),
                                        buyer_id="2088" + _digits(12),
                                        buyer_logon_id=f"{_digits(3)}****{_digits(4)}")
                trade = self.store.trade_by("token", token)
            return trade

    def pay(self, token):
        """The buyer approved: the trade succeeds, its fee is charged and the merchant is notified."""
        with self.store.lock:
            trade = self.open_by_payer(token)
            if trade is None or trade["status"] != WAIT_BUYER_PAY:
                return trade
            fee = int((Decimal(trade["total_fen"]) * self.account.fee_rate).quantize(Decimal("1"), ROUND_HALF_UP))
            self.store.update_trade(trade["out_trade_no"], status=TRADE_SUCCESS, gmt_payment=self.now_text(),
                                    fee_fen=fee)
            self._credit(trade["total_fen"] - fee)
            trade = self.store.trade(trade["out_trade_no"])
            self._notify(trade)
            return trade

    def finish(self, out_trade_no):
        """The refund period is over: TRADE_SUCCESS becomes TRADE_FINISHED, and Alipay says so."""
        with self.store.lock:
            trade = self.store.trade(out_trade_no)
            if trade is None or trade["status"] != TRADE_SUCCESS:
                raise Refused("ACQ.TRADE_STATUS_ERROR", "交易状态不合法")
            self.store.update_trade(out_trade_no, status=TRADE_FINISHED)
            trade = self.store.trade(out_trade_no)
            self._notify(trade)
            return trade

    # closing
    def close(self, biz):
        """alipay.trade.close: only a trade waiting for payment closes."""
        with self.store.lock:
            trade = self.existing(biz)
            if trade["status"] != WAIT_BUYER_PAY:
                raise Refused("ACQ.TRADE_STATUS_ERROR", "交易状态不合法")
            return self._close(trade, self.now_text())

    def _close(self, trade, when):
        self.store.update_trade(trade["out_trade_no"], status=TRADE_CLOSED, gmt_close=when)
        trade = self.store.trade(trade["out_trade_no"])
        if trade["gmt_create"] is not None:  # a QR code nobody scanned closes unseen
            self._notify(trade)
        return trade

    def expire_due(self):
        """Close every waiting trade whose time is up (called before each request and by the notifier's loop)."""
        with self.store.lock:
            for trade in self.store.open_trades_due(self.now_text()):
                self._close(trade, trade["expires_at"])

    # refunds
    def refund(self, biz):
        """alipay.trade.refund: once per out_request_no; a repeat answers the same refund with fund_change N."""
        with self.store.lock:
            trade = self.existing(biz)
            request_no = str(biz.get("out_request_no") or trade["out_trade_no"])
            amount = parse_amount(biz.get("refund_amount"), "refund_amount")
            earlier = self.store.refund(trade["out_trade_no"], request_no)
            if earlier:
                if earlier["refund_fen"] != amount:
                    raise Refused("ACQ.DISCORDANT_REPEAT_REQUEST", "不一致的请求")
                return trade, earlier, False
            self._check_refundable(trade, amount)
            returned = self._fee_returned(trade, amount)
            refund = {"out_trade_no": trade["out_trade_no"], "out_request_no": request_no, "refund_fen": amount,
                      "fee_returned_fen": returned, "reason": biz.get("refund_reason"),
                      "gmt_refund": self.clock.now().strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]}
            self.store.insert_refund(**refund)
            refunded = trade["refunded_fen"] + amount
            changes = {"refunded_fen": refunded, "fee_returned_fen": trade["fee_returned_fen"] + returned}
            if refunded == trade["total_fen"]:
                changes.update(status=TRADE_CLOSED, gmt_close=self.now_text())
            self.store.update_trade(trade["out_trade_no"], **changes)
            self._credit(-(amount - returned))
            trade = self.store.trade(trade["out_trade_no"])
            self._notify(trade, refund_fee=yuan(refunded), gmt_refund=refund["gmt_refund"], out_biz_no=request_no)
            return trade, refund, True

    def _check_refundable(self, trade, amount):
        if trade["status"] == TRADE_FINISHED:
            raise Refused("ACQ.TRADE_HAS_FINISHED", "交易已完结")
        if trade["status"] == TRADE_CLOSED:
            raise Refused("ACQ.TRADE_HAS_CLOSE", "交易已经关闭")
        if trade["status"] != TRADE_SUCCESS:
            raise Refused("ACQ.TRADE_STATUS_ERROR", "交易状态不合法")
        if trade["refunded_fen"] + amount > trade["total_fen"]:
            raise Refused("ACQ.REFUND_AMT_NOT_EQUAL_TOTAL", "退款金额超限")
        if amount - self._fee_returned(trade, amount) > self.balance():
            raise Refused("ACQ.SELLER_BALANCE_NOT_ENOUGH", "卖家余额不足")

    def _fee_returned(self, trade, amount):
        """The fee handed back with a refund: in proportion, and all that is left on the last one."""
        left = trade["fee_fen"] - trade["fee_returned_fen"]
        if trade["refunded_fen"] + amount == trade["total_fen"]:
            return left
        share = (Decimal(amount) * trade["fee_fen"] / trade["total_fen"]).quantize(Decimal("1"), ROUND_HALF_UP)
        return min(int(share), left)

    def refund_of(self, biz):
        """alipay.trade.fastpay.refund.query: the trade, and its refund with that out_request_no or None."""
        trade = self.existing(biz)
        request_no = str(biz.get("out_request_no") or "")
        if not request_no:
            raise invalid("out_request_no")
        return trade, self.store.refund(trade["out_trade_no"], request_no)

    # the seller's available balance, which refunds draw on
    def balance(self):
        """The seller's available balance in fen."""
        return int(self.store.meta(BALANCE_KEY, "0"))

    def set_balance(self, fen):
        """Set the seller's available balance (admin)."""
        self.store.set_meta(BALANCE_KEY, fen)

    def _credit(self, fen):
        self.set_balance(self.balance() + fen)

    # notifications
    def notification_params(self, trade, **extra):
        """The fields of a trade_status_sync notification about ``trade`` (without notify_time and sign)."""
        total = yuan(trade["total_fen"])
        params = {
            "notify_type": "trade_status_sync",
            "notify_id": self.clock.now().strftime("%Y%m%d") + "00222" + _digits(21),
            "app_id": self.account.app_id, "auth_app_id": self.account.app_id,
            "charset": "utf-8", "version": "1.0", "sign_type": trade["sign_type"],
            "trade_no": trade["trade_no"], "out_trade_no": trade["out_trade_no"],
            "trade_status": trade["status"], "total_amount": total, "subject": trade["subject"],
            "seller_id": self.account.seller_id, "seller_email": self.account.seller_email,
            "buyer_id": trade["buyer_id"], "buyer_logon_id": trade["buyer_logon_id"],
            "gmt_create": trade["gmt_create"],
        }
        if trade["gmt_payment"]:
            params.update(
                gmt_payment=trade["gmt_payment"], receipt_amount=total, buyer_pay_amount=total,
                invoice_amount=total, point_amount="0.00",
                # the notification's own spelling: fundChannel, not fund_channel as in query answers
                fund_bill_list=json.dumps([{"amount": total, "fundChannel": "ALIPAYACCOUNT"}], separators=(",", ":")))
        if trade["gmt_close"]:
            params["gmt_close"] = trade["gmt_close"]
        params.update(extra)
        return params

    def _notify(self, trade, **extra):
        if trade["notify_url"]:
            self.notifier.enqueue(trade["notify_url"], self.notification_params(trade, **extra), trade["sign_type"])
