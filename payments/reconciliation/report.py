"""The reconciliation report of a business date range: totals, classes, the first differences, an hourly chart."""
from dataclasses import dataclass, field

from flask import current_app
from sqlalchemy import Integer, func, literal, null, select, union_all
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.expression import FunctionElement

from finepay.dbtypes import UTCDateTime
from finepay.extensions import db
from payments.gateways import configured_gateways
from payments.reconciliation.fetch import last_fetch
from payments.reconciliation.lines import (
    CLASSES,
    MATCHED,
    G,
    P,
    R,
    charged_within,
    check_range,
    explanation,
    lines_query,
    minor_units_sum,
    terminals,
    tune_for_reports,
    within,
)
from violations.fees import business_day_window

PAGE_LINES = 500


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


def _ledger_totals(start, end):
    """One pass over the window's settlements: (by channel, by terminal id, by gateway, per hour) Totals."""
    start_value = literal(start, UTCDateTime)
    per_payment = select(P.c.channel, P.c.terminal_id, P.c.gateway, P.c.amount_received.label("amount"),
                         hours_since(P.c.paid_at, start_value).label("h")).where(charged_within(start, end)).subquery()
    groups = (per_payment.c.channel, per_payment.c.terminal_id, per_payment.c.gateway, per_payment.c.h)
    totals = ({}, {}, {}, [Totals() for _ in range(24)])
    for channel, terminal_id, gateway, hour, count, amount in db.session.execute(
        select(*groups, func.count(), minor_units_sum(per_payment.c.amount)).group_by(*groups)
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
        .where(G.c.kind == "charge", within(G.c.created_at, start, end)).subquery()
    for hour, count, amount in db.session.execute(
        select(per_charge.c.h, func.count(), minor_units_sum(per_charge.c.amount)).group_by(per_charge.c.h)
    ).all():
        hours[int(hour) % 24].count += count
        hours[int(hour) % 24].amount += amount
    return hours


def reconcile(first_day, last_day, *, limit=PAGE_LINES, only=None):
    """The report for business dates first_day..last_day (inclusive), in BUSINESS_TIMEZONE."""
    check_range(first_day, last_day)
    start, end = business_day_window((first_day, last_day))
    tune_for_reports()
    # The lines are computed once (PostgreSQL materializes a CTE used twice): their counts by class,
    # and the first few to show, which alone get explained.
    lines = lines_query(start, end).cte("lines")
    when = func.coalesce(lines.c.ledger_at, lines.c.gateway_at)
    wanted = lines.c.classification != MATCHED if only is None else lines.c.classification == only
    shown = (select(lines).where(wanted).order_by(when, lines.c.payment_id, lines.c.transaction_id)
             .limit(limit + 1).subquery("shown"))
    names = terminals()
    shown_rows = (
        select(shown, explanation(shown, start, end).label("note"), names.c.name.label("terminal"),
               null().label("class_count"), null().label("class_amount"))
        .outerjoin(names, names.c.id == shown.c.terminal_id)
    )
    count_rows = select(
        *(column if column.name == "classification" else null().label(column.name) for column in lines.c),
        null().label("note"), null().label("terminal"), func.count().label("class_count"),
        minor_units_sum(func.coalesce(lines.c.ledger_amount, lines.c.gateway_amount)).label("class_amount"),
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
        select(R.c.status, func.count(), minor_units_sum(R.c.amount))
        .where(within(R.c.created_at, start, end)).group_by(R.c.status)
    ).all()}
    gateway_rows = db.session.execute(
        select(G.c.gateway, G.c.kind, G.c.currency, func.count(), minor_units_sum(G.c.amount))
        .where(within(G.c.created_at, start, end))
        .group_by(G.c.gateway, G.c.kind, G.c.currency).order_by(G.c.gateway, G.c.currency)
    ).all()
    by_channel, by_terminal, by_gateway, ledger_hourly = _ledger_totals(start, end)
    names = terminal_names({t for t in by_terminal if t is not None})
    collected = Totals(sum(t.count for _k, t in by_channel), sum(t.amount for _k, t in by_channel))
    return Report(
        first_day=first_day, last_day=last_day, start=start, end=end,
        currency=current_app.config["CURRENCY"], gateway=configured_gateways()[0].name, fetched_at=last_fetch(start, end),
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


def terminal_names(ids):
    """Kiosk names by terminal id."""
    if not ids:
        return {}
    names = terminals()
    return dict(db.session.execute(select(names.c.id, names.c.name).where(names.c.id.in_(ids))).all())

