"""The simulator's pages: the payer's page (the phone that scans, the mobile cashier) and the cashier's error page.

They stand in for Alipay's own screens, in Alipay's language, and say on every view that
they are a simulation: no money moves.
"""
from flask import current_app, render_template_string

_LAYOUT = """<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{% block title %}{% endblock %} · 支付宝（模拟） SIMULATION</title>
<style>
 body { font-family: sans-serif; margin: 0; background: #f5f5f5; color: #222; }
 .banner { background: #b00020; color: #fff; padding: .6em 1em; font-weight: bold; text-align: center; }
 main { max-width: 28em; margin: 1.5em auto; background: #fff; padding: 1.2em; border-radius: .5em; }
 .amount { font-size: 2em; margin: .3em 0; }
 button { display: block; width: 100%; margin: .5em 0; padding: .8em; font-size: 1em; border-radius: .3em;
          border: 1px solid #1677ff; background: #fff; }
 button#approve { background: #1677ff; color: #fff; }
 .status { padding: .5em; background: #eef; }
</style></head>
<body><div class="banner" role="alert">SIMULATION · 模拟支付宝 · 不会发生真实扣款 · no money moves</div>
<main>{% block body %}{% endblock %}</main></body></html>"""

_PAYER = """{% extends layout %}{% block title %}{{ trade.subject }}{% endblock %}{% block body %}
<h1>支付宝（模拟）</h1>
<p>{{ account.seller_email }} · {{ trade.subject }}</p>
<p class="amount" data-amount="{{ amount }}">¥{{ amount }}</p>
<p>商户订单号 <code>{{ trade.out_trade_no }}</code></p>
{% if message %}<p class="status" id="message" role="status">{{ message }}</p>{% endif %}
<p class="status" id="state" data-state="{{ trade.status }}">{{ states[trade.status] }}</p>
{% if trade.status == "WAIT_BUYER_PAY" %}
<form method="post">
 <button id="approve" name="action" value="approve">确认付款 Approve</button>
 <button id="fail" name="action" value="fail">余额不足 Fail (insufficient balance)</button>
 <button id="cancel" name="action" value="cancel">取消 Cancel</button>
</form>
{% endif %}
{% endblock %}"""

_ERROR = """{% extends layout %}{% block title %}错误{% endblock %}{% block body %}
<h1>调试错误，请回到请求来源地，重新发起请求。</h1>
<p id="error">错误代码 {{ sub_code }} 错误原因: {{ sub_msg }}</p>
{% endblock %}"""

STATES = {
    "WAIT_BUYER_PAY": "等待付款 Waiting for payment",
    "TRADE_SUCCESS": "支付成功 Paid",
    "TRADE_FINISHED": "交易结束 Finished",
    "TRADE_CLOSED": "交易已关闭 Closed",
}


def payer_page(trade, account, amount, message=None):
    """The trade as the buyer sees it, with approve, fail and cancel while it waits for payment."""
    return render_template_string(_PAYER, layout=_layout(), trade=trade, account=account, amount=amount,
                                  message=message, states=STATES)


def error_page(sub_code, sub_msg):
    """The cashier's page for a request it refuses."""
    return render_template_string(_ERROR, layout=_layout(), sub_code=sub_code, sub_msg=sub_msg)


def _layout():
    return current_app.jinja_env.from_string(_LAYOUT)
