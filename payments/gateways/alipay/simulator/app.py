"""The simulator as a server: its Flask app (gateway, payer pages, bill downloads, admin API) and its notifier loop.

It is its own small app and process: it imports nothing of FinePay's and shares no
database with it. Admin endpoints under ``/simulator/admin/`` let tests and demos move the
clock, arm faults, steer notifications, finish trades and set the seller's balance.
"""
import threading
from datetime import date
from decimal import Decimal
from urllib.parse import urlencode

from flask import Flask, Response, abort, jsonify, redirect, request

from . import pages, signing
from .account import open_account
from .bills import build_zip
from .clock import Clock, format_time, parse
from .gateway import API_METHODS, CASHIER_METHODS, Faults, Gateway, GatewayRefusal
from .notifier import Notifier
from .store import Store
from .trades import TRADE_SUCCESS, WAIT_BUYER_PAY, Refused, Trades, yuan

JSON_TYPE = "application/json;charset=utf-8"
LOOP_INTERVAL = 0.05


class Simulator:
    """One simulated Alipay on a data directory: ``app`` to serve, ``start()``/``stop()`` for its notifier loop."""

    def __init__(self, data_dir, time_factor=1.0, notify_timeout=10.0):
        self.account = open_account(data_dir)
        self.store = Store(self.account.data_dir / "store.sqlite3")
        self.clock = Clock(self.store)
        self.notifier = Notifier(self.store, self.clock, self.account, time_factor, notify_timeout)
        self.trades = Trades(self.store, self.clock, self.account, self.notifier)
        self.faults = Faults()
        self.gateway = Gateway(self.trades, self.account, self.faults)
        self.app = self._build_app()
        self._stopping = threading.Event()
        self._thread = None

    def start(self):
        """Run the loop that closes expired trades and delivers notifications."""
        self._thread = threading.Thread(target=self._loop, name="alipay-simulator-notifier", daemon=True)
        self._thread.start()

    def stop(self):
        """Stop the loop and close the store."""
        self._stopping.set()
        if self._thread:
            self._thread.join(timeout=30)
        self.store.close()

    def _loop(self):
        while not self._stopping.wait(LOOP_INTERVAL):
            self.trades.expire_due()
            self.notifier.deliver_due()

    def _build_app(self):
        app = Flask(__name__)
        app.add_url_rule("/gateway.do", "gateway", self.gateway_do, methods=["GET", "POST"])
        app.add_url_rule("/simulator/qr/<token>", "qr", self.scan)
        app.add_url_rule("/simulator/pay/<token>", "pay", self.payer, methods=["GET", "POST"])
        app.add_url_rule("/downloadBillFile.resource", "bill", self.bill)
        admin = [
            ("clock", self.admin_clock, ["GET", "POST"]),
            ("faults", self.admin_faults, ["GET", "POST"]),
            ("notifications", self.admin_notifications, ["GET", "POST"]),
            ("notifications/<int:notification_id>/resend", self.admin_resend, ["POST"]),
            ("trades/<path:out_trade_no>", self.admin_trade, ["GET"]),
            ("trades/<path:out_trade_no>/finish", self.admin_finish, ["POST"]),
            ("balance", self.admin_balance, ["GET", "POST"]),
        ]
        for path, view, methods in admin:
            app.add_url_rule(f"/simulator/admin/{path}", f"admin_{path}", view, methods=methods)
        return app

    # the gateway
    def gateway_do(self):
        """An openapi call (JSON answer), or a cashier redirect from the buyer's browser."""
        params = {**request.args.to_dict(), **request.form.to_dict()}
        if params.get("method") in CASHIER_METHODS:
            return self.cashier(params)
        return Response(self.gateway.answer(params, request.host_url), content_type=JSON_TYPE)

    def cashier(self, params):
        """alipay.trade.wap.pay / page.pay: check the signed redirect, place the trade, show the payer's page."""
        try:
            method, biz = self.gateway.check(params, CASHIER_METHODS)
            trade = self.trades.place(method, biz, params)
        except GatewayRefusal as refusal:
            return pages.error_page(refusal.refusal.sub_code.removeprefix("isv."), refusal.refusal.sub_msg)
        except Refused as refusal:
            return pages.error_page(refusal.sub_code, refusal.sub_msg)
        return redirect(f"/simulator/pay/{trade['token']}")

    # the payer
    def scan(self, token):
        """What a phone does with the QR code: open the payer's page for its trade."""
        if self.store.trade_by("token", token) is None:
            abort(404)
        return redirect(f"/simulator/pay/{token}")

    def payer(self, token):
        """The buyer's view of a trade; approve, fail (insufficient balance) or cancel."""
        trade = self.trades.open_by_payer(token)
        if trade is None:
            abort(404)
        message = None
        if request.method == "POST" and trade["status"] == WAIT_BUYER_PAY:
            action = request.form.get("action")
            if action == "approve":
                trade = self.trades.pay(token)
                if trade["status"] == TRADE_SUCCESS and trade["return_url"]:
                    return redirect(self._return_url(trade))
                message = "支付成功 Paid"
            elif action == "fail":
                message = "余额不足，请更换付款方式 Insufficient balance: payment failed"
            elif action == "cancel":
                if trade["quit_url"] or trade["return_url"]:
                    return redirect(trade["quit_url"] or trade["return_url"])
                message = "已取消付款 Payment cancelled"
        return pages.payer_page(trade, self.account, yuan(trade["total_fen"]), message)

    def _return_url(self, trade):
        """The merchant's return_url with the signed synchronous return parameters."""
        params = {
            "charset": "utf-8", "out_trade_no": trade["out_trade_no"], "method": f"{trade['method']}.return",
            "total_amount": yuan(trade["total_fen"]), "trade_no": trade["trade_no"],
            "auth_app_id": self.account.app_id, "version": "1.0", "app_id": self.account.app_id,
            "sign_type": trade["sign_type"], "seller_id": self.account.seller_id,
            "timestamp": format_time(self.clock.now()),
        }
        content = signing.sign_content(params, signing.NOTIFICATION_UNSIGNED)
        params["sign"] = signing.sign(self.account.alipay_private_key, content, trade["sign_type"])
        separator = "&" if "?" in trade["return_url"] else "?"
        return f"{trade['return_url']}{separator}{urlencode(params)}"

    # bills
    def bill(self):
        """A bill download link from alipay.data.dataservice.bill.downloadurl.query, for 30 seconds."""
        link = self.store.bill_link(request.args.get("fileId", ""))
        if link is None or parse(link["expires_at"]) < self.clock.now():
            return Response("<html><body>链接已失效 The download link has expired.</body></html>", status=403,
                            content_type="text/html;charset=utf-8")
        name, body = build_zip(self.store, self.account, date.fromisoformat(link["bill_date"]), self.clock.now())
        return Response(body, content_type="application/zip",
                        headers={"Content-Disposition": f'attachment; filename="{name}"'})

    # admin
    def admin_clock(self):
        """GET: the clock. POST {"now": "yyyy-MM-dd HH:mm:ss"} | {"advance_seconds": N} | {"reset": true}."""
        body = request.get_json(silent=True) or {}
        if request.method == "POST":
            if body.get("reset"):
                self.clock.reset()
            elif "advance_seconds" in body:
                self.clock.advance(float(body["advance_seconds"]))
            else:
                self.clock.set(parse(str(body.get("now", ""))))
        return jsonify(now=format_time(self.clock.now()))

    def admin_faults(self):
        """GET: faults armed. POST {"fault": name, "count": N, "method": optional, "seconds": for timeout}."""
        body = request.get_json(silent=True) or {}
        if request.method == "POST":
            try:
                self.faults.arm(body.get("fault"), int(body.get("count", 1)), body.get("method"),
                                float(body.get("seconds", 0)))
            except ValueError as error:
                return jsonify(error=str(error)), 400
        return jsonify(armed=self.faults.armed(), methods=API_METHODS)

    def admin_notifications(self):
        """GET: every notification. POST {"action": drop|duplicate|delay|hold|release, "count", "seconds", "order"}."""
        body = request.get_json(silent=True) or {}
        if request.method == "POST":
            action = body.get("action")
            if action == "release":
                released = self.notifier.release(newest_first=body.get("order") == "newest_first")
                return jsonify(released=released)
            if action not in ("drop", "duplicate", "delay", "hold"):
                return jsonify(error="action must be drop, duplicate, delay, hold or release"), 400
            self.notifier.switch(action, int(body.get("count", 1)), float(body.get("seconds", 0)))
        return jsonify(switches=self.notifier.switches(), notifications=self.store.notifications())

    def admin_resend(self, notification_id):
        """Send one notification again now."""
        self.notifier.resend(notification_id)
        return jsonify(resent=notification_id)

    def admin_trade(self, out_trade_no):
        """A trade and its state, as the simulator keeps it."""
        self.trades.expire_due()
        trade = self.store.trade(out_trade_no)
        return jsonify(trade) if trade else (jsonify(error="no such trade"), 404)

    def admin_finish(self, out_trade_no):
        """End a trade's refund period: TRADE_SUCCESS becomes TRADE_FINISHED (notified)."""
        try:
            return jsonify(self.trades.finish(out_trade_no))
        except Refused as refusal:
            return jsonify(refusal.payload()), 409

    def admin_balance(self):
        """GET: the seller's available balance. POST {"available": "12.34"}."""
        body = request.get_json(silent=True) or {}
        if request.method == "POST":
            self.trades.set_balance(int(Decimal(str(body.get("available", "0"))) * 100))
        return jsonify(available=yuan(self.trades.balance()))
