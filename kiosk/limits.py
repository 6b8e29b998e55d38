"""Rate limits on kiosk lookups: per terminal, and failed lookups per plate shared with the web.

The per-plate bucket has the same scope and key as violations/limits.py, so
guessing VIN codes for one plate counts the same at a kiosk as online.
"""
import hashlib

from flask import current_app, g, request

from finepay.extensions import db, limiter
from kiosk.models import KioskSession


def _terminal_key():
    return f"terminal:{g.kiosk_terminal.id}"


def _plate_key():
    token = request.headers.get("X-Kiosk-Session", "")
    session = db.session.get(KioskSession, hashlib.sha256(token.encode()).hexdigest()) if token else None
    plate = (session.plate or "") if session else ""
    # The same key as violations.limits: hashed, so the limiter's storage holds no plates.
    return "plate:" + hashlib.sha256(plate.encode()).hexdigest()[:32]


def lookup_limits():
    """Decorators for the kiosk's VIN-code lookup."""
    return [
        limiter.shared_limit(lambda: current_app.config["LOOKUP_RATE_LIMIT"], scope="kiosk-lookup",
                             key_func=_terminal_key, methods=["POST"]),
        limiter.shared_limit(
            lambda: current_app.config["PLATE_FAILURE_RATE_LIMIT"],
            scope="lookup-failures-per-plate",
            key_func=_plate_key,
            methods=["POST"],
            deduct_when=lambda response: response.status_code == 404,
        ),
    ]
