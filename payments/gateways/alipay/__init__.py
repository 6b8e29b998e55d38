"""The Alipay gateway (支付宝): QR codes on computers and kiosks, mobile web pay on phones, RSA2 throughout.

Everything about it lives here: the adapter (adapter.py, on
python-alipay-sdk), its ledger of trades and refunds (models.py) and its local
simulator (simulator/). It has no page of its own: FinePay draws its QR code
and its link to mobile web pay, and its notifications come to /webhooks/alipay.
"""
from .adapter import AlipayGateway
from .models import AlipayRefund, AlipayTrade

__all__ = ["AlipayGateway", "AlipayRefund", "AlipayTrade"]
