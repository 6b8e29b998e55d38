"""Two test gateways known only by their bills, installed through a real entry point, for reconciliation across gateways.

Each serves the transactions a test put in its ``bill`` (filtered to the
window asked for), or raises BillNotReady when the test set ``bill`` to
NOT_READY, or a GatewayError when it set ``bill`` to DOWN: what the
reconciliation needs from WeChat Pay's and Alipay's daily bills, without
their formats.
"""
from payments.gateways import BillNotReady, GatewayError, PaymentGateway

NOT_READY = "not ready"
DOWN = "down"


class BillGateway(PaymentGateway):
    """A gateway whose listing is the test's ``bill``."""

    bill = ()

    def list_transactions(self, start, end):
        """The bill's transactions created in [start, end)."""
        bill = type(self).bill
        if bill == NOT_READY:
            raise BillNotReady(f"{self.name}: the bill is not out yet")
        if bill == DOWN:
            raise GatewayError("connection refused", code="gateway_unavailable", retryable=True, status=503)
        return [t for t in bill if start <= t.created_at < end]


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

    Both bills start empty and are emptied again after the test.
    """
    dist = tmp_path / "site" / "finepay_bill_gateways-1.0.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: finepay-bill-gateways\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(ENTRY_POINTS)
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    for cls in (WalletGateway, QrGateway):
        monkeypatch.setattr(cls, "bill", ())
