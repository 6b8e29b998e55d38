"""Orders and refunds as WeChat Pay keeps them: the rules a request must pass, the states, the shapes answered.

Order states: NOTPAY (placed, unpaid; also after ``time_expire``, until the
merchant closes it, as the API documents), SUCCESS, REFUND (a refund was
made), CLOSED, PAYERROR (the payer's payment failed, e.g. insufficient
balance). Refund states: PROCESSING, then SUCCESS, ABNORMAL or CLOSED.
"""
import json
import re
import secrets
import time
from decimal import ROUND_HALF_UP, Decimal

from . import errors
from .clock import parse_rfc3339, rfc3339

OUT_TRADE_NO = re.compile(r"[A-Za-z0-9_\-|*]{6,32}")
OUT_REFUND_NO = re.compile(r"[A-Za-z0-9_\-|*@]{1,64}")
TRADE_TYPES = {"native": "NATIVE", "jsapi": "JSAPI", "h5": "MWEB"}
STATE_DESCRIPTIONS = {
    "NOTPAY": "订单未支付",
    "SUCCESS": "支付成功",
    "REFUND": "转入退款",
    "CLOSED": "订单已关闭",
    "PAYERROR": "支付失败，余额不足",
}
REFUND_STATES = ("SUCCESS", "ABNORMAL", "CLOSED")
REFUND_SUMMARIES = {"SUCCESS": "退款成功", "ABNORMAL": "退款异常", "CLOSED": "退款关闭"}
PAID = ("SUCCESS", "REFUND")
MAX_REFUNDS = 50


class PaymentRefused(Exception):
    """The payer cannot pay this order (paid, closed, failed or expired); the message says why, for the payer's page."""


