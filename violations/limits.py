"""Rate limits on lookups: per client, and per plate for failed attempts.

The per-plate limit stops someone who knows a plate from guessing notice
numbers from many addresses; it counts only failed lookups (404), so a
driver who types correctly is never slowed by it.
"""
import hashlib

from flask import current_app, request
from flask_limiter.util import get_remote_address

from finepay.extensions import limiter
from violations.plates import InvalidIdentifier, normalize_plate


def _plate_key():
    data = request.get_json(silent=True) if request.is_json else request.form
    raw = data.get("plate") if hasattr(data, "get") else None
    try:
        plate = normalize_plate(raw)
    except InvalidIdentifier:
        plate = ""
    # Hashed so the limiter's storage (Redis) holds no plates.
    return "plate:" + hashlib.sha256(plate.encode()).hexdigest()[:32]


def lookup_limits():
    """Decorators shared by the API and the driver page, so both count together."""
    return [
        limiter.shared_limit(
            lambda: current_app.config["LOOKUP_RATE_LIMIT"],
            scope="lookup",
            key_func=get_remote_address,
            methods=["POST"],
        ),
        limiter.shared_limit(
            lambda: current_app.config["PLATE_FAILURE_RATE_LIMIT"],
            scope="lookup-failures-per-plate",
            key_func=_plate_key,
            methods=["POST"],
            deduct_when=lambda response: response.status_code == 404,
        ),
    ]
