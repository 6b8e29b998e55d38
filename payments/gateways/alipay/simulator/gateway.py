"""``/gateway.do``: the openapi gateway's checks in Alipay's order, the methods, and the faults tests arm.

Checks, each answered in Alipay's shape: method present and known (``error_response``,
40001/40002), app id present and known (40001/40002, unsigned), sign and sign_type
present (40001), charset utf-8, timestamp ``yyyy-MM-dd HH:mm:ss`` and the signature
(40002 ``isv.invalid-signature``, whose sub_msg quotes the string the gateway checked).
Then the method runs; a business failure is 40004 with the method's sub_code. Every
answer under a method's key is signed with Alipay's key.
"""
import json
import secrets
import threading
import time as clock_time
from datetime import date, timedelta

from . import signing
from .bills import ready
from .clock import format_time, parse
from .trades import Refused, invalid, yuan

API_METHODS = (
    "alipay.trade.precreate", "alipay.trade.query", "alipay.trade.close", "alipay.trade.refund",
    "alipay.trade.fastpay.refund.query", "alipay.data.dataservice.bill.downloadurl.query",
)
CASHIER_METHODS = ("alipay.trade.wap.pay", "alipay.trade.page.pay")
BILL_LINK_LIFETIME = timedelta(seconds=30)
# What each fault answers; "timeout" instead answers late (the call still takes effect).
FAULTS = {
    "system_error": Refused("ACQ.SYSTEM_ERROR", "系统错误"),
    "aop_system_error": Refused("aop.ACQ.SYSTEM_ERROR", "系统异常", code="20000",
                                msg="Service Currently Unavailable"),
    "unknown_error": Refused("isp.unknow-error", "系统繁忙", code="20000", msg="Service Currently Unavailable"),
    "frequency_limit": Refused("isp.app-call-limited", "调用频率超限", code="20000",
                               msg="Service Currently Unavailable"),
}
FAULT_NAMES = (*FAULTS, "timeout")
ZERO_AMOUNTS = {"buyer_pay_amount": "0.00", "invoice_amount": "0.00", "point_amount": "0.00", "receipt_amount": "0.00"}


def response_key(method):
    """``alipay.trade.query`` answers under ``alipay_trade_query_response``."""
    return method.replace(".", "_") + "_response"


class GatewayRefusal(Exception):
    """A request the gateway refuses before any method runs: its payload, and whether it is signed."""

    def __init__(self, refusal, signed=True, key=None):
        super().__init__(refusal.sub_code)
        self.refusal = refusal
        self.signed = signed
        self.key = key


def _public_error(code, msg, sub_code, sub_msg, signed=True, key=None):
    return GatewayRefusal(Refused(sub_code, sub_msg, code=code, msg=msg), signed=signed, key=key)


class Faults:
    """Faults armed for the next N calls (of one method, or of any)."""

    def __init__(self):
        self._lock = threading.Lock()
        self._armed = []

    def arm(self, fault, count=1, method=None, seconds=0.0):
        """Arm ``fault`` for the next ``count`` calls of ``method`` (any when None)."""
        if fault not in FAULT_NAMES:
            raise ValueError(f"unknown fault {fault!r}; one of {', '.join(FAULT_NAMES)}")
        with self._lock:
            self._armed.append({"fault": fault, "count": count, "method": method, "seconds": seconds})

    def armed(self):
        """The faults still armed."""
        with self._lock:
            return [dict(fault) for fault in self._armed]

    def take(self, method):
        """The first fault armed for ``method``, used up by one call; None when there is none."""
        with self._lock:
            for fault in self._armed:
                if fault["method"] in (None, method):
                    fault["count"] -= 1
                    if fault["count"] <= 0:
                        self._armed.remove(fault)
                    return dict(fault)
        return None


