"""The two Chinese rails for the reliability tests: their simulators as processes, and FinePay serving on loopback.

Each simulator runs as `python -m payments.gateways.<rail>.simulator` (its own
process, keys and store, as `flask --app wsgi simulate <rail>` runs it) on a
free 127.0.0.1 port. What must be said in a rail's own words (settings,
signed notifications, the simulator's view of the money) is in
tests/payments/gateways/rail_wire.py.
"""
import io
import json
import os
import subprocess
import sys
import threading
import uuid
from collections import Counter
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import requests
from werkzeug.serving import WSGIRequestHandler, make_server
from werkzeug.wrappers import Request, Response

from finepay.extensions import db
from payments.gateways import SURFACE_BROWSER, Payer, gateway_for
from payments.models import Payment
from tests.payments.gateways import rail_wire
from tests.payments.helpers import PLATE, VIN
from tests.reliability.servers import ROOT, STARTUP_SECONDS, ChildServer, free_port, wait_until

DESKTOP = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/126.0 Safari/537.36"
BEIJING = ZoneInfo("Asia/Shanghai")
TIME_FACTOR = 0.001  # WeChat Pay's 15 s first retry: 15 ms; Alipay's 4 minutes: 0.24 s


class RailSimulator(ChildServer):
    """A rail's simulator as a child process on a free loopback port, with its data directory; a context manager."""

    name = module = None
    stop_timeout = 10

    def __init__(self, tmp_path, *extra):
        self.port = free_port()
        self.dir = tmp_path / f"{self.name}-simulator"
        self.dir.mkdir(parents=True, exist_ok=True)
        args = ["--port", str(self.port), "--data-dir", str(self.dir)]
        printed = subprocess.run([sys.executable, "-m", self.module, *args, "--print-config"], cwd=ROOT,
                                 capture_output=True, text=True, timeout=60, check=True)
        self.config = json.loads(printed.stdout[printed.stdout.index("{"):])
        self.command = [sys.executable, "-m", self.module, *args, "--time-factor", str(TIME_FACTOR), *extra]
        self.log_path = self.dir / "simulator.log"

    def start(self):
        """Start it and wait until its admin API answers."""
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(self.command, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
                                            start_new_session=True)

        def up():
            if self.process.poll() is not None:
                pytest.fail(f"the {self.name} simulator exited:\n{self.log_path.read_text(errors='replace')}")
            try:
                return requests.get(self.admin_url(self.ready_path), timeout=1).ok
            except requests.RequestException:
                return False

        if not wait_until(up, STARTUP_SECONDS):
            self.stop()
            pytest.fail(f"the {self.name} simulator did not answer within {STARTUP_SECONDS} s")
        return self

    def admin(self, path, body=None):
        """GET (or POST ``body`` to) its admin API; the JSON answer."""
        url = self.admin_url(path)
        answer = requests.post(url, json=body, timeout=10) if body is not None else requests.get(url, timeout=10)
        assert answer.ok, answer.text
        return answer.json()

    def approve(self, qr_payload):
        """What the payer's phone does with the QR code: open the order's page at the simulator, then approve."""
        page = self.payer_page(qr_payload)
        return requests.post(page.url, data={"action": "approve"}, timeout=10, allow_redirects=False)