class Trading:
    """The simulated WeChat Pay back end of one merchant: places, pays, closes and refunds orders."""

    def __init__(self, account, store, clock, settings, notifier, base_url):
        self.account = account
        self.store = store
        self.clock = clock
        self.settings = settings
        self.notifier = notifier
        self.base_url = base_url

    # --- orders ---

    def place(self, kind, body):
        """Place a Native, JSAPI or H5 order (idempotent for the same request) and answer what the payer needs."""
        request = self._check_order(kind, body)
        with self.store.change() as data:
            order = data["orders"].get(request["out_trade_no"])
            if order is None:
                order = data["orders"][request["out_trade_no"]] = self._new_order(kind, request)
            elif order["state"] in PAID:
                raise errors.ORDERPAID()
            elif order["state"] == "CLOSED":
                raise errors.ORDER_CLOSED()
            elif order["kind"] != kind or order["request"] != request:
                raise errors.OUT_TRADE_NO_USED()
            return self._placed(order)

    def _new_order(self, kind, request):
        return {
            "out_trade_no": request["out_trade_no"],
            "kind": kind,
            "request": request,
            "state": "NOTPAY",
            "created": rfc3339(self.clock.now()),
            "prepay_id": "wx" + self.clock.now().strftime("%d%H%M%S") + secrets.token_hex(13),
            "pr": secrets.token_urlsafe(6),
            "transaction_id": None,
            "success_time": None,
            "openid": request.get("payer", {}).get("openid"),
        }

    def _placed(self, order):
        if order["kind"] == "native":
            return {"code_url": f"weixin://wxpay/bizpayurl?pr={order['pr']}"}
        if order["kind"] == "jsapi":
            return {"prepay_id": order["prepay_id"]}
        package = str(int.from_bytes(order["pr"].encode()) % 10**10)
        return {"h5_url": f"{self.base_url}/simulator/h5/checkmweb?prepay_id={order['prepay_id']}&package={package}"}

    def query(self, out_trade_no, mchid):
        """An order as GET /v3/pay/transactions/out-trade-no/{out_trade_no} answers it."""
        if not mchid:
            raise errors.param_error("mchid", "输入源“/query/mchid”映射到字段“商户号”必填性规定不匹配", "query")
        self._check_mchid(mchid)
        with self.store.read() as data:
            order = data["orders"].get(out_trade_no)
            if order is None:
                raise errors.ORDER_NOT_EXIST()
            return self.transaction(order)

    def query_paid(self, transaction_id, mchid):
        """A paid order as GET /v3/pay/transactions/id/{transaction_id} answers it (only paid orders have one)."""
        out_trade_no = self.order_where("transaction_id", transaction_id) or ""
        return self.query(out_trade_no, mchid)

    def close(self, out_trade_no, body):
        """Close an unpaid order (closing a closed one again is fine; a paid one cannot be closed)."""
        if not body.get("mchid"):
            raise errors.param_error("mchid", "输入源“/body/mchid”映射到字段“商户号”必填性规定不匹配")
        self._check_mchid(body["mchid"])
        with self.store.change() as data:
            order = data["orders"].get(out_trade_no)
            if order is None:
                raise errors.ORDER_NOT_EXIST()
            if order["state"] in PAID:
                raise errors.ORDERPAID()
            order["state"] = "CLOSED"

    def order(self, out_trade_no):
        """A copy of the stored order, or None (for the payer's page)."""
        with self.store.read() as data:
            order = data["orders"].get(out_trade_no)
            return json.loads(json.dumps(order)) if order else None

    def order_where(self, field, value):
        """The out_trade_no of the order whose ``field`` (pr, prepay_id) is ``value``, or None."""
        with self.store.read() as data:
            return next((no for no, order in data["orders"].items() if order[field] == value), None)

    def expired(self, order):
        """Whether the order's time_expire has passed (it stays NOTPAY until closed, but cannot be paid)."""
        expiry = order["request"].get("time_expire")
        return bool(expiry) and parse_rfc3339(expiry) <= self.clock.now()

    def pay(self, out_trade_no, outcome, openid=None):
        """The payer's answer on their phone: approve, cancel (nothing changes) or fail (insufficient balance)."""
        with self.store.change() as data:
            order = data["orders"].get(out_trade_no)
            if order is None:
                raise PaymentRefused("订单不存在")
            refusal = self.refusal(order)
            if refusal:
                raise PaymentRefused(refusal)
            if outcome == "approve":
                order.update(state="SUCCESS", success_time=rfc3339(self.clock.now()),
                             transaction_id="4200" + "".join(secrets.choice("0123456789") for _ in range(24)),
                             openid=order["openid"] or openid or "o" + secrets.token_urlsafe(20)[:27])
                resource = self.transaction(order)
            elif outcome == "fail":
                order["state"] = "PAYERROR"
            result = json.loads(json.dumps(order))
        if outcome == "approve":
            self.notifier.send(order["request"]["notify_url"], "TRANSACTION.SUCCESS", "支付成功", "transaction",
                               resource)
        return result

    def refusal(self, order):
        """Why the payer cannot pay this order now (for the payer's page), or None."""
        if order["state"] in PAID:
            return "该订单已支付"
        if order["state"] == "CLOSED":
            return "该订单已关闭"
        if order["state"] == "PAYERROR":
            return "该订单支付失败，请重新下单"
        if self.expired(order):
            return "该订单已过期，请重新下单"
        return None

    def transaction(self, order):
        """The order as a query answers it and a TRANSACTION notification carries it."""
        request = order["request"]
        result = {
            "appid": request["appid"],
            "mchid": request["mchid"],
            "out_trade_no": order["out_trade_no"],
            "trade_state": order["state"],
            "trade_state_desc": STATE_DESCRIPTIONS[order["state"]],
            "amount": {"total": request["amount"]["total"], "currency": request["amount"]["currency"]},
        }
        if "attach" in request:
            result["attach"] = request["attach"]
        if order["state"] in PAID:
            result.update(
                transaction_id=order["transaction_id"],
                trade_type=TRADE_TYPES[order["kind"]],
                bank_type="OTHERS",
                success_time=order["success_time"],
                payer={"openid": order["openid"]},
                amount={**result["amount"], "payer_total": request["amount"]["total"], "payer_currency": "CNY"},
                promotion_detail=[],
            )
        return result

    def _check_order(self, kind, body):
        for field in ("appid", "mchid", "description", "out_trade_no", "notify_url", "amount"):
            if body.get(field) in (None, ""):
                raise errors.param_error(field, f"输入源“/body/{field}”映射到字段“{field}”必填性规定不匹配")
        if body["appid"] != self.account.appid:
            raise errors.APPID_MCHID_NOT_MATCH()
        self._check_mchid(body["mchid"])
        if not isinstance(body["description"], str) or len(body["description"]) > 127:
            raise errors.param_error("description", "商品描述长度超过127个字符")
        if not isinstance(body["out_trade_no"], str) or not OUT_TRADE_NO.fullmatch(body["out_trade_no"]):
            raise errors.param_error("out_trade_no", "商户订单号只能是6到32位数字、大小写字母及_-|*")
        if not re.fullmatch(r"https?://[^?#\s]+", str(body["notify_url"])):
            raise errors.param_error("notify_url", "通知地址必须是以http或https开头、不带参数的URL")
        amount = body["amount"]
        if not isinstance(amount, dict) or type(amount.get("total")) is not int or amount["total"] < 1:
            raise errors.param_error("amount.total", "订单总金额必须是大于0的整数（单位：分）")
        if amount.get("currency", "CNY") != "CNY":
            raise errors.param_error("amount.currency", "境内商户号仅支持人民币（CNY）")
        if "time_expire" in body:
            expiry = parse_rfc3339(body["time_expire"])
            if expiry is None:
                raise errors.param_error("time_expire", "time_expire格式错误，应为yyyy-MM-DDTHH:mm:ss+TIMEZONE")
            if expiry <= self.clock.now():
                raise errors.invalid_request("time_expire时间过短，订单失效时间必须晚于当前时间")
        if kind == "jsapi" and not (body.get("payer") or {}).get("openid"):
            raise errors.param_error("payer.openid", "JSAPI下单必须传用户标识openid")
        if kind == "h5":
            scene = body.get("scene_info") or {}
            if not scene.get("payer_client_ip") or not (scene.get("h5_info") or {}).get("type"):
                raise errors.param_error("scene_info", "H5下单必须传scene_info.payer_client_ip和scene_info.h5_info.type")
        return {**body, "amount": {"total": amount["total"], "currency": "CNY"}}

    def _check_mchid(self, mchid):
        if mchid != self.account.mchid:
            raise errors.MCH_NOT_EXISTS()

    # --- refunds ---

    def refund(self, body):
        """Accept a refund (PROCESSING) of a paid order; the same out_refund_no with the same request answers it again."""
        request = self._check_refund(body)
        with self.store.change() as data:
            order = self._refunded_order(data, request)
            existing = data["refunds"].get(request["out_refund_no"])
            if existing is not None:
                if existing["out_trade_no"] != order["out_trade_no"] or existing["amount"] != request["amount"]["refund"]:
                    raise errors.invalid_request("订单金额或退款金额与之前请求不一致，请核实后再试")
                return self.refund_resource(existing, order)
            if order["state"] not in PAID:
                raise errors.invalid_request("订单已关闭" if order["state"] == "CLOSED" else "订单未支付")
            if request["amount"]["total"] != order["request"]["amount"]["total"]:
                raise errors.invalid_request("订单金额与原订单金额不一致")
            refunds = [r for r in data["refunds"].values() if r["out_trade_no"] == order["out_trade_no"]]
            if len(refunds) >= MAX_REFUNDS:
                raise errors.invalid_request("退款次数超过限制，一笔订单最多退款50次")
            refunded = sum(r["amount"] for r in refunds if r["status"] in ("PROCESSING", "SUCCESS"))
            if refunded + request["amount"]["refund"] > order["request"]["amount"]["total"]:
                raise errors.invalid_request("申请退款金额超过订单可退金额")
            refund = data["refunds"][request["out_refund_no"]] = self._new_refund(request, order)
            order["state"] = "REFUND"
            return self.refund_resource(refund, order)

    def _new_refund(self, request, order):
        delay = self.settings["refund_delay"]
        return {
            "out_refund_no": request["out_refund_no"],
            "refund_id": "50" + "".join(secrets.choice("0123456789") for _ in range(27)),
            "out_trade_no": order["out_trade_no"],
            "amount": request["amount"]["refund"],
            "reason": request.get("reason"),
            "notify_url": request.get("notify_url"),
            "status": "PROCESSING",
            "create_time": rfc3339(self.clock.now()),
            "success_time": None,
            "due": None if delay is None else time.time() + self.clock.scaled(delay),
        }

    def _refunded_order(self, data, request):
        if "out_trade_no" in request:
            order = data["orders"].get(request["out_trade_no"])
        else:
            order = next((o for o in data["orders"].values() if o["transaction_id"] == request["transaction_id"]), None)
        if order is None:
            raise errors.TRADE_NOT_EXIST()
        return order

    def query_refund(self, out_refund_no):
        """A refund as GET /v3/refund/domestic/refunds/{out_refund_no} answers it."""
        with self.store.read() as data:
            refund = data["refunds"].get(out_refund_no)
            if refund is None:
                raise errors.REFUND_NOT_EXIST()
            return self.refund_resource(refund, data["orders"][refund["out_trade_no"]])

    def settle_refund(self, out_refund_no, status):
        """Move a PROCESSING refund to SUCCESS, ABNORMAL or CLOSED, and notify the merchant if it asked."""
        with self.store.change() as data:
            refund = data["refunds"].get(out_refund_no)
            if refund is None:
                raise errors.REFUND_NOT_EXIST()
            if refund["status"] != "PROCESSING":
                raise errors.invalid_request(f"退款单已是{refund['status']}状态")
            refund.update(status=status, due=None)
            if status == "SUCCESS":
                refund["success_time"] = rfc3339(self.clock.now())
            order = data["orders"][refund["out_trade_no"]]
            resource = self._refund_notification(refund, order)
        if refund["notify_url"]:
            self.notifier.send(refund["notify_url"], f"REFUND.{status}", REFUND_SUMMARIES[status], "refund", resource)

    def settle_due_refunds(self):
        """Settle (SUCCESS) every refund whose processing delay has passed."""
        with self.store.read() as data:
            due = [no for no, r in data["refunds"].items() if r["due"] is not None and r["due"] <= time.time()]
        for out_refund_no in due:
            try:
                self.settle_refund(out_refund_no, "SUCCESS")
            except errors.ApiError:
                pass  # settled through the admin API in the meantime

    def refund_resource(self, refund, order):
        """A refund as the refund API answers it."""
        total = order["request"]["amount"]["total"]
        result = {
            "refund_id": refund["refund_id"],
            "out_refund_no": refund["out_refund_no"],
            "transaction_id": order["transaction_id"],
            "out_trade_no": order["out_trade_no"],
            "channel": "ORIGINAL",
            "user_received_account": "支付用户零钱",
            "create_time": refund["create_time"],
            "status": refund["status"],
            "funds_account": "AVAILABLE",
            "amount": {
                "total": total, "refund": refund["amount"], "from": [],
                "payer_total": total, "payer_refund": refund["amount"],
                "settlement_total": total, "settlement_refund": refund["amount"],
                "discount_refund": 0, "currency": "CNY",
                "refund_fee": refund_fee(self.fee(total), total, refund["amount"]),
            },
            "promotion_detail": [],
        }
        if refund["success_time"]:
            result["success_time"] = refund["success_time"]
        return result

    def _refund_notification(self, refund, order):
        total = order["request"]["amount"]["total"]
        result = {
            "mchid": self.account.mchid,
            "out_trade_no": order["out_trade_no"],
            "transaction_id": order["transaction_id"],
            "out_refund_no": refund["out_refund_no"],
            "refund_id": refund["refund_id"],
            "refund_status": refund["status"],
            "user_received_account": "支付用户零钱",
            "amount": {"total": total, "refund": refund["amount"], "payer_total": total,
                       "payer_refund": refund["amount"]},
        }
        if refund["success_time"]:
            result["success_time"] = refund["success_time"]
        return result

    def _check_refund(self, body):
        if not isinstance(body.get("out_refund_no"), str) or not OUT_REFUND_NO.fullmatch(body["out_refund_no"]):
            raise errors.param_error("out_refund_no", "商户退款单号只能是1到64位数字、大小写字母及_-|*@")
        if not (body.get("out_trade_no") or body.get("transaction_id")):
            raise errors.param_error("out_trade_no", "transaction_id和out_trade_no必须二选一进行传参")
        amount = body.get("amount")
        if not isinstance(amount, dict) or any(type(amount.get(k)) is not int or amount[k] < 1
                                               for k in ("refund", "total")):
            raise errors.param_error("amount", "退款金额和原订单金额必须是大于0的整数（单位：分）")
        if amount.get("currency") != "CNY":
            raise errors.param_error("amount.currency", "退款币种必须是CNY")
        if "notify_url" in body and not re.fullmatch(r"https?://[^?#\s]+", str(body["notify_url"])):
            raise errors.param_error("notify_url", "通知地址必须是以http或https开头、不带参数的URL")
        return body

    def fee(self, total):
        """WeChat Pay's fee on a payment of ``total`` fen, at the configured rate, rounded half up to the fen."""
        return int((Decimal(total) * Decimal(str(self.settings["fee_rate"]))).quantize(Decimal(1), ROUND_HALF_UP))


def refund_fee(fee, total, refunded):
    """The part of a payment's fee that a refund of ``refunded`` fen returns (in proportion, half up)."""
    return int((Decimal(fee) * refunded / total).quantize(Decimal(1), ROUND_HALF_UP))