class Gateway:
    """Checks a gateway request and runs its method against the trades."""

    def __init__(self, trades, account, faults):
        self.trades = trades
        self.account = account
        self.faults = faults

    def check(self, params, methods):
        """The verified request's method and biz_content, or GatewayRefusal."""
        method = params.get("method")
        if not method:
            raise _public_error("40001", "Missing Required Arguments", "isv.missing-method", "缺少方法名参数",
                                signed=False, key="error_response")
        if method not in methods:
            raise _public_error("40002", "Invalid Arguments", "isv.invalid-method", "不存在的方法名",
                                signed=False, key="error_response")
        if not params.get("app_id"):
            raise _public_error("40001", "Missing Required Arguments", "isv.missing-app-id", "缺少AppID参数",
                                signed=False)
        if params["app_id"] != self.account.app_id:
            raise _public_error("40002", "Invalid Arguments", "isv.invalid-app-id", "无效的AppID参数", signed=False)
        if not params.get("sign"):
            raise _public_error("40001", "Missing Required Arguments", "isv.missing-signature", "缺少签名参数")
        if not params.get("sign_type"):
            raise _public_error("40001", "Missing Required Arguments", "isv.missing-signature-type", "缺少签名类型参数")
        if params["sign_type"] not in signing.SIGN_TYPES:
            raise _public_error("40002", "Invalid Arguments", "isv.invalid-signature-type", "无效的签名类型")
        if params.get("charset", "utf-8").lower() != "utf-8":
            raise _public_error("40002", "Invalid Arguments", "isv.invalid-charset", "字符集错误")
        try:
            parse(params.get("timestamp", ""))
        except ValueError:
            raise _public_error("40002", "Invalid Arguments", "isv.invalid-timestamp", "非法的时间戳参数") from None
        content = signing.sign_content(params, signing.REQUEST_UNSIGNED)
        if not signing.verify(self.account.app_public_key, content, params["sign"], params["sign_type"]):
            quoted = content.replace("&", "&amp;")
            raise _public_error("40002", "Invalid Arguments", "isv.invalid-signature",
                                f"验签出错，建议检查签名字符串或签名私钥与应用公钥是否匹配，网关生成的验签字符串为：{quoted}")
        try:
            biz = json.loads(params.get("biz_content") or "{}")
        except ValueError:
            raise _public_error("40002", "Invalid Arguments", "isv.invalid-parameter", "参数无效：biz_content") from None
        if not isinstance(biz, dict):
            raise _public_error("40002", "Invalid Arguments", "isv.invalid-parameter", "参数无效：biz_content")
        return method, biz

    def answer(self, params, host_url):
        """The body of the answer to an API call (a JSON text), after any fault armed for it."""
        key = response_key(params.get("method") or "error")
        sign_type = params.get("sign_type") if params.get("sign_type") in signing.SIGN_TYPES else "RSA2"
        try:
            method, biz = self.check(params, API_METHODS)
        except GatewayRefusal as refusal:
            private_key = self.account.alipay_private_key if refusal.signed else None
            return signing.response_body(refusal.key or key, refusal.refusal.payload(), private_key, sign_type)
        fault = self.faults.take(method)
        if fault and fault["fault"] == "timeout":
            clock_time.sleep(fault["seconds"])
        elif fault:
            payload = FAULTS[fault["fault"]].payload()
            return signing.response_body(key, payload, self.account.alipay_private_key, sign_type)
        try:
            payload = {"code": "10000", "msg": "Success", **self._run(method, biz, params, host_url)}
        except Refused as refusal:
            payload = refusal.payload()
        return signing.response_body(key, payload, self.account.alipay_private_key, sign_type)

    def _run(self, method, biz, params, host_url):
        if method == "alipay.trade.precreate":
            trade = self.trades.place(method, biz, params)
            return {"out_trade_no": trade["out_trade_no"], "qr_code": f"{host_url}simulator/qr/{trade['token']}"}
        if method == "alipay.trade.query":
            return self._query(biz)
        if method == "alipay.trade.close":
            trade = self.trades.close(biz)
            return {"trade_no": trade["trade_no"], "out_trade_no": trade["out_trade_no"]}
        if method == "alipay.trade.refund":
            return self._refund(biz)
        if method == "alipay.trade.fastpay.refund.query":
            return self._refund_query(biz)
        return self._bill_url(biz, host_url)

    def _query(self, biz):
        try:
            trade = self.trades.existing(biz)
        except Refused as refusal:
            refusal.extra = {**ZERO_AMOUNTS, **{name: str(biz[name]) for name in ("out_trade_no", "trade_no")
                                                if biz.get(name)}}
            raise
        paid = yuan(trade["total_fen"]) if trade["gmt_payment"] else "0.00"
        answer = {
            "trade_no": trade["trade_no"], "out_trade_no": trade["out_trade_no"],
            "buyer_logon_id": trade["buyer_logon_id"], "trade_status": trade["status"],
            "total_amount": yuan(trade["total_fen"]), "buyer_pay_amount": paid, "point_amount": "0.00",
            "invoice_amount": paid, "receipt_amount": paid, "buyer_user_id": trade["buyer_id"],
        }
        if trade["gmt_payment"]:
            answer["send_pay_date"] = trade["gmt_payment"]
            answer["fund_bill_list"] = [{"amount": paid, "fund_channel": "ALIPAYACCOUNT"}]
        return answer

    def _refund(self, biz):
        trade, refund, fund_change = self.trades.refund(biz)
        return {
            "trade_no": trade["trade_no"], "out_trade_no": trade["out_trade_no"],
            "buyer_logon_id": trade["buyer_logon_id"], "fund_change": "Y" if fund_change else "N",
            "refund_fee": yuan(trade["refunded_fen"]), "send_back_fee": yuan(refund["refund_fen"]),
            "gmt_refund_pay": refund["gmt_refund"][:19], "buyer_user_id": trade["buyer_id"],
        }

    def _refund_query(self, biz):
        trade, refund = self.trades.refund_of(biz)
        answer = {"trade_no": trade["trade_no"], "out_trade_no": trade["out_trade_no"],
                  "out_request_no": str(biz["out_request_no"])}
        if refund:  # no refund under that number: Alipay answers Success without the refund's fields
            answer.update(total_amount=yuan(trade["total_fen"]), refund_amount=yuan(refund["refund_fen"]),
                          refund_status="REFUND_SUCCESS", gmt_refund_pay=refund["gmt_refund"][:19])
            if refund["reason"]:
                answer["refund_reason"] = refund["reason"]
        return answer

    def _bill_url(self, biz, host_url):
        if biz.get("bill_type") != "trade":
            raise invalid("bill_type")
        try:
            bill_date = date.fromisoformat(str(biz.get("bill_date", "")))
        except ValueError:
            raise invalid("bill_date") from None
        now = self.trades.clock.now()
        if not ready(bill_date, now):
            raise Refused("isp.bill_not_exist", "账单不存在")
        token = secrets.token_urlsafe(16)
        self.trades.store.add_bill_link(token, bill_date.isoformat(), format_time(now + BILL_LINK_LIFETIME))
        account = self.account.bill_account
        return {"bill_download_url": (
            f"{host_url}downloadBillFile.resource?bizType=trade&userId={account}&fileType=csv.zip"
            f"&bizDates={bill_date:%Y%m%d}&downloadFileName={account}_{bill_date:%Y%m%d}.csv.zip"
            f"&fileId={token}&timestamp={int(now.timestamp() * 1000)}")}