class WeChatPaySimulator(RailSimulator):
    """The WeChat Pay API v3 simulator; refunds stay PROCESSING until a test settles them."""

    name, module, ready_path = "wechatpay", "payments.gateways.wechatpay.simulator", "state"

    def admin_url(self, path):
        return f"{self.config['base_url']}/simulator/admin/{path}"

    def settings(self, notify_url):
        return rail_wire.wechatpay_settings(self.config, notify_url)

    def payer_page(self, qr_payload):
        page = requests.get(rail_wire.wechatpay_scan_url(self.config, qr_payload), timeout=10)
        assert page.ok, page.text
        return page

    def switch(self, mode, count, seconds=0):
        """The next ``count`` notifications: duplicate, reorder (held, then newest first), delay or drop."""
        self.admin("notifications", {"mode": mode, "count": count, "seconds": seconds})

    def release(self):
        """Send the notifications held for reordering now, newest first (the last of them releases them anyway)."""
        self.admin("notifications/release", {})

    def reset(self):
        """Real time, no fault, nothing held back for reordering."""
        self.admin("clock", {"reset": True})
        requests.delete(self.admin_url("faults"), timeout=10).raise_for_status()
        self.release()

    def move_clock(self, moment):
        self.admin("clock", {"now": moment.isoformat()})

    def slow_queries(self, count, seconds):
        """Hold the next ``count`` order queries ``seconds`` before answering (a notification's handler waits on one)."""
        self.admin("faults", {"kind": "timeout", "count": count, "seconds": seconds,
                              "path": "/v3/pay/transactions/out-trade-no/"})

    def charges(self, orders):
        """What the simulator kept for these orders (it holds other tests' orders too)."""
        kept = rail_wire.wechatpay_charges(self.admin("state"))
        return {order: kept[order] for order in orders if order in kept}

    def order_state(self, order):
        return rail_wire.wechatpay_order_state(self.admin("state"), order)

    def refund_state(self, refund_id):
        return rail_wire.wechatpay_refund_state(self.admin("state"), refund_id)

    def settle_refund(self, refund_id):
        self.admin(f"refunds/{refund_id}", {"status": "SUCCESS"})

    def forgeries(self, order, amount):
        return rail_wire.wechatpay_forgeries(self.dir, order, amount)

    def deliveries(self, notify_url):
        return [d for d in self.admin("state")["notifications"] if d["url"] == notify_url]

    def settled(self, notify_url):
        """Every notification to notify_url is answered (or was dropped)."""
        return all(d["state"] in ("delivered", "dropped") for d in self.deliveries(notify_url))

    def figures(self, notify_url):
        """Notifications to ``notify_url``: how many went out (each try, each copy), duplicated, retried, dropped,
        and FinePay's answers (None: no answer, the connection broke)."""
        deliveries = self.deliveries(notify_url)
        answers = Counter(str(t["status"]) for d in deliveries for t in d["tries"])
        return {"notifications": len({d["id"] for d in deliveries}),
                "sent": sum(answers.values()),
                "duplicated": sum(1 for d in deliveries if d["key"].endswith("#duplicate")),
                "retried": sum(max(len(d["tries"]) - 1, 0) for d in deliveries),
                "dropped": sum(1 for d in deliveries if d["state"] == "dropped"),
                "answers": dict(answers)}


class AlipaySimulator(RailSimulator):
    """The Alipay open-platform simulator."""

    name, module, ready_path = "alipay", "payments.gateways.alipay.simulator", "clock"

    def admin_url(self, path):
        return f"{self.config['admin_url']}{path}"

    def settings(self, notify_url):
        return rail_wire.alipay_settings(self.config, notify_url)

    def payer_page(self, qr_payload):
        page = requests.get(qr_payload, timeout=10)
        assert page.ok, page.text
        return page

    def switch(self, mode, count, seconds=0):
        """The next ``count`` notifications: duplicate, delay or drop; "reorder" holds them until release()."""
        if mode == "reorder":
            self.admin("notifications", {"action": "hold"})
        else:
            self.admin("notifications", {"action": mode, "count": count, "seconds": seconds})

    def release(self):
        """Send the held notifications, newest first."""
        self.admin("notifications", {"action": "release", "order": "newest_first"})

    def reset(self):
        self.admin("clock", {"reset": True})
        self.release()

    def move_clock(self, moment):
        self.admin("clock", {"now": moment.astimezone(BEIJING).strftime("%Y-%m-%d %H:%M:%S")})

    def slow_queries(self, count, seconds):
        """Hold the next ``count`` trade queries ``seconds`` before answering (a notification's handler waits on one)."""
        self.slow_calls("alipay.trade.query", count, seconds)

    def slow_calls(self, method, count, seconds):
        """Hold the next ``count`` calls of ``method`` ``seconds``, then do them."""
        self.admin("faults", {"fault": "timeout", "count": count, "seconds": seconds, "method": method})

    def trades(self, orders):
        return [self.admin(f"trades/{order}") for order in orders]

    def charges(self, orders):
        """What the simulator kept for these orders."""
        return rail_wire.alipay_charges(self.trades(orders))

    def order_state(self, order):
        return rail_wire.alipay_order_state(self.admin(f"trades/{order}"))

    def forgeries(self, order, amount):
        return rail_wire.alipay_forgeries(self.dir, order, amount)

    def deliveries(self, notify_url):
        return [n for n in self.admin("notifications")["notifications"] if n["url"] == notify_url]

    def settled(self, notify_url):
        return all(n["state"] in ("delivered", "dropped") for n in self.deliveries(notify_url))

    def figures(self, notify_url):
        notifications = self.deliveries(notify_url)
        return {"notifications": len(notifications),
                "sent": sum(n["attempts"] * n["copies"] for n in notifications),
                "duplicated": sum(n["attempts"] * (n["copies"] - 1) for n in notifications),
                "retried": sum(max(n["attempts"] - 1, 0) * n["copies"] for n in notifications),
                "dropped": sum(1 for n in notifications if n["state"] == "dropped"),
                "last_answers": dict(Counter(f"{n['last_status']} {n['last_body']}" for n in notifications
                                             if n["attempts"]))}


