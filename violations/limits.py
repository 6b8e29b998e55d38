"""The limits on proving a vehicle: every attempt per client, and failed attempts per plate.

Every route where someone proves a vehicle with a fact only its owner should
know (the lookup API and page, the payments API, the kiosk's VIN keypad) takes
``limited`` and proves through violations.services.prove_vehicle, so a guess
costs the same wherever it is made and one set of counters holds them all.

The per-client limit (LOOKUP_RATE_LIMIT) counts every request, malformed ones
too, per address (per terminal at a kiosk). The per-plate budget
(PLATE_FAILURE_RATE_LIMIT) counts only failed proofs, from anywhere; once it is
spent the plate is not refused but asks for a proof-of-work challenge
(finepay.challenge), so that nobody can lock an owner out by guessing wrong.
"""
import hashlib
import logging

from flask import current_app
from flask_limiter.util import get_remote_address
from limits import parse

from finepay.extensions import limiter

log = logging.getLogger(__name__)

CLIENT_SCOPE = "lookup"
PLATE_SCOPE = "lookup-failures-per-plate"


def limited(view, key_func=get_remote_address):
    """Count every POST to ``view`` against its client's lookup budget (``key_func`` names the client)."""
    return limiter.shared_limit(
        lambda: current_app.config["LOOKUP_RATE_LIMIT"], scope=CLIENT_SCOPE, key_func=key_func, methods=["POST"],
    )(view)


def _plate_key(plate):
    # Hashed so the limiter's storage (Redis) holds no plates.
    return "plate:" + hashlib.sha256(plate.encode()).hexdigest()[:32]


def _plate_limit():
    return parse(current_app.config["PLATE_FAILURE_RATE_LIMIT"])


def plate_budget_spent(plate):
    """Whether this (normalised) plate has had its allowance of failed proofs in the current window."""
    try:
        # limiter.limiter is Flask-Limiter's in-memory fallback while Redis is down.
        return not limiter.limiter.test(_plate_limit(), PLATE_SCOPE, _plate_key(plate))
    except Exception:  # noqa: BLE001 - as the per-client limit: never fail a lookup over the storage
        log.warning("rate-limit storage unreachable: plate budget not checked", extra={"event": "limit_storage"})
        return False


def count_failure(plate):
    """One more failed proof for this (normalised) plate."""
    try:
        limiter.limiter.hit(_plate_limit(), PLATE_SCOPE, _plate_key(plate))
    except Exception:  # noqa: BLE001
        log.warning("rate-limit storage unreachable: failed proof not counted", extra={"event": "limit_storage"})
