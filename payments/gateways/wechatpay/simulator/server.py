"""The simulator as one object: its account, store, clock and back end, served by werkzeug's threaded server.

``Simulator(...).start()`` runs it in background threads (tests); ``serve()``
runs it in the foreground until interrupted (the ``flask simulate`` command).
"""
import logging
import threading
from pathlib import Path

from cryptography import x509
from flask import Flask
from werkzeug.serving import make_server

from . import account, admin, api, pages
from .bills import Bills
from .clock import Clock
from .faults import Faults
from .notifier import Notifier
from .store import Store
from .trading import Trading

log = logging.getLogger(__name__)
# how often the worker settles due refunds and sends due notifications, and the server checks for stop (seconds)
TICK = 0.05


class Simulator:
    """A WeChat Pay API v3 simulator bound to ``host``:``port`` (0 = a free port), keeping its state in ``data_dir``."""

    def __init__(self, data_dir, *, port=0, host="127.0.0.1", time_factor=1.0, signing="public-key",
                 fee_rate=0.006, refund_delay=5.0, bill_hour=10):
        self.account = account.load_or_create(data_dir)
        self.platform_certificate = x509.load_pem_x509_certificate(self.account.platform_cert_pem.encode())
        self.settings = {"signing": signing, "fee_rate": fee_rate, "refund_delay": refund_delay,
                         "bill_hour": bill_hour}
        self.store = Store(Path(data_dir) / "store.json")
        self.clock = Clock(time_factor)
        self.faults = Faults()
        self.oauth_codes = {}
        self.notifier = Notifier(self.account, self.store, self.clock, self.settings)
        self.server = make_server(host, port, self._app(), threaded=True)
        self.base_url = f"http://{host}:{self.server.server_port}"
        self.trading = Trading(self.account, self.store, self.clock, self.settings, self.notifier, self.base_url)
        self.bills = Bills(self.trading, self.settings)
        self._stopping = threading.Event()
        self._threads = []

    def _app(self):
        app = Flask(__name__)
        app.extensions["wechatpay_simulator"] = self
        for blueprint in (api.bp, pages.bp, admin.bp):
            app.register_blueprint(blueprint)
        return app

    def config(self):
        """What ``--print-config`` prints: everything a client needs."""
        return self.account.config(self.base_url, self.settings["signing"])

    def _work(self):
        while not self._stopping.wait(TICK):
            try:
                self.trading.settle_due_refunds()
                self.notifier.deliver_due()
            except Exception:
                # one bad record must not stop every later refund and notification
                log.exception("the WeChat Pay simulator's worker failed; it goes on")

    def start(self):
        """Serve and work in background threads; returns at once."""
        self._threads = [threading.Thread(target=self.server.serve_forever, args=(TICK,), daemon=True),
                         threading.Thread(target=self._work, daemon=True)]
        for thread in self._threads:
            thread.start()
        return self

    def stop(self):
        """Stop serving and working, and release the port."""
        self._stopping.set()
        self.server.shutdown()
        for thread in self._threads:
            thread.join()
        self.server.server_close()

    def serve(self):
        """Serve in the foreground until Ctrl-C or SIGTERM."""
        worker = threading.Thread(target=self._work, daemon=True)
        worker.start()
        try:
            self.server.serve_forever()
        finally:
            self._stopping.set()
            worker.join()
            self.server.server_close()