class QuietHandler(WSGIRequestHandler):
    """No line per request: the summary lines are what a reader of `pytest -s` wants."""

    def log_request(self, *args):
        pass


class FinePayServer:
    """FinePay's app served on a loopback port by this process (threaded), keeping every notification it answered.

    The port is chosen before the app is made, so that the app's notify URLs
    can name it; ``tapped`` holds (path, body, headers, status, answer) of
    each request under /webhooks/, for replays and figures.
    """

    def __init__(self, port):
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.tapped = []
        self.lock = threading.Lock()
        self.app = self.server = self.thread = None

    def notify_url(self, rail):
        return f"{self.url}/webhooks/{rail}"

    def _serve(self, environ, start_response):
        if not environ.get("PATH_INFO", "").startswith("/webhooks/"):
            return self.app(environ, start_response)
        request = Request(environ)
        body, headers = request.get_data(), dict(request.headers)
        environ["wsgi.input"], environ["CONTENT_LENGTH"] = io.BytesIO(body), str(len(body))
        response = Response.from_app(self.app, environ, buffered=True)
        with self.lock:
            self.tapped.append((environ["PATH_INFO"], body, headers, response.status_code,
                                response.get_data(as_text=True)))
        return response(environ, start_response)

    def start(self, app):
        self.app = app
        self.server = make_server("127.0.0.1", self.port, self._serve, threaded=True,
                                  request_handler=QuietHandler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        return self

    def stop(self):
        if self.server is not None:
            self.server.shutdown()
            self.thread.join(timeout=10)
            self.server.server_close()

    def received(self, rail):
        """What the simulator (or anyone) posted to this rail's notify URL, with FinePay's answers."""
        with self.lock:
            return [entry for entry in self.tapped if entry[0] == f"/webhooks/{rail}"]


def calling(pids, ports):
    """The first of these processes with a connection open to one of these loopback ports (a call in flight), or None.

    The simulators answer HTTP/1.0 and close, so an established connection to
    one is a request still waiting for its answer.
    """
    wanted = {f"0100007F:{port:04X}" for port in ports}
    held = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if fields[2] in wanted and fields[3] == "01":  # ESTABLISHED
            held.add(f"socket:[{fields[9]}]")
    for pid in pids:
        try:
            if any(os.readlink(fd) in held for fd in Path(f"/proc/{pid}/fd").iterdir()):
                return pid
        except OSError:
            continue
    return None


def new_payments(base_url, violations, rail):
    """Payments of these violations (one each) through FinePay's API, by ``rail``, as a desktop browser; their ids."""
    ids = []
    for violation in violations:
        answer = requests.post(f"{base_url}/api/v1/payments", timeout=30,
                               headers={"Idempotency-Key": str(uuid.uuid4()), "User-Agent": DESKTOP},
                               json={"plate": PLATE, "vin_last6": VIN, "violation_ids": [violation], "gateway": rail})
        assert answer.status_code == 201, answer.text
        ids.append(answer.json()["id"])
    return ids


def place_order(app, payment_id):
    """The order a desktop payer's pay page places at the payment's gateway; its QR code's payload."""
    with app.test_request_context(headers={"User-Agent": DESKTOP}):
        payment = db.session.get(Payment, payment_id)
        return gateway_for(payment).next_action(payment, Payer(SURFACE_BROWSER, DESKTOP)).qr_payload


def statuses(payment_ids):
    """Each payment's status now, by id.

    The read transaction ends at once: on SQLite a reader that polls inside
    one open transaction keeps FinePay's writers waiting.
    """
    db.session.expire_all()
    found = {pid: db.session.get(Payment, pid).status for pid in payment_ids}
    db.session.rollback()
    return found
