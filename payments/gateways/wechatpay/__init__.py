"""The WeChat Pay gateway: API v3 through wechatpayv3, for a direct merchant with an official account.

Everything about it lives here: the adapter (adapter.py), the merchant's keys
(credentials.py), its ledger of orders (models.py), the official account's
OAuth step that gives a payer's openid (views.py), its part of the pay page
inside WeChat (templates/wechatpay/jsapi.html with static/jsapi.js) and, in
simulator/, a local stand-in for WeChat Pay's servers.
"""
from .adapter import WeChatPayGateway
from .models import WeChatPayOrder

__all__ = ["WeChatPayGateway", "WeChatPayOrder"]
