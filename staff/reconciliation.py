"""Daily reconciliation: what the ledger says was paid against what the gateway says it took.

The gateway's side is copied into ``gateway_records`` through the adapter's
``list_transactions`` (``fetch_gateway_records``: the "Refresh from gateway"
button and ``flask --app wsgi staff fetch-gateway``), so that the report is a
handful of SQL statements, whatever the day's volume: every total, every
match and every classification is computed by the database.

Each line is a charge (one gateway intent, or one payment) or a refund, and
is classified as one of CLASSES.
"""
import csv
import io
from dataclasses import dataclass, field
from datetime import timedelta
from zoneinfo import ZoneInfo

from flask import current_app
from flask_babel import gettext as _
from sqlalchemy import (
    BigInteger,
    Integer,
    String,
    and_,
    case,
    cast,
    func,
    literal,
    literal_column,
    not_,
    null,
    or_,
    select,
    text,
    tuple_,
    union_all,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.expression import FunctionElement

from finepay import audit
from finepay.audit import AuditEntry
from finepay.dbtypes import UTCDateTime, utcnow
from finepay.extensions import db
from finepay.i18n import N_
from kiosk.models import Terminal
from payments import states
from payments.gateways import current_gateway
from payments.models import Payment, PaymentItem, Refund
from staff.models import GatewayRecord
from staff.services import business_day_window

MATCHED = "matched"
GATEWAY_ONLY = "gateway_only"
LEDGER_ONLY = "ledger_only"
MISMATCH = "mismatch"
DUPLICATE = "duplicate"
CLASSES = (MATCHED, GATEWAY_ONLY, LEDGER_ONLY, MISMATCH, DUPLICATE)
LABELS = {
    MATCHED: N_("Matched"),
    GATEWAY_ONLY: N_("Taken at the gateway, not settled in the ledger"),
    LEDGER_ONLY: N_("Settled in the ledger, unknown to the gateway"),
    MISMATCH: N_("Amount or currency mismatch"),
    DUPLICATE: N_("Duplicate charge for one violation"),
}
SETTLED = (states.SUCCEEDED, states.REFUNDED)
FETCH_ACTION = "reconciliation.gateway_fetched"
# Fetch a margin either side, so a charge and its settlement a second apart across midnight still meet.
FETCH_MARGIN = timedelta(hours=1)
# How far from the window a charge may be and still match a settlement in it.
MATCH_MARGIN = timedelta(days=1)
MAX_DAYS = 31
PAGE_LINES = 500

P = Payment.__table__
G = GatewayRecord.__table__
R = Refund.__table__
PI = PaymentItem.__table__


# --- fetching the gateway's side -------------------------------------------------------


def fetch_gateway_records(start, end, actor="system"):
    """Copy the gateway's charges and refunds created in [start, end) (plus a margin) into gateway_records.

    Upserted by (gateway, transaction id), so fetching again refreshes
    statuses and never duplicates. Returns the number of transactions read.
    """
    gateway = current_gateway()
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


def last_fetch(start, end):
    """When the current gateway's records were last fetched for a window covering [start, end), or None."""
    gateway = current_gateway().name
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


# --- hours in SQL ----------------------------------------------------------------------------


class hours_since(FunctionElement):
    """Whole hours from ``start`` to a timestamp column, in SQL (for the hourly chart)."""

    type = Integer()
    name = "hours_since"
    inherit_cache = True


@compiles(hours_since, "postgresql")
def _hours_since_postgresql(element, compiler, **kw):
    column, start = (compiler.process(c, **kw) for c in element.clauses)
    return f"CAST(floor(extract(epoch FROM ({column} - {start})) / 3600) AS INTEGER)"


@compiles(hours_since, "sqlite")
def _hours_since_sqlite(element, compiler, **kw):
    column, start = (compiler.process(c, **kw) for c in element.clauses)
    return f"((CAST(strftime('%s', {column}) AS INTEGER) - CAST(strftime('%s', {start}) AS INTEGER)) / 3600)"


# --- the report ------------------------------------------------------------------------------


def _within(column, start, end):
    return and_(column >= start, column < end)


def _text(value):
    return literal_column(f"'{value}'")


def _sum(expr):
    # PostgreSQL sums BIGINT into NUMERIC; minor units stay integers.
    return cast(func.sum(expr), BigInteger)


ZERO = literal_column("0", BigInteger)
ONE = literal_column("1", BigInteger)


def lines_query(start, end):
    """Every reconciliation line for [start, end) as one SQL statement (UNION ALL of charge and refund lines)."""
    settled_in_window = and_(P.c.status.in_(SETTLED), _within(P.c.paid_at, start, end))

    def charges_of(*where, name):
        """Each intent's charges (count, total, currencies, first time): a second capture is a duplicate."""
        return (
            select(G.c.gateway, G.c.intent_id, func.count().label("n"), _sum(G.c.amount).label("amount"),
                   func.min(G.c.currency).label("currency"), func.max(G.c.currency).label("currency_max"),
                   func.min(G.c.created_at).label("first_at"), func.min(G.c.transaction_id).label("txn"),
                   func.max(G.c.payment_id).label("payment_ref"))
            .where(G.c.kind == "charge", G.c.intent_id.is_not(None), *where)
            .group_by(G.c.gateway, G.c.intent_id).subquery(name)
        )

    # For the window's settlements: the charges near the window. (A settlement more than
    # MATCH_MARGIN away from its capture shows as two one-sided lines.)
    charges = charges_of(_within(G.c.created_at, start - MATCH_MARGIN, end + MATCH_MARGIN), name="charges")
    # Refunds come after their charge: none can be older than the margin before the window.
    gateway_refunds = (
        select(G.c.gateway, G.c.intent_id, _sum(G.c.amount).label("amount"))
        .where(G.c.kind == "refund", G.c.intent_id.is_not(None), G.c.created_at >= start - MATCH_MARGIN)
        .group_by(G.c.gateway, G.c.intent_id).cte("gateway_refunds")
    )
    ledger_refunds = (
        select(R.c.payment_id,
               _sum(case((R.c.status == "succeeded", R.c.amount), else_=ZERO)).label("refunded"),
               _sum(case((R.c.status == "pending", R.c.amount), else_=ZERO)).label("pending"))
        .where(R.c.created_at >= start - MATCH_MARGIN)
        .group_by(R.c.payment_id).cte("ledger_refunds")
    )
    # A violation this payment did not settle because an earlier payment had already paid it.
    earlier_item, earlier = PI.alias("earlier_item"), P.alias("earlier")
    duplicates = (
        select(PI.c.payment_id, _sum(PI.c.fine + PI.c.late_fee).label("amount"))
        .select_from(PI.join(P, P.c.id == PI.c.payment_id))
        .where(settled_in_window, PI.c.settled.is_(False),
               select(earlier_item.c.id)
               .select_from(earlier_item.join(earlier, earlier.c.id == earlier_item.c.payment_id))
               .where(earlier_item.c.violation_id == PI.c.violation_id,
                      earlier_item.c.payment_id != PI.c.payment_id,
                      earlier.c.status.in_(SETTLED), earlier.c.paid_at <= P.c.paid_at)
               .exists())
        .group_by(PI.c.payment_id).cte("duplicates")
    )

    # Intents charged in the window that no payment settled in the window accounts for: found by an
    # anti-join of the window's rows on both sides, so that only these few look up their payment.
    settled, charged = P.alias("settled"), G.alias("charged")
    unmatched = (
        select(charged.c.gateway, charged.c.intent_id)
        .where(charged.c.kind == "charge", charged.c.intent_id.is_not(None),
               _within(charged.c.created_at, start, end),
               ~select(settled.c.id).where(settled.c.gateway == charged.c.gateway,
                                           settled.c.gateway_intent_id == charged.c.intent_id,
                                           settled.c.status.in_(SETTLED), _within(settled.c.paid_at, start, end))
               .exists())
        .distinct().cte("unmatched")
    )
    stray = charges_of(tuple_(G.c.gateway, G.c.intent_id).in_(select(unmatched.c.gateway, unmatched.c.intent_id)),
                       name="stray_charges")
    expected = case((P.c.status.in_(SETTLED), P.c.amount_received), else_=P.c.amount)

    def currency_differs(charges):
        return or_(charges.c.currency != P.c.currency, charges.c.currency_max != charges.c.currency)

    def charge_line(charges, classification, gateway, intent, refunded, duplicate):
        return [
            classification.label("classification"), _text("charge").label("kind"),
            P.c.id.label("payment_id"), gateway.label("gateway"), intent.label("intent_id"),
            charges.c.txn.label("transaction_id"), charges.c.payment_ref.label("gateway_payment_ref"),
            P.c.channel.label("channel"), P.c.terminal_id.label("terminal_id"), P.c.status.label("ledger_status"),
            P.c.paid_at.label("ledger_at"), expected.label("ledger_amount"), P.c.currency.label("ledger_currency"),
            charges.c.first_at.label("gateway_at"), charges.c.amount.label("gateway_amount"),
            charges.c.currency.label("gateway_currency"), charges.c.n.label("gateway_count"),
            refunded.label("refunded"), duplicate.label("duplicate_amount"),
            func.coalesce(gateway_refunds.c.amount, ZERO).label("gateway_refunded"),
        ]

    # Settled in the window, matched to the gateway's charges for its intent.
    ledger_side = (
        select(*charge_line(
            charges,
            case(
                (charges.c.n.is_(None), _text(LEDGER_ONLY)),
                (charges.c.n > 1, _text(DUPLICATE)),
                (or_(currency_differs(charges), charges.c.amount != P.c.amount_received), _text(MISMATCH)),
                (duplicates.c.amount.is_not(None), _text(DUPLICATE)),
                else_=_text(MATCHED),
            ),
            P.c.gateway, P.c.gateway_intent_id, func.coalesce(ledger_refunds.c.refunded, ZERO),
            func.coalesce(duplicates.c.amount, ZERO),
        ))
        .select_from(
            P.outerjoin(charges, and_(charges.c.gateway == P.c.gateway, charges.c.intent_id == P.c.gateway_intent_id))
            .outerjoin(gateway_refunds, and_(gateway_refunds.c.gateway == P.c.gateway,
                                             gateway_refunds.c.intent_id == P.c.gateway_intent_id))
            .outerjoin(ledger_refunds, ledger_refunds.c.payment_id == P.c.id)
            .outerjoin(duplicates, duplicates.c.payment_id == P.c.id)
        )
        .where(settled_in_window)
    )
    # Charged at the gateway in the window, for an intent not settled in the window: every charge of it.
    gateway_side = (
        select(*charge_line(
            stray,
            case(
                (P.c.id.is_(None), _text(GATEWAY_ONLY)),
                (stray.c.n > 1, _text(DUPLICATE)),
                (or_(currency_differs(stray), stray.c.amount != expected), _text(MISMATCH)),
                (P.c.status.not_in(SETTLED), _text(GATEWAY_ONLY)),
                else_=_text(MATCHED),  # settled on another day
            ),
            stray.c.gateway, stray.c.intent_id, ZERO, ZERO,
        ))
        .select_from(
            stray.outerjoin(P, and_(P.c.gateway == stray.c.gateway, P.c.gateway_intent_id == stray.c.intent_id))
            .outerjoin(gateway_refunds, and_(gateway_refunds.c.gateway == stray.c.gateway,
                                             gateway_refunds.c.intent_id == stray.c.intent_id))
        )
    )
    # A charge without an intent cannot be FinePay's.
    loose_charges = select(
        _text(GATEWAY_ONLY).label("classification"), _text("charge").label("kind"), null().label("payment_id"),
        G.c.gateway, null().label("intent_id"), G.c.transaction_id, G.c.payment_id.label("gateway_payment_ref"),
        null().label("channel"), null().label("terminal_id"), null().label("ledger_status"),
        null().label("ledger_at"), null().label("ledger_amount"), null().label("ledger_currency"),
        G.c.created_at.label("gateway_at"), G.c.amount.label("gateway_amount"), G.c.currency.label("gateway_currency"),
        ONE.label("gateway_count"), ZERO.label("refunded"), ZERO.label("duplicate_amount"),
        ZERO.label("gateway_refunded"),
    ).where(G.c.kind == "charge", G.c.intent_id.is_(None), _within(G.c.created_at, start, end))

    # Refunds recorded in the ledger in the window, against the gateway's refunds.
    RP = P.alias("refund_payment")
    GR = G.alias("gateway_refund")
    def refund_columns(classification):
        return [
            classification.label("classification"), _text("refund").label("kind"), RP.c.id.label("payment_id"),
            RP.c.gateway.label("gateway"), RP.c.gateway_intent_id.label("intent_id"),
            func.coalesce(GR.c.transaction_id, R.c.gateway_refund_id).label("transaction_id"),
            GR.c.payment_id.label("gateway_payment_ref"), RP.c.channel.label("channel"),
            RP.c.terminal_id.label("terminal_id"), R.c.status.label("ledger_status"), R.c.created_at.label("ledger_at"),
            R.c.amount.label("ledger_amount"), R.c.currency.label("ledger_currency"),
            GR.c.created_at.label("gateway_at"), GR.c.amount.label("gateway_amount"),
            GR.c.currency.label("gateway_currency"),
            case((GR.c.id.is_(None), ZERO), else_=ONE).label("gateway_count"),
            ZERO.label("refunded"), ZERO.label("duplicate_amount"), ZERO.label("gateway_refunded"),
        ]

    ledger_refund_lines = (
        select(*refund_columns(case(
            (GR.c.id.is_(None), _text(LEDGER_ONLY)),
            (or_(GR.c.amount != R.c.amount, GR.c.currency != R.c.currency), _text(MISMATCH)),
            else_=_text(MATCHED),
        )))
        .select_from(
            R.join(RP, RP.c.id == R.c.payment_id)
            .outerjoin(GR, and_(GR.c.gateway == RP.c.gateway, GR.c.transaction_id == R.c.gateway_refund_id,
                                GR.c.kind == "refund"))
        )
        # A refund the gateway refused moved no money on either side: nothing to reconcile.
        .where(_within(R.c.created_at, start, end), R.c.status != "failed")
    )
    # Refunds the gateway made in the window that the ledger did not record in the window.
    gateway_refund_lines = (
        select(*refund_columns(case((R.c.id.is_(None), _text(GATEWAY_ONLY)), else_=_text(MATCHED))))
        .select_from(
            GR.outerjoin(R, R.c.gateway_refund_id == GR.c.transaction_id)
            .outerjoin(RP, and_(RP.c.gateway == GR.c.gateway, RP.c.gateway_intent_id == GR.c.intent_id))
        )
        .where(GR.c.kind == "refund", _within(GR.c.created_at, start, end),
               or_(R.c.id.is_(None), not_(_within(R.c.created_at, start, end))))
    )
    return union_all(ledger_side, gateway_side, loose_charges, ledger_refund_lines, gateway_refund_lines)


def _say(text):
    return literal(text, String)


def explanation(line, start, end):
    """SQL for the sentence staff read on a line: why it is in its class, and whether a duplicate was refunded."""
    c = line.c
    other_day = and_(c.ledger_at.is_not(None), or_(c.ledger_at < start, c.ledger_at >= end))
    surplus = c.gateway_amount - c.ledger_amount
    duplicate_refund = case((c.refunded >= c.duplicate_amount, _say(_("refunded"))),
                            (c.refunded > 0, _say(_("partly refunded"))), else_=_say(_("NOT refunded")))
    refund_note = case(
        (c.classification == LEDGER_ONLY, case(
            (c.ledger_status == "pending", _say(_("refund still pending: not yet accepted by the gateway"))),
            else_=_say(_("refund recorded in the ledger, not found at the gateway")))),
        (c.classification == GATEWAY_ONLY, _say(_("refund made at the gateway, not recorded in the ledger"))),
        (c.classification == MISMATCH, _say(_("refund amount or currency differs"))),
        (other_day, _say(_("refund recorded in the ledger on another day"))),
        else_=null(),
    )
    return case(
        (c.kind == "refund", refund_note),
        (c.classification == GATEWAY_ONLY, case(
            (and_(c.payment_id.is_(None), c.gateway_payment_ref.is_not(None)),
             _say(_("no payment in the ledger for this charge (gateway says payment ")) + c.gateway_payment_ref
             + _say(")")),
            (c.payment_id.is_(None), _say(_("no payment in the ledger for this charge"))),
            else_=_say(_("the ledger's payment is ")) + c.ledger_status
            + _say(_(": money taken but the fines not marked paid")))),
        (c.classification == LEDGER_ONLY, _say(_("no charge at the gateway for this settled payment"))),
        (c.classification == MISMATCH, case(
            (c.gateway_currency != c.ledger_currency,
             _say(_("currency: ledger ")) + c.ledger_currency + _say(_(", gateway ")) + c.gateway_currency),
            else_=_say(_("amount: ledger and gateway differ")))),
        (c.classification == DUPLICATE, case(
            (c.gateway_count > 1,
             _say(_("captured ")) + cast(c.gateway_count, String) + _say(_(" times at the gateway; the surplus was "))
             + case((and_(surplus > 0, c.gateway_refunded >= surplus), _say(_("refunded"))),
                    else_=_say(_("NOT refunded")))),
            else_=_say(_("violation already paid by an earlier payment; the duplicate charge was "))
            + duplicate_refund)),
        (other_day, _say(_("settled in the ledger on another day"))),
        else_=null(),
    )


def explained_lines(start, end):
    """The lines of [start, end), each with its explanation (``note``) and its kiosk's name (``terminal``)."""
    raw = lines_query(start, end).subquery("raw_lines")
    return (
        select(raw, explanation(raw, start, end).label("note"), Terminal.name.label("terminal"))
        .outerjoin(Terminal, Terminal.id == raw.c.terminal_id)
        .subquery("lines")
    )


@dataclass
class Totals:
    """A count and an amount in minor units."""

    count: int = 0
    amount: int = 0


@dataclass
class Report:
    """The reconciliation of a business date range."""

    first_day: object
    last_day: object
    start: object
    end: object
    currency: str
    gateway: str
    fetched_at: object
    collected: Totals
    by_channel: list
    by_terminal: list
    by_gateway: list
    refunds: Totals
    refunds_pending: Totals
    gateway_charges: list  # (gateway, currency, Totals)
    gateway_refunds: list
    classes: dict  # class -> Totals (count of lines, ledger amount)
    discrepancies: list
    truncated: bool
    hourly: list = field(default_factory=list)  # 24 x (ledger Totals, gateway Totals)

    @property
    def net(self):
        """Collected minus refunded, per the ledger."""
        return self.collected.amount - self.refunds.amount

    @property
    def gateway_net(self):
        """Charged minus refunded, per the gateway, in the ledger's currency."""
        charged = sum(t.amount for _g, c, t in self.gateway_charges if c == self.currency)
        refunded = sum(t.amount for _g, c, t in self.gateway_refunds if c == self.currency)
        return charged - refunded

    @property
    def discrepancy_count(self):
        """Lines that are not matched."""
        return sum(t.count for cls, t in self.classes.items() if cls != MATCHED)


def check_range(first_day, last_day):
    """Raise ValueError unless the range is ordered and at most MAX_DAYS long."""
    if last_day < first_day:
        raise ValueError(N_("The end date is before the start date."))
    if (last_day - first_day).days >= MAX_DAYS:
        raise ValueError(N_("Choose at most 31 days."))


def _settled_in(start, end):
    return and_(P.c.status.in_(SETTLED), _within(P.c.paid_at, start, end))


def _ledger_totals(start, end):
    """One pass over the window's settlements: (by channel, by terminal id, by gateway, per hour) Totals."""
    start_value = literal(start, UTCDateTime)
    per_payment = select(P.c.channel, P.c.terminal_id, P.c.gateway, P.c.amount_received.label("amount"),
                         hours_since(P.c.paid_at, start_value).label("h")).where(_settled_in(start, end)).subquery()
    groups = (per_payment.c.channel, per_payment.c.terminal_id, per_payment.c.gateway, per_payment.c.h)
    totals = ({}, {}, {}, [Totals() for _ in range(24)])
    for channel, terminal_id, gateway, hour, count, amount in db.session.execute(
        select(*groups, func.count(), _sum(per_payment.c.amount)).group_by(*groups)
    ).all():
        for table, key in zip(totals, (channel, terminal_id, gateway, int(hour) % 24), strict=True):
            bucket = table[key] if isinstance(table, list) else table.setdefault(key, Totals())
            bucket.count += count
            bucket.amount += amount
    by_channel, by_terminal, by_gateway, hourly = totals
    return sorted(by_channel.items()), by_terminal, sorted(by_gateway.items()), hourly


def _gateway_hourly(start, end):
    hours = [Totals() for _ in range(24)]
    per_charge = select(hours_since(G.c.created_at, literal(start, UTCDateTime)).label("h"), G.c.amount) \
        .where(G.c.kind == "charge", _within(G.c.created_at, start, end)).subquery()
    for hour, count, amount in db.session.execute(
        select(per_charge.c.h, func.count(), _sum(per_charge.c.amount)).group_by(per_charge.c.h)
    ).all():
        hours[int(hour) % 24].count += count
        hours[int(hour) % 24].amount += amount
    return hours


def reconcile(first_day, last_day, *, limit=PAGE_LINES, only=None):
    """The report for business dates first_day..last_day (inclusive), in BUSINESS_TIMEZONE."""
    check_range(first_day, last_day)
    start, end = business_day_window((first_day, last_day))
    _tune_for_reports()
    # The lines are computed once (PostgreSQL materializes a CTE used twice): their counts by class,
    # and the first few to show, which alone get explained.
    lines = lines_query(start, end).cte("lines")
    when = func.coalesce(lines.c.ledger_at, lines.c.gateway_at)
    wanted = lines.c.classification != MATCHED if only is None else lines.c.classification == only
    shown = (select(lines).where(wanted).order_by(when, lines.c.payment_id, lines.c.transaction_id)
             .limit(limit + 1).subquery("shown"))
    shown_rows = (
        select(shown, explanation(shown, start, end).label("note"), Terminal.name.label("terminal"),
               null().label("class_count"), null().label("class_amount"))
        .outerjoin(Terminal, Terminal.id == shown.c.terminal_id)
    )
    count_rows = select(
        *(column if column.name == "classification" else null().label(column.name) for column in lines.c),
        null().label("note"), null().label("terminal"), func.count().label("class_count"),
        _sum(func.coalesce(lines.c.ledger_amount, lines.c.gateway_amount)).label("class_amount"),
    ).group_by(lines.c.classification)
    rows = db.session.execute(union_all(shown_rows, count_rows)).mappings().all()
    classes = {cls: Totals() for cls in CLASSES}
    for row in rows:
        if row["class_count"] is not None:
            classes[row["classification"]] = Totals(row["class_count"], row["class_amount"] or 0)
    rows = sorted((r for r in rows if r["class_count"] is None),
                  key=lambda r: (r["ledger_at"] or r["gateway_at"], r["payment_id"] or "", r["transaction_id"] or ""))
    discrepancies = [dict(r) for r in rows[:limit]]

    refunds = {status: Totals(count, amount) for status, count, amount in db.session.execute(
        select(R.c.status, func.count(), _sum(R.c.amount))
        .where(_within(R.c.created_at, start, end)).group_by(R.c.status)
    ).all()}
    gateway_rows = db.session.execute(
        select(G.c.gateway, G.c.kind, G.c.currency, func.count(), _sum(G.c.amount))
        .where(_within(G.c.created_at, start, end))
        .group_by(G.c.gateway, G.c.kind, G.c.currency).order_by(G.c.gateway, G.c.currency)
    ).all()
    by_channel, by_terminal, by_gateway, ledger_hourly = _ledger_totals(start, end)
    names = terminal_names({t for t in by_terminal if t is not None})
    collected = Totals(sum(t.count for _k, t in by_channel), sum(t.amount for _k, t in by_channel))
    return Report(
        first_day=first_day, last_day=last_day, start=start, end=end,
        currency=current_app.config["CURRENCY"], gateway=current_gateway().name, fetched_at=last_fetch(start, end),
        collected=collected, by_channel=by_channel,
        by_terminal=sorted(((names.get(t, f"#{t}"), totals) for t, totals in by_terminal.items() if t is not None),
                           key=lambda pair: pair[0]),
        by_gateway=by_gateway,
        refunds=refunds.get("succeeded", Totals()), refunds_pending=refunds.get("pending", Totals()),
        gateway_charges=[(g, c, Totals(n, a)) for g, k, c, n, a in gateway_rows if k == "charge"],
        gateway_refunds=[(g, c, Totals(n, a)) for g, k, c, n, a in gateway_rows if k == "refund"],
        classes=classes, discrepancies=discrepancies, truncated=len(rows) > limit,
        hourly=list(zip(ledger_hourly, _gateway_hourly(start, end), strict=True)),
    )


def _tune_for_reports():
    """PostgreSQL: let this transaction sort and hash a day's lines in memory, and skip JIT compiling."""
    if db.session.get_bind().dialect.name == "postgresql":
        db.session.execute(text("SET LOCAL work_mem = '64MB'"))
        db.session.execute(text("SET LOCAL jit = off"))


def terminal_names(ids):
    """Kiosk names by terminal id."""
    if not ids:
        return {}
    return dict(db.session.execute(select(Terminal.id, Terminal.name).where(Terminal.id.in_(ids))).all())


# --- CSV -----------------------------------------------------------------------------------

CHUNK_BYTES = 64 * 1024
CSV_HEADER = (
    "classification", "description", "kind", "payment_id", "gateway", "intent_id", "transaction_id",
    "channel", "terminal", "ledger_status", "ledger_at", "ledger_amount", "ledger_currency", "gateway_at",
    "gateway_amount", "gateway_currency", "gateway_charges", "refunded", "note",
)


def _defused(column):
    """A spreadsheet runs a cell that starts with = + - @ as a formula: never let gateway data do that."""
    return case((func.substr(column, 1, 1).in_(("=", "+", "-", "@", "\t", "\r")), _say("'") + column),
                else_=column)


def csv_query(start, end):
    """Every line of [start, end) in CSV_HEADER's columns (times still as timestamps), oldest first."""
    lines = explained_lines(start, end)
    label = case(*((lines.c.classification == cls, _say(text)) for cls, text in LABELS.items()))
    return select(
        lines.c.classification, label, lines.c.kind, lines.c.payment_id, lines.c.gateway,
        _defused(lines.c.intent_id), _defused(lines.c.transaction_id), lines.c.channel, lines.c.terminal,
        lines.c.ledger_status, lines.c.ledger_at, lines.c.ledger_amount, lines.c.ledger_currency, lines.c.gateway_at,
        lines.c.gateway_amount, lines.c.gateway_currency, lines.c.gateway_count, lines.c.refunded, lines.c.note,
    ).order_by(func.coalesce(lines.c.ledger_at, lines.c.gateway_at), lines.c.payment_id, lines.c.transaction_id)


def csv_lines(first_day, last_day, tz_name):
    """The report's lines as CSV text chunks (header first), streamed from the database.

    PostgreSQL writes the CSV itself (COPY ... TO STDOUT), so a day of 100,000
    payments streams without a Python object per line; SQLite goes row by row.
    Times are ISO 8601 in the business time zone, to the second.
    """
    check_range(first_day, last_day)
    start, end = business_day_window((first_day, last_day))
    _tune_for_reports()
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerow(CSV_HEADER)
    yield buffer.getvalue()
    query = csv_query(start, end)
    if db.session.get_bind().dialect.name == "postgresql":
        yield from _copy_csv(query, tz_name)
    else:
        yield from _python_csv(query, tz_name)


def _copy_csv(query, tz_name):
    connection = db.session.connection()
    db.session.execute(text("SELECT set_config('TimeZone', :zone, true)"), {"zone": tz_name})
    iso = 'YYYY-MM-DD"T"HH24:MI:SSTZH:TZM'
    columns = list(query.selected_columns)
    for i in (10, 13):  # ledger_at, gateway_at
        columns[i] = func.to_char(columns[i], iso)
    compiled = query.with_only_columns(*columns).compile(dialect=connection.dialect,
                                                         compile_kwargs={"render_postcompile": True})
    raw = connection.connection.driver_connection
    pending, size = [], 0
    with raw.cursor() as cursor, cursor.copy(f"COPY ({compiled.string}) TO STDOUT WITH (FORMAT csv)",
                                             compiled.params) as copy:
        for row in copy:
            pending.append(bytes(row))
            size += len(row)
            if size >= CHUNK_BYTES:
                yield b"".join(pending).decode()
                pending, size = [], 0
    yield b"".join(pending).decode()


def _python_csv(query, tz_name):
    zone = ZoneInfo(tz_name)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")  # as PostgreSQL's COPY writes it
    rows = db.session.execute(query, execution_options={"yield_per": 5000})
    for row in rows:
        row = list(row)
        for i in (10, 13):
            row[i] = row[i].astimezone(zone).isoformat(timespec="seconds") if row[i] else ""
        writer.writerow(row)
        if buffer.tell() >= CHUNK_BYTES:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()


def record_export(first_day, last_day, actor):
    """Put a CSV export on record."""
    audit.record("reconciliation.exported", "reconciliation", f"{first_day}..{last_day}", actor=actor)
    db.session.commit()
