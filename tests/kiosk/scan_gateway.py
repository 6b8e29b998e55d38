"""A test rail that asks a kiosk's driver to scan a QR code with a phone, installed through a real entry point.

It is the sandbox's ledger without its card reader: at a kiosk its next_action
is SCAN_QR (as WeChat Pay Native or Alipay precreate would be), and ``pay``
stands in for the driver's phone paying the scanned order at the rail (which
FinePay hears of only by asking, or by closing the order).
"""
from flask_babel import lazy_gettext as _l

from payments.gateways import SURFACE_KIOSK, NextAction, load_gateway_class

NAME = "scanpay"
ENTRY_POINTS = f"[finepay.gateways]\n{NAME} = tests.kiosk.scan_gateway:ScanGateway\n"


class ScanGateway(load_gateway_class("sandbox")):
    """The sandbox, paid by scanning a QR code at a kiosk instead of a card on its reader."""

    name = NAME
    label = _l("Scan pay (test)")
    supports_card_present = False

    def serves(self, payer):
        """Every payer: a kiosk's driver with a phone, or a browser."""
        return True

    def next_action(self, payment, payer):
        """At a kiosk, a QR code of the order for the driver's phone; in a browser, the sandbox's test cards."""
        if payer.surface == SURFACE_KIOSK:
            return NextAction.scan_qr(f"scanpay://order/{payment.gateway_intent_id}", poll_seconds=1)
        return super().next_action(payment, payer)

    def pay(self, intent_id):
        """The driver's phone pays the scanned order (the rail captures the money)."""
        return self.confirm_intent(intent_id, payment_method="pm_card_visa", idempotency_key=f"{intent_id}:phone")


def install(tmp_path, monkeypatch):
    """Install a distribution whose entry point registers the scan rail (as a pip install would).

    Returns the app settings of a kiosk that offers it beside the card sandbox's reader.
    """
    dist = tmp_path / "site" / "finepay_scan_gateway-1.0.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: finepay-scan-gateway\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(ENTRY_POINTS)
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    return {"PAYMENT_GATEWAYS": f"sandbox,{NAME}"}
