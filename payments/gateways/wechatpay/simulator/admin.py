"""The admin API (/simulator/admin/...): what tests and the demo switch on the simulator.

It stands for nothing at WeChat Pay and has no authentication: the simulator
listens on 127.0.0.1 only.
"""
from datetime import datetime

from flask import Blueprint, current_app, jsonify, request

from . import errors
from .clock import rfc3339
from .notifier import MODES
from .trading import REFUND_STATES, PaymentRefused

bp = Blueprint("admin", __name__, url_prefix="/simulator/admin")
SIGNING_MODES = ("public-key", "certificate")


class AdminError(Exception):
    """A switch the admin API cannot set; answered 400 with the reason."""


def simulator():
    """The running simulator."""
    return current_app.extensions["wechatpay_simulator"]


@bp.errorhandler(AdminError)
def admin_error(error):
    """A switch refused: 400 with the reason."""
    return jsonify(error=str(error)), 400


@bp.errorhandler(errors.ApiError)
def api_error(error):
    """An error of the simulated back end (e.g. an unknown refund), in the admin API's shape."""
    return jsonify(error=error.message, code=error.code), error.status


def payload():
    """The request's JSON object."""
    data = request.get_json(silent=True)
    if not isinstance(data, dict):
        raise AdminError("the body must be a JSON object")
    return data


def count(data, default=1):
    """A positive number of requests or notifications."""
    value = data.get("count", default)
    if type(value) is not int or value < 1:
        raise AdminError("count must be a positive integer")
    return value


@bp.get("/state")
def state():
    """Orders, refunds, notifications and the switches, as they are now."""
    sim = simulator()
    with sim.store.read() as data:
        orders, refunds = dict(data["orders"]), dict(data["refunds"])
    return jsonify(now=rfc3339(sim.clock.now()), settings=sim.settings, faults=sim.faults.armed,
                   orders=orders, refunds=refunds, notifications=sim.notifier.deliveries())


@bp.post("/faults")
def arm_fault():
    """{"kind": SYSTEM_ERROR | FREQUENCY_LIMITED | NOT_ENOUGH | timeout | bill_hash_mismatch, "count": N, "path": "/v3/...",
    "seconds": S (timeout), "after": true (do it, then answer the error)}."""
    data = payload()
    try:
        simulator().faults.arm(data.get("kind"), count(data), str(data.get("path", "")),
                               float(data.get("seconds", 0)), bool(data.get("after", False)))
    except ValueError as error:
        raise AdminError(str(error)) from None
    return jsonify(faults=simulator().faults.armed)


@bp.delete("/faults")
def clear_faults():
    """Disarm every fault."""
    simulator().faults.clear()
    return jsonify(faults=[])


@bp.post("/notifications")
def switch_notifications():
    """{"mode": duplicate | reorder | delay | drop | signtest, "count": N, "seconds": S (delay, wall-clock)}."""
    data = payload()
    if data.get("mode") not in MODES:
        raise AdminError(f"mode must be one of {', '.join(MODES)}")
    simulator().notifier.switch(data["mode"], count(data), float(data.get("seconds", 0)))
    return jsonify(mode=data["mode"])


@bp.post("/notifications/release")
def release_notifications():
    """Send the notifications held for reordering now, newest first."""
    simulator().notifier.release()
    return jsonify(released=True)


@bp.post("/clock")
def set_clock():
    """{"now": "2026-12-01T10:00:00+08:00"} moves the simulated clock there; {"reset": true} back to real time."""
    data, clock = payload(), simulator().clock
    if data.get("reset"):
        clock.reset()
    else:
        try:
            moment = datetime.fromisoformat(str(data.get("now")))
        except ValueError:
            raise AdminError("now must be an ISO 8601 time with its offset") from None
        if moment.tzinfo is None:
            raise AdminError("now must carry its offset")
        clock.set(moment)
    return jsonify(now=rfc3339(clock.now()))


@bp.post("/settings")
def change_settings():
    """{"signing": public-key | certificate, "fee_rate": 0.006, "refund_delay": seconds or null, "bill_hour": 10}."""
    data, settings = payload(), simulator().settings
    if "signing" in data and data["signing"] not in SIGNING_MODES:
        raise AdminError(f"signing must be one of {', '.join(SIGNING_MODES)}")
    if "fee_rate" in data and not (isinstance(data["fee_rate"], int | float) and 0 <= data["fee_rate"] < 1):
        raise AdminError("fee_rate must be a fraction, e.g. 0.006")
    if "refund_delay" in data and not (data["refund_delay"] is None or isinstance(data["refund_delay"], int | float)):
        raise AdminError("refund_delay must be seconds, or null to settle refunds only through the admin API")
    if "bill_hour" in data and data["bill_hour"] not in range(24):
        raise AdminError("bill_hour must be an hour, 0 to 23")
    settings.update({key: data[key] for key in ("signing", "fee_rate", "refund_delay", "bill_hour") if key in data})
    return jsonify(settings=settings)


@bp.post("/orders/<out_trade_no>/pay")
def pay_order(out_trade_no):
    """{"outcome": approve | cancel | fail}: the payer's answer without the page."""
    outcome = payload().get("outcome", "approve")
    if outcome not in ("approve", "cancel", "fail"):
        raise AdminError("outcome must be approve, cancel or fail")
    try:
        order = simulator().trading.pay(out_trade_no, outcome)
    except PaymentRefused as refused:
        return jsonify(error=str(refused)), 409
    return jsonify(order)


@bp.post("/refunds/<out_refund_no>")
def settle_refund(out_refund_no):
    """{"status": SUCCESS | ABNORMAL | CLOSED}: finish a PROCESSING refund now."""
    status = payload().get("status")
    if status not in REFUND_STATES:
        raise AdminError(f"status must be one of {', '.join(REFUND_STATES)}")
    simulator().trading.settle_refund(out_refund_no, status)
    return jsonify(simulator().trading.query_refund(out_refund_no))
