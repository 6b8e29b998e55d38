"""China's two payment rails on loopback: the WeChat Pay and Alipay simulators and a live FinePay that pays through them.

FinePay is configured as a deployment would be (PAYMENT_GATEWAYS=wechatpay,alipay,sandbox),
with each adapter's settings taken from its simulator's --print-config, and PUBLIC_BASE_URL
set to its own loopback address so that both simulators deliver their notifications to
/webhooks/wechatpay and /webhooks/alipay and send the phone back to FinePay's return page.
Everything binds 127.0.0.1 on a free port and stops when the ``running_rails`` block ends.
"""
import threading
from contextlib import contextmanager
from dataclasses import dataclass

import requests
from werkzeug.serving import make_server

from finepay.extensions import db
from payments.gateways.alipay.simulator.app import Simulator as AlipaySimulator
from payments.gateways.wechatpay.simulator import Simulator as WeChatPaySimulator
from tests.live import app_on_copy
from tests.payments.gateways.rail_wire import alipay_settings, wechatpay_settings

GATEWAYS = "wechatpay,alipay,sandbox"
# Notification retries come within a second or two instead of minutes.
WECHATPAY_TIME_FACTOR = 0.01
ALIPAY_TIME_FACTOR = 0.001


@dataclass
class Rails:
    """The live FinePay (url, app) and the two simulators' base URLs, for pages and admin calls."""

    url: str
    app: object
    wechatpay: WeChatPaySimulator
    alipay_url: str

    def wechatpay_admin(self, method, path, **json):
        """Call the WeChat Pay simulator's admin API (/simulator/admin/PATH) and return its JSON answer."""
        answer = requests.request(method, f"{self.wechatpay.base_url}/simulator/admin/{path}", json=json, timeout=5)
        answer.raise_for_status()
        return answer.json()

    def alipay_admin(self, method, path, **json):
        """Call the Alipay simulator's admin API (/simulator/admin/PATH) and return its JSON answer."""
        answer = requests.request(method, f"{self.alipay_url}/simulator/admin/{path}", json=json, timeout=5)
        answer.raise_for_status()
        return answer.json()


class _Deferred:
    """A WSGI app to be named later: the server's port must be known before FinePay's settings are."""

    app = None

    def __call__(self, environ, start_response):
        return self.app(environ, start_response)


@contextmanager
def _served(wsgi, name):
    """Serve ``wsgi`` on a free loopback port in a thread; yields the server; stops it on exit."""
    server = make_server("127.0.0.1", 0, wsgi, threaded=True)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), name=name, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        thread.join(timeout=10)
        server.server_close()


@contextmanager
def running_rails(sqlite_template, directory, **overrides):
    """Both simulators and FinePay on a copy of the migrated SQLite database in ``directory``; yields Rails.

    Refunds at the WeChat Pay simulator settle at once (refund_delay 0), as a
    small refund usually does, so that a surplus refund shows as made.
    """
    wechatpay = WeChatPaySimulator(directory / "wechatpay", time_factor=WECHATPAY_TIME_FACTOR, refund_delay=0).start()
    alipay = AlipaySimulator(directory / "alipay", time_factor=ALIPAY_TIME_FACTOR, notify_timeout=2)
    finepay = _Deferred()
    try:
        with _served(alipay.app, "alipay-simulator") as alipay_server, _served(finepay, "finepay-rails") as server:
            alipay.start()
            url = f"http://127.0.0.1:{server.server_port}"
            finepay.app = app_on_copy(
                sqlite_template, directory, PAYMENT_GATEWAYS=GATEWAYS, PUBLIC_BASE_URL=url,
                **wechatpay_settings(wechatpay.config()),
                **alipay_settings(alipay.account.client_config(alipay_server.server_port)), **overrides,
            )
            try:
                yield Rails(url, finepay.app, wechatpay, f"http://127.0.0.1:{alipay_server.server_port}")
            finally:
                with finepay.app.app_context():
                    db.engine.dispose()
    finally:
        alipay.stop()
        wechatpay.stop()
