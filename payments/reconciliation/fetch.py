"""The gateway's side of the reconciliation: its charges and refunds, copied into gateway_records.

Copied through the adapter's ``list_transactions`` (the console's "Refresh
from gateway" button and ``flask --app wsgi staff fetch-gateway``), so that
the report is a handful of SQL statements, whatever the day's volume.
"""
from datetime import timedelta

from sqlalchemy import or_, select
from sqlalchemy.dialects import postgresql, sqlite

from finepay import audit
from finepay.audit import AuditEntry
from finepay.dbtypes import utcnow
from finepay.extensions import db
from payments.gateways import configured_gateways
from payments.models import GatewayRecord
from payments.reconciliation.lines import check_range
from violations.fees import business_day_window

FETCH_ACTION = "reconciliation.gateway_fetched"
# Fetch a margin either side, so a charge and its settlement a second apart across midnight still meet.
FETCH_MARGIN = timedelta(hours=1)
G = GatewayRecord.__table__


def fetch_gateway_records(start, end, actor="system"):
    """Copy the gateway's charges and refunds created in [start, end) (plus a margin) into gateway_records.

    Upserted by (gateway, transaction id), so fetching again refreshes
    statuses and never duplicates. Returns the number of transactions read.
    """
    gateway = configured_gateways()[0]
    transactions = gateway.list_transactions(start - FETCH_MARGIN, end + FETCH_MARGIN)
    now = utcnow()
    rows = [
        {
            "gateway": gateway.name, "transaction_id": t.id, "kind": t.kind, "intent_id": t.intent_id,
            "payment_id": t.payment_id, "amount": t.amount, "currency": (t.currency or "").upper()[:3],
            "status": t.status, "created_at": t.created_at, "fetched_at": now,
        }
        for t in transactions
    ]
    insert = postgresql.insert if db.session.get_bind().dialect.name == "postgresql" else sqlite.insert
    for i in range(0, len(rows), 1000):
        stmt = insert(G)
        refreshed = {c: stmt.excluded[c] for c in ("kind", "intent_id", "payment_id", "amount", "currency",
                                                    "status", "created_at", "fetched_at")}
        db.session.execute(stmt.on_conflict_do_update(index_elements=["gateway", "transaction_id"],
                                                      set_=refreshed), rows[i:i + 1000])
    audit.record(FETCH_ACTION, "gateway", gateway.name, actor=actor, start=start.isoformat(),
                 end=end.isoformat(), transactions=len(rows))
    db.session.commit()
    return len(rows)


def fetch_days(first_day, last_day, actor="system"):
    """fetch_gateway_records for business dates first_day..last_day (inclusive); ValueError for a bad range."""
    check_range(first_day, last_day)
    return fetch_gateway_records(*business_day_window((first_day, last_day)), actor=actor)


def last_fetch(start, end):
    """When the current gateway's records were last fetched for a window covering [start, end), or None."""
    gateway = configured_gateways()[0].name
    entries = db.session.execute(
        select(AuditEntry.at, AuditEntry.details)
        .where(AuditEntry.action == FETCH_ACTION, AuditEntry.subject_type == "gateway",
               AuditEntry.subject_id == gateway)
        .order_by(AuditEntry.id.desc()).limit(200)
    ).all()
    for at, details in entries:
        try:
            if details["start"] <= start.isoformat() and details["end"] >= end.isoformat():
                return at
        except (KeyError, TypeError):
            continue
    return None


def records_of(payment):
    """The gateway's records of one payment (by its id or its intent), oldest first."""
    refs = [GatewayRecord.payment_id == payment.id]
    if payment.gateway_intent_id:
        refs.append(GatewayRecord.intent_id == payment.gateway_intent_id)
    return db.session.execute(
        select(GatewayRecord).where(GatewayRecord.gateway == payment.gateway, or_(*refs))
        .order_by(GatewayRecord.created_at)
    ).scalars().all()
