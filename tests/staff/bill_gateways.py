"""Two test gateways known only by their daily bills, installed through a real entry point, for reconciliation.

Each serves the transactions a test put in its ``bill`` (filtered to the
window asked for). Like WeChat Pay's and Alipay's bills, a day's bill is out
only from the next morning: a window that reaches past ``bills_out_through``
(a date in China time, None: every day's is out) raises BillNotReady. A
``bill`` set to DOWN raises a GatewayError instead: the gateway does not answer.
"""
from datetime import timedelta
from zoneinfo import ZoneInfo

from payments.gateways import BillNotReady, GatewayError, PaymentGateway

DOWN = "down"
CHINA = ZoneInfo("Asia/Shanghai")


class BillGateway(PaymentGateway):
    """A gateway whose listing is the test's ``bill``, one day's bill at a time."""

    bill = ()
    bills_out_through = None

    def list_transactions(self, start, end):
        """The bill's transactions created in [start, end); BillNotReady if a day of it has no bill yet."""
        cls = type(self)
        if cls.bill == DOWN:
            raise GatewayError("connection refused", code="gateway_unavailable", retryable=True, status=503)
        last_day = (end - timedelta(microseconds=1)).astimezone(CHINA).date()
        if cls.bills_out_through is not None and last_day > cls.bills_out_through:
            raise BillNotReady(f"{self.name}: the bill for {last_day} is not out yet")
        return [t for t in cls.bill if start <= t.created_at < end]


class WalletGateway(BillGateway):
    """The first of the two, in PAYMENT_GATEWAYS order."""

    name = "wallet"
    label = "Wallet Pay"


class QrGateway(BillGateway):
    """The second."""

    name = "qrpay"
    label = "QR Pay"


ENTRY_POINTS = ("[finepay.gateways]\n"
                "wallet = tests.staff.bill_gateways:WalletGateway\n"
                "qrpay = tests.staff.bill_gateways:QrGateway\n")


# The app settings that run on both, in this order.
SETTINGS = {"PAYMENT_GATEWAYS": "wallet,qrpay"}


def install(tmp_path, monkeypatch):
    """Install a distribution whose entry points register both (as a pip install would).

    Both bills start empty, every day's out, and are put back so after the test.
    """
    dist = tmp_path / "site" / "finepay_bill_gateways-1.0.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: finepay-bill-gateways\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(ENTRY_POINTS)
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    for cls in (WalletGateway, QrGateway):
        monkeypatch.setattr(cls, "bill", ())
        monkeypatch.setattr(cls, "bills_out_through", None)
