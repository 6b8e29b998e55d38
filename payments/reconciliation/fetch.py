"""The gateways' side of the reconciliation: their charges, refunds and fees, copied into gateway_records.

Copied through each configured adapter's ``list_transactions`` (the console's
"Refresh from the gateways" button and ``flask --app wsgi staff
fetch-gateway``), so that the report is a handful of SQL statements, whatever
the day's volume. A gateway whose bill for the window is not out yet
(BillNotReady: WeChat Pay and Alipay publish theirs at about 10:00 the next
day) is put on record as such, and the others are fetched all the same.
"""
import logging
from contextlib import suppress
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import or_, select
from sqlalchemy.dialects import postgresql, sqlite

from finepay import audit
from finepay.audit import AuditEntry
from finepay.dbtypes import utcnow
from finepay.extensions import db
from payments.gateways import BillNotReady, GatewayError, configured_gateways
from payments.models import GatewayRecord
from payments.reconciliation.lines import check_range
from violations.fees import business_day_window

log = logging.getLogger(__name__)

FETCH_ACTION = "reconciliation.gateway_fetched"
BILL_NOT_READY_ACTION = "reconciliation.bill_not_ready"
# Fetch a margin either side, so a charge and its settlement a second apart across midnight still meet.
FETCH_MARGIN = timedelta(hours=1)
G = GatewayRecord.__table__


@dataclass(frozen=True)
class GatewayFetch:
    """What fetching one gateway brought: the number of transactions read, or why none were."""

    gateway: str
    label: str
    transactions: int = 0
    bill_not_ready: bool = False
    error: GatewayError | None = None  # the gateway failed (other than a bill not out yet)


def label_of(gateway):
    """What staff see for a gateway: its label, or its name for an adapter that has none."""
    return gateway.label or gateway.name


def store_transactions(gateway_name, transactions):
    """Upsert a gateway's transactions by (gateway, transaction id): fetching again refreshes, never duplicates."""
    now = utcnow()
    rows = [
        {
            "gateway": gateway_name, "transaction_id": t.id, "kind": t.kind, "intent_id": t.intent_id,
            "payment_id": t.payment_id, "amount": t.amount, "fee": t.fee,
            "currency": (t.currency or "").upper()[:3], "status": t.status, "created_at": t.created_at,
            "fetched_at": now,
        }
        for t in transactions
    ]
    insert = postgresql.insert if db.session.get_bind().dialect.name == "postgresql" else sqlite.insert
    for i in range(0, len(rows), 1000):
        stmt = insert(G)
        refreshed = {c: stmt.excluded[c] for c in ("kind", "intent_id", "payment_id", "amount", "fee", "currency",
                                                    "status", "created_at", "fetched_at")}
        db.session.execute(stmt.on_conflict_do_update(index_elements=["gateway", "transaction_id"],
                                                      set_=refreshed), rows[i:i + 1000])
    return len(rows)


def fetch_gateway(gateway, start, end, actor="system"):
    """Copy one gateway's charges and refunds created in [start, end) (plus a margin); a GatewayFetch.

    A bill not out yet is put on record (the report says so for this
    gateway); any other GatewayError is returned for the caller to show.
    """
    window = {"start": start.isoformat(), "end": end.isoformat()}
    try:
        transactions = _listed(gateway, start, end)
    except BillNotReady:
        audit.record(BILL_NOT_READY_ACTION, "gateway", gateway.name, actor=actor, **window)
        db.session.commit()
        return GatewayFetch(gateway.name, label_of(gateway), bill_not_ready=True)
    except GatewayError as error:
        log.warning("reconciliation: fetching %s failed: %s (%s)", gateway.name, error.message, error.code)
        db.session.rollback()
        return GatewayFetch(gateway.name, label_of(gateway), error=error)
    count = store_transactions(gateway.name, transactions)
    audit.record(FETCH_ACTION, "gateway", gateway.name, actor=actor, transactions=count, **window)
    db.session.commit()
    return GatewayFetch(gateway.name, label_of(gateway), transactions=count)


def _listed(gateway, start, end):
    """The gateway's transactions of [start, end), and of FETCH_MARGIN either side where it has them already.

    The margins are a nicety (a charge a second before midnight meets its
    settlement just after): a daily bill of the day before or after that is
    not out yet (the next day's, until the morning after it) holds back
    nothing; only the window's own bills must be out.
    """
    transactions = list(gateway.list_transactions(start, end))
    for margin in ((start - FETCH_MARGIN, start), (end, end + FETCH_MARGIN)):
        with suppress(BillNotReady):
            transactions += gateway.list_transactions(*margin)
    return transactions


def fetch_gateway_records(start, end, actor="system"):
    """fetch_gateway for every configured gateway, in order: one gateway's failure does not stop the others."""
    return [fetch_gateway(gateway, start, end, actor=actor) for gateway in configured_gateways()]


def fetch_days(first_day, last_day, actor="system"):
    """fetch_gateway_records for business dates first_day..last_day (inclusive); ValueError for a bad range."""
    check_range(first_day, last_day)
    return fetch_gateway_records(*business_day_window((first_day, last_day)), actor=actor)


@dataclass(frozen=True)
class LastFetch:
    """The latest fetch of a gateway that covered a window: when, and whether its bill was out."""

    at: object
    bill_not_ready: bool


def last_fetches(start, end):
    """Per gateway name, the latest fetch (LastFetch) whose window covered [start, end); gateways never fetched are absent."""
    entries = db.session.execute(
        select(AuditEntry.subject_id, AuditEntry.action, AuditEntry.at, AuditEntry.details)
        .where(AuditEntry.action.in_((FETCH_ACTION, BILL_NOT_READY_ACTION)), AuditEntry.subject_type == "gateway")
        .order_by(AuditEntry.id.desc()).limit(500)
    ).all()
    latest = {}
    for gateway, action, at, details in entries:
        if gateway in latest:
            continue
        try:
            covers = details["start"] <= start.isoformat() and details["end"] >= end.isoformat()
        except (KeyError, TypeError):
            continue
        if covers:
            latest[gateway] = LastFetch(at, action == BILL_NOT_READY_ACTION)
    return latest


def records_of(payment):
    """The gateway's records of one payment (by its id or its intent), oldest first."""
    refs = [GatewayRecord.payment_id == payment.id]
    if payment.gateway_intent_id:
        refs.append(GatewayRecord.intent_id == payment.gateway_intent_id)
    return db.session.execute(
        select(GatewayRecord).where(GatewayRecord.gateway == payment.gateway, or_(*refs))
        .order_by(GatewayRecord.created_at)
    ).scalars().all()
