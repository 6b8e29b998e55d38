"""A signed, short-lived, opaque token saying "this browser proved this vehicle".

It travels in forms (never in URLs) between the results page and the payment
pages. It carries the plate and a keyed digest of the VIN code, not the code
itself: a driver who proved the vehicle with a notice number must not be able
to read the VIN code out of the page.
"""
import hashlib
import hmac

from flask import current_app
from itsdangerous import BadSignature, URLSafeTimedSerializer
from sqlalchemy import select

from finepay.extensions import db
from violations.models import Violation

MAX_AGE_SECONDS = 30 * 60


def _serializer():
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt="finepay.vehicle-proof")


def _digest(plate, vin_last6):
    key = current_app.config["SECRET_KEY"].encode()
    return hmac.new(key, f"vehicle:{plate}:{vin_last6}".encode(), hashlib.sha256).hexdigest()[:32]


def sign_vehicle(plate, vin_last6):
    """A token for a vehicle the driver just proved."""
    return _serializer().dumps([plate, _digest(plate, vin_last6)])


def vehicle_for(token, violation_ids):
    """(plate, vin_last6) when the token is valid, fresh, and the violations belong to its vehicle; else None."""
    if not isinstance(token, str) or len(token) > 500 or not violation_ids:
        return None
    try:
        plate, digest = _serializer().loads(token, max_age=MAX_AGE_SECONDS)
    except (BadSignature, ValueError, TypeError):
        return None
    vins = set(db.session.execute(
        select(Violation.vin_last6).where(Violation.id.in_(violation_ids), Violation.plate == plate)
    ).scalars())
    for vin in vins:
        if hmac.compare_digest(_digest(plate, vin), str(digest)):
            return plate, vin
    return None
