"""The merchant's daily trade bill (bill_type trade): a zip of two GBK CSV files, as Alipay serves it.

``<account>_<yyyyMMdd>_业务明细.csv`` lists the day's trades (业务类型 交易) and refunds
(退款, negative amounts, with the refund's out_request_no) between its preface and its
totals; ``<account>_<yyyyMMdd>_业务明细(汇总).csv`` sums them. Identifiers end with a tab
so that spreadsheets keep their digits. The service fee is negative on a trade (charged)
and positive on a refund (handed back). Alipay names the zip's entries in GBK without the
UTF-8 flag; so does this (read them with ``zipfile.ZipFile(..., metadata_encoding="gbk")``).
A day's bill is ready at 10:00 the next day (Beijing time).
"""
import io
import zipfile
from datetime import datetime, time, timedelta

from .clock import BEIJING, FORMAT
from .trades import yuan

READY_AT = time(10, 0)
DETAIL_COLUMNS = (
    "支付宝交易号", "商户订单号", "业务类型", "商品名称", "创建时间", "完成时间", "门店编号", "门店名称", "操作员",
    "终端号", "对方账户", "订单金额（元）", "商家实收（元）", "支付宝红包（元）", "集分宝（元）", "支付宝优惠（元）",
    "商家优惠（元）", "券核销金额（元）", "券名称", "商家红包消费金额（元）", "卡消费金额（元）", "退款批次号/请求号",
    "服务费（元）", "分润（元）", "备注",
)
SUMMARY_COLUMNS = (
    "门店编号", "门店名称", "交易订单总笔数", "退款订单总笔数", "订单金额（元）", "商家实收（元）", "支付宝优惠（元）",
    "商家优惠（元）", "卡消费金额（元）", "服务费（元）", "分润（元）", "实收净额（元）",
)
DETAIL_START = "#-----------------------------------------业务明细列表----------------------------------------"
DETAIL_END = "#-----------------------------------------业务明细列表结束------------------------------------"
SUMMARY_START = "#-----------------------------------------业务汇总列表----------------------------------------"
SUMMARY_END = "#----------------------------------------业务汇总列表结束-------------------------------------"


def ready(bill_date, now):
    """Whether the bill of ``bill_date`` can be downloaded at ``now``."""
    return now >= datetime.combine(bill_date + timedelta(days=1), READY_AT, BEIJING)


class _GbkName(zipfile.ZipInfo):
    """A zip entry named in GBK without the UTF-8 flag, as Alipay's bill archives are."""

    def _encodeFilenameFlags(self):  # zipfile's own hook, which would name the entry in UTF-8
        return self.filename.encode("gbk"), self.flag_bits & ~0x800


def _tabbed(value):
    return f"{value}\t"


def _masked(trade):
    return f"{trade['buyer_logon_id']}\t"


def _preface(title, account, bill_date):
    start = datetime.combine(bill_date, time(0), BEIJING)
    end = start + timedelta(days=1)
    return [title, f"#账号：[{account.bill_account}]",
            f"#起始日期：[{start:%Y年%m月%d日 %H:%M:%S}]   终止日期：[{end:%Y年%m月%d日 %H:%M:%S}]"]


def _trade_line(trade):
    total = yuan(trade["total_fen"])
    return [_tabbed(trade["trade_no"]), _tabbed(trade["out_trade_no"]), "交易\t", trade["subject"],
            trade["gmt_create"], trade["gmt_payment"], "\t", "\t", "\t", "\t", _masked(trade), total, total,
            "0.00", "0.00", "0.00", "0.00", "0.00", "", "0.00\t", "0.00", "\t", yuan(-trade["fee_fen"]), "0.00", ""]


def _refund_line(refund):
    trade, amount = refund["trade"], yuan(-refund["refund_fen"])
    return [_tabbed(trade["trade_no"]), _tabbed(trade["out_trade_no"]), "退款\t", trade["subject"],
            trade["gmt_create"], refund["gmt_refund"][:19], "\t", "\t", "\t", "\t", _masked(trade), amount, amount,
            "0.00", "0.00", "0.00", "0.00", "0.00", "", "0.00\t", "0.00", _tabbed(refund["out_request_no"]),
            yuan(refund["fee_returned_fen"]), "0.00", refund["reason"] or ""]


def _csv(lines):
    return ("\r\n".join(",".join(line) if isinstance(line, list) else line for line in lines) + "\r\n").encode("gbk")


def build_zip(store, account, bill_date, now):
    """The zip file's name and bytes for the trade bill of ``bill_date`` as exported at ``now``."""
    start = datetime.combine(bill_date, time(0), BEIJING).strftime(FORMAT)
    end = datetime.combine(bill_date + timedelta(days=1), time(0), BEIJING).strftime(FORMAT)
    trades = store.trades_paid_between(start, end)
    refunds = store.refunds_between(start, end)
    paid = sum(trade["total_fen"] for trade in trades)
    refunded = sum(refund["refund_fen"] for refund in refunds)
    fees = sum(refund["fee_returned_fen"] for refund in refunds) - sum(trade["fee_fen"] for trade in trades)
    exported = f"#导出时间：[{now:%Y年%m月%d日 %H:%M:%S}]"
    detail = [
        *_preface("#支付宝业务明细查询", account, bill_date), DETAIL_START, list(DETAIL_COLUMNS),
        *(_trade_line(trade) for trade in trades), *(_refund_line(refund) for refund in refunds), DETAIL_END,
        f"#交易合计：{len(trades)}笔，商家实收共{yuan(paid)}元，商家优惠共0.00元",
        f"#退款合计：{len(refunds)}笔，商家实收退款共{yuan(-refunded)}元，商家优惠退款共0.00元",
        exported,
    ]
    net = yuan(paid - refunded + fees)
    summary = [
        *_preface("#支付宝业务汇总查询", account, bill_date), SUMMARY_START, list(SUMMARY_COLUMNS),
        ["合计", "", str(len(trades)), str(len(refunds)), yuan(paid - refunded), yuan(paid - refunded),
         "0.00", "0.00", "0.00", yuan(fees), "0.00", net],
        SUMMARY_END, exported,
    ]
    name = f"{account.bill_account}_{bill_date:%Y%m%d}"
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as bundle:
        for suffix, lines in (("业务明细", detail), ("业务明细(汇总)", summary)):
            entry = _GbkName(f"{name}_{suffix}.csv", date_time=now.timetuple()[:6])
            entry.compress_type = zipfile.ZIP_DEFLATED
            bundle.writestr(entry, _csv(lines))
    return f"{name}.csv.zip", archive.getvalue()
