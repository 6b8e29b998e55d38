"""Liveness and readiness probes for load balancers and orchestrators."""
from flask import Blueprint
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
    """The service can answer real requests: the database is reachable."""
    try:
        db.session.execute(text("SELECT 1"))
    except SQLAlchemyError:
        db.session.rollback()
        return {"status": "unavailable", "checks": {"database": "unreachable"}}, 503
    return {"status": "ready", "checks": {"database": "ok"}}
