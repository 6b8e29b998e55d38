"""The daily trade bill (/v3/bill/tradebill): WeChat Pay's CSV, every value behind a backtick, gzip and SHA1.

A day's bill holds the payments that succeeded that day (Beijing time) and
the refunds accepted that day, as separate lines, then the summary. It comes
out at about 10:00 the next day: before that the API answers
STATEMENT_CREATING (yesterday) or NO_STATEMENT_EXIST (today and later); a past
day without a single line answers NO_STATEMENT_EXIST too.
"""
import gzip
import hashlib
import secrets
import time
from datetime import date, datetime, timedelta
from decimal import Decimal

from . import errors
from .clock import BEIJING
from .trading import TRADE_TYPES, refund_fee

COLUMNS = ("交易时间,公众账号ID,商户号,特约商户号,设备号,微信订单号,商户订单号,用户标识,交易类型,交易状态,付款银行,"
           "货币种类,应结订单金额,代金券金额,微信退款单号,商户退款单号,退款金额,充值券退款金额,退款类型,退款状态,"
           "商品名称,商户数据包,手续费,费率,订单金额,申请退款金额,费率备注")
SUMMARY_COLUMNS = "总交易单数,应结订单总金额,退款总金额,充值券退款总金额,手续费总金额,订单总金额,申请退款总金额"
BILL_TYPES = ("ALL", "SUCCESS", "REFUND")
# how long a download_url works (the documents said 30 s until 2024, 5 min since)
DOWNLOAD_SECONDS = 300


def yuan(fen):
    """Fen as the bill writes money: yuan with two decimals (-0.01 for a fee returned)."""
    return str((Decimal(fen) / 100).quantize(Decimal("0.01")))


def _line(values):
    return ",".join("`" + str(value) for value in values)


class Bills:
    """Builds a day's bill from the store and hands it out through short-lived download tokens."""

    def __init__(self, trading, settings):
        self.trading = trading
        self.settings = settings
        self.downloads = {}  # token -> (expires at, gzip bytes or plain bytes)

    def apply(self, bill_date, bill_type, tar_type):
        """What GET /v3/bill/tradebill answers: the download URL and the SHA1 of the bill (uncompressed)."""
        day = self._check(bill_date, bill_type, tar_type)
        self._check_ready(day)
        text = self.build(day, bill_type)
        if text is None:
            raise errors.NO_STATEMENT_EXIST()
        raw = text.encode()
        token = secrets.token_urlsafe(24)
        self.downloads = {t: d for t, d in self.downloads.items() if d[0] >= time.time()}
        self.downloads[token] = (time.time() + DOWNLOAD_SECONDS, gzip.compress(raw) if tar_type == "GZIP" else raw)
        return {"hash_type": "SHA1", "hash_value": hashlib.sha1(raw).hexdigest(),
                "download_url": f"{self.trading.base_url}/v3/billdownload/file?token={token}"}

    def download(self, token):
        """The bill's bytes for a token still valid, or None."""
        expires, content = self.downloads.get(token, (0, None))
        return content if expires >= time.time() else None

    def _check(self, bill_date, bill_type, tar_type):
        try:
            day = date.fromisoformat(bill_date or "")
        except ValueError:
            raise errors.param_error("bill_date", "账单日期格式不正确，应为yyyy-MM-DD", "query") from None
        if bill_type not in BILL_TYPES:
            raise errors.param_error("bill_type", "账单类型只能是ALL、SUCCESS或REFUND", "query")
        if tar_type not in (None, "GZIP"):
            raise errors.param_error("tar_type", "压缩类型只能是GZIP", "query")
        return day

    def _check_ready(self, day):
        now = self.trading.clock.now()
        release = datetime.combine(day + timedelta(days=1), datetime.min.time(), BEIJING).replace(
            hour=self.settings["bill_hour"])
        if now < release:
            raise errors.STATEMENT_CREATING() if now.date() > day else errors.NO_STATEMENT_EXIST()

    def build(self, day, bill_type="ALL"):
        """The bill of ``day`` as text, or None when the day has no line."""
        lines = []
        if bill_type in ("ALL", "SUCCESS"):
            lines += self._payment_lines(day)
        if bill_type in ("ALL", "REFUND"):
            lines += self._refund_lines(day)
        if not lines:
            return None
        lines.sort(key=lambda line: line["time"])
        totals = [sum(line[field] for line in lines) for field in ("settled", "refund", "fee", "total", "requested")]
        summary = [len(lines), yuan(totals[0]), yuan(totals[1]), "0.00", yuan(totals[2]), yuan(totals[3]),
                   yuan(totals[4])]
        return "\r\n".join([COLUMNS, *(_line(line["values"]) for line in lines), SUMMARY_COLUMNS, _line(summary)]) + "\r\n"

    def _payment_lines(self, day):
        with self.trading.store.read() as data:
            orders = [o for o in data["orders"].values()
                      if o["success_time"] and datetime.fromisoformat(o["success_time"]).date() == day]
            return [self._payment_line(order) for order in orders]

    def _payment_line(self, order):
        request, total = order["request"], order["request"]["amount"]["total"]
        fee = self.trading.fee(total)
        when = datetime.fromisoformat(order["success_time"]).strftime("%Y-%m-%d %H:%M:%S")
        values = [when, request["appid"], request["mchid"], "0", "", order["transaction_id"], order["out_trade_no"],
                  order["openid"], TRADE_TYPES[order["kind"]], "SUCCESS", "OTHERS", "CNY", yuan(total), "0.00", "0", "0",
                  "0.00", "0.00", "", "", request["description"], request.get("attach", ""), yuan(fee),
                  self._rate(), yuan(total), "0.00", ""]
        return {"time": when, "values": values, "settled": total, "refund": 0, "fee": fee, "total": total,
                "requested": 0}

    def _refund_lines(self, day):
        with self.trading.store.read() as data:
            return [self._refund_line(refund, data["orders"][refund["out_trade_no"]])
                    for refund in data["refunds"].values()
                    if datetime.fromisoformat(refund["create_time"]).date() == day]

    def _refund_line(self, refund, order):
        request, total = order["request"], order["request"]["amount"]["total"]
        returned = refund_fee(self.trading.fee(total), total, refund["amount"])
        when = datetime.fromisoformat(refund["create_time"]).strftime("%Y-%m-%d %H:%M:%S")
        values = [when, request["appid"], request["mchid"], "0", "", order["transaction_id"], order["out_trade_no"],
                  order["openid"], TRADE_TYPES[order["kind"]], "REFUND", "OTHERS", "CNY", "0.00", "0.00", refund["refund_id"],
                  refund["out_refund_no"], yuan(refund["amount"]), "0.00", "ORIGINAL", refund["status"],
                  request["description"], request.get("attach", ""), yuan(-returned), self._rate(), "0.00",
                  yuan(refund["amount"]), ""]
        return {"time": when, "values": values, "settled": 0, "refund": refund["amount"], "fee": -returned,
                "total": 0, "requested": refund["amount"]}

    def _rate(self):
        return f"{Decimal(str(self.settings['fee_rate'])) * 100:.2f}%"

