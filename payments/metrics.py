"""Payment metrics: state changes reached, every gateway call timed and its failures counted, and
payment figures read from the database at scrape time (so every worker and machine gives the same answer).

They join the app's registry (finepay.observability) when payments.init_app runs.
"""
import functools
import logging
import time
from datetime import UTC, datetime

from flask import current_app, has_app_context
from prometheus_client import Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from sqlalchemy import event, func, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from finepay import audit, observability
from finepay.extensions import db
from payments import gateways, states
from payments.gateways import GatewayError
from payments.models import Payment

EXTENSION = "finepay.payment_metrics"
_PENDING_OUTCOMES = "finepay.metrics.pending_outcomes"
GATEWAY_OPERATIONS = (
    "create_intent", "confirm_intent", "retrieve_intent", "cancel_intent", "refund", "list_transactions",
    "start_reader_payment", "reader_status", "cancel_reader_payment",
)


class PaymentMetrics:
    """The payments area's Prometheus metrics for one app."""

    def __init__(self, registry):
        self.registry = registry
        self.payment_outcomes = Counter(
            "finepay_payment_outcomes_total", "Payment state changes committed, by the state reached.",
            ["outcome"], registry=registry,
        )
        self.gateway_calls = Histogram(
            "finepay_gateway_request_duration_seconds", "Time of each gateway call, by operation.",
            ["gateway", "operation"], registry=registry, buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
        )
        self.gateway_errors = Counter(
            "finepay_gateway_errors_total", "Gateway calls that failed, by operation and FinePay's error code.",
            ["gateway", "operation", "code"], registry=registry,
        )


class PaymentsCollector:
    """Figures read from the database at scrape time: the same answer from every worker."""

    def __init__(self, app):
        self.app = app

    def collect(self):
        """Payments by status, and how long the oldest unsettled payment has waited (sync lag)."""
        by_status = GaugeMetricFamily("finepay_payments", "Payments by current status.", labels=["status"])
        lag = GaugeMetricFamily(
            "finepay_sync_lag_seconds",
            "Age of the oldest payment whose outcome is not settled yet (grows when payments sync is not running).",
        )
        up = GaugeMetricFamily("finepay_database_up", "Whether the database answered this scrape.")
        with self.app.app_context():
            try:
                rows = db.session.execute(select(Payment.status, func.count()).group_by(Payment.status)).all()
                oldest = db.session.execute(
                    select(func.min(Payment.updated_at)).where(Payment.status.in_(states.OPEN))
                ).scalar()
            except SQLAlchemyError:
                db.session.rollback()
                up.add_metric([], 0)
                yield up
                return
            finally:
                db.session.remove()
        up.add_metric([], 1)
        for status, count in rows:
            by_status.add_metric([status], count)
        if oldest is not None and oldest.tzinfo is None:
            oldest = oldest.replace(tzinfo=UTC)
        lag.add_metric([], max(0.0, (datetime.now(UTC) - oldest).total_seconds()) if oldest else 0.0)
        yield up
        yield by_status
        yield lag


def instrument_gateway(gateway, metrics):
    """Time and count every call of one of the app's gateway adapters, and log failures with the request id.

    Wraps the instance's methods in place, so the adapter keeps its class
    (and whatever a test or a kiosk asks of it).
    """
    log = logging.getLogger("finepay.gateway")

    def wrap(operation, method):
        @functools.wraps(method)
        def timed(*args, **kwargs):
            started = time.perf_counter()
            try:
                return method(*args, **kwargs)
            except GatewayError as error:
                metrics.gateway_errors.labels(gateway.name, operation, error.code).inc()
                log.warning("gateway %s failed: %s", operation, error.code, extra={
                    "event": "gateway_error", "gateway": gateway.name, "operation": operation, "code": error.code,
                    "outcome": "unknown" if error.outcome_unknown else "not_done",
                })
                raise
            finally:
                metrics.gateway_calls.labels(gateway.name, operation).observe(time.perf_counter() - started)

        timed.finepay_instrumented = True
        return timed

    for operation in GATEWAY_OPERATIONS:
        method = getattr(gateway, operation, None)
        if method is not None and not getattr(method, "finepay_instrumented", False):
            setattr(gateway, operation, wrap(operation, method))
    return gateway


def _note_payment_outcomes(session, entries):
    """Audit entries were written: count the payment state changes once their transaction commits."""
    outcomes = [entry.action.split(".", 1)[1] for entry in entries if entry.action.startswith("payment.")]
    if outcomes:
        session.info.setdefault(_PENDING_OUTCOMES, []).extend(outcomes)


@event.listens_for(Session, "after_commit")
def _count_payment_outcomes(session):
    outcomes = session.info.pop(_PENDING_OUTCOMES, None)
    if outcomes and has_app_context() and EXTENSION in current_app.extensions:
        counter = current_app.extensions[EXTENSION].payment_outcomes
        for outcome in outcomes:
            counter.labels(outcome).inc()


@event.listens_for(Session, "after_rollback")
def _forget_payment_outcomes(session):
    session.info.pop(_PENDING_OUTCOMES, None)


def init_app(app):
    """Add the payment metrics to the app's registry and instrument each of its gateways (built before this)."""
    metrics = PaymentMetrics(observability.metrics_registry(app))
    app.extensions[EXTENSION] = metrics
    observability.add_collector(app, PaymentsCollector(app))
    if _note_payment_outcomes not in audit.on_insert:
        audit.on_insert.append(_note_payment_outcomes)
    for gateway in app.extensions[gateways.REGISTRY].values():
        instrument_gateway(gateway, metrics)
