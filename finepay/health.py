"""Liveness and readiness probes for load balancers and orchestrators."""
from flask import Blueprint, current_app
from limits.storage import storage_from_string
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from finepay.extensions import db

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz():
    """The process is alive (touches nothing else, so it is the throughput ceiling)."""
    return {"status": "ok"}


@bp.get("/readyz")
def readyz():
    """The service can answer real requests: the database is reachable (and Redis, when configured)."""
    checks = {}
    redis_ok = rate_limit_storage_ok()
    if redis_ok is not None:
        # Without Redis, lookups still work on per-worker limits: degraded, not down, so that a
        # Redis outage never takes every app server out of the load balancer at once.
        checks["redis"] = "ok" if redis_ok else "unreachable"
    try:
        db.session.execute(text("SELECT 1"))
    except SQLAlchemyError:
        db.session.rollback()
        return {"status": "unavailable", "checks": {"database": "unreachable", **checks}}, 503
    return {"status": "ready" if redis_ok is not False else "degraded", "checks": {"database": "ok", **checks}}


def rate_limit_storage_ok():
    """Whether the Redis behind the rate limits answers a PING; None when limits are not kept in Redis."""
    uri = current_app.config.get("RATELIMIT_STORAGE_URI") or ""
    if not uri.startswith(("redis://", "rediss://", "redis+")):
        return None
    storage = current_app.extensions.get("finepay.readyz.redis")
    if storage is None:
        options = current_app.config.get("RATELIMIT_STORAGE_OPTIONS") or {}
        storage = current_app.extensions["finepay.readyz.redis"] = storage_from_string(uri, **options)
    try:
        return bool(storage.check())
    except Exception:  # noqa: BLE001  (any failure to answer is "unreachable")
        return False
