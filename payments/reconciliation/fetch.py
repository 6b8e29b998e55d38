"""The gateways' side of the reconciliation: their charges, refunds and fees, copied into gateway_records.

Copied through each configured adapter's ``list_transactions`` (the console's
"Refresh from the gateways" button and ``flask --app wsgi staff
fetch-gateway``), so that the report is a handful of SQL statements, whatever
the day's volume. A gateway whose bill for a day of the window is not out
yet (BillNotReady: WeChat Pay and Alipay publish theirs at about 10:00 the
next day) is put on record as waiting from that day on, and the others are
fetched all the same.
"""
import logging
from contextlib import suppress
from dataclasses import dataclass
from datetime import timedelta
from zoneinfo import ZoneInfo

from flask import current_app
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

    When a bill is not out yet, the days before it are fetched one by one,
    and from that day on the window is put on record as waiting for its bill
    (the report says so for this gateway). Any other GatewayError is returned
    for the caller to show.
    """
    try:
        try:
            return GatewayFetch(gateway.name, label_of(gateway), transactions=_fetch_window(gateway, start, end, actor))
        except BillNotReady:
            days = business_days(start, end)
            count, waiting_from = _fetch_day_by_day(gateway, days, actor) if len(days) > 1 else (0, start)
    except GatewayError as error:
        log.warning("reconciliation: fetching %s failed: %s (%s)", gateway.name, error.message, error.code)
        db.session.rollback()
        return GatewayFetch(gateway.name, label_of(gateway), error=error)
    if waiting_from is None:  # every day's bill came out meanwhile
        return GatewayFetch(gateway.name, label_of(gateway), transactions=count)
    audit.record(BILL_NOT_READY_ACTION, "gateway", gateway.name, actor=actor, start=waiting_from.isoformat(),
                 end=end.isoformat())
    db.session.commit()
    return GatewayFetch(gateway.name, label_of(gateway), transactions=count, bill_not_ready=True)


def _fetch_window(gateway, start, end, actor):
    count = store_transactions(gateway.name, _listed(gateway, start, end))
    audit.record(FETCH_ACTION, "gateway", gateway.name, actor=actor, start=start.isoformat(), end=end.isoformat(),
                 transactions=count)
    db.session.commit()
    return count


def _fetch_day_by_day(gateway, days, actor):
    """Fetch day after day until one's bill is not out: (transactions read, that day's start or None)."""
    count = 0
    for day_start, day_end in days:
        try:
            count += _fetch_window(gateway, day_start, day_end, actor)
        except BillNotReady:
            return count, day_start
    return count, None


def business_days(start, end):
    """The business days that [start, end) covers, each as the part of it within the window, in order."""
    day = start.astimezone(ZoneInfo(current_app.config["BUSINESS_TIMEZONE"])).date()
    days = []
    while (window := business_day_window(day))[0] < end:
        days.append((max(window[0], start), min(window[1], end)))
        day += timedelta(days=1)
    return days


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
    """What the latest fetches of a gateway covering a window found."""

    at: object  # when (the oldest of the window's days), or None when a day of it was never fetched
    waiting_from: object = None  # from when on its bill was not out yet (None: every day's was)

    @property
    def bill_not_ready(self):
        """Whether a day of the window still waits for the gateway's bill."""
        return self.waiting_from is not None


def last_fetches(start, end):
    """Per gateway name, what the latest fetch covering each business day of [start, end) found (a LastFetch).

    Gateways never fetched for any of these days are absent.
    """
    days = business_days(start, end)
    entries = db.session.execute(
        select(AuditEntry.subject_id, AuditEntry.action, AuditEntry.at, AuditEntry.details)
        .where(AuditEntry.action.in_((FETCH_ACTION, BILL_NOT_READY_ACTION)), AuditEntry.subject_type == "gateway")
        .order_by(AuditEntry.id.desc()).limit(500)
    ).all()
    latest = {}  # gateway -> per day, the newest (action, at) covering it
    for gateway, action, at, details in entries:
        try:
            covered = (details["start"], details["end"])
        except (KeyError, TypeError):
            continue
        found = latest.setdefault(gateway, [None] * len(days))
        for i, (day_start, day_end) in enumerate(days):
            if found[i] is None and covered[0] <= day_start.isoformat() and covered[1] >= day_end.isoformat():
                found[i] = (action, at)
    fetches = {}
    for gateway, found in latest.items():
        known = [f for f in found if f is not None]
        if not known:
            continue
        waiting = [day[0] for day, f in zip(days, found, strict=True) if f and f[0] == BILL_NOT_READY_ACTION]
        fetches[gateway] = LastFetch(min(at for _a, at in known) if len(known) == len(days) else None,
                                     waiting[0] if waiting else None)
    return fetches


def records_of(payment):
    """The gateway's records of one payment (by its id or its intent), oldest first."""
    refs = [GatewayRecord.payment_id == payment.id]
    if payment.gateway_intent_id:
        refs.append(GatewayRecord.intent_id == payment.gateway_intent_id)
    return db.session.execute(
        select(GatewayRecord).where(GatewayRecord.gateway == payment.gateway, or_(*refs))
        .order_by(GatewayRecord.created_at)
    ).scalars().all()
