"""The reconciliation report of a business date range: totals, classes, the first differences, an hourly chart.

Per gateway too (a GatewaySection each): its lines by class, what it charged
and refunded, its fees and the net it settles, against the ledger's payments
taken through it.
"""
from dataclasses import dataclass, field

from flask import current_app
from sqlalchemy import Integer, case, func, literal, not_, null, select, union_all
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.expression import FunctionElement

from finepay.dbtypes import UTCDateTime
from finepay.extensions import db
from payments.ereceipt_requests import waiting_payments
from payments.gateways import configured_gateways
from payments.reconciliation.fetch import label_of, last_fetches
from payments.reconciliation.lines import (
    CLASSES,
    MATCHED,
    ZERO,
    G,
    P,
    R,
    awaiting,
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
class ClassTotals:
    """A class of lines: how many, and what its charges and its refunds come to (minor units), kept apart."""

    count: int = 0
    charges: int = 0
    refunds: int = 0

    @property
    def net(self):
        """Charges less refunds: what the class moved in all."""
        return self.charges - self.refunds


def _in_currency(rows, currency):
    return sum(t.amount for c, t in rows if c == currency)


@dataclass
class GatewaySection:
    """One gateway's part of the report; figures summed in the ledger's currency."""

    name: str
    label: str
    configured: bool  # False: payments went through it, but it is no longer in PAYMENT_GATEWAYS (nothing to fetch)
    currency: str
    fetched_at: object  # the latest fetch covering the dates (None: a day of them never fetched)
    waiting_from: object  # from when on the gateway's bill is not out yet (None: it is out for every day)
    partly_ready: bool  # its bill is out for the days before waiting_from, which are reconciled
    classes: dict  # class -> ClassTotals
    charges: list  # (currency, Totals), per the gateway
    refunds: list  # (currency, Totals), per the gateway
    fees: int  # the gateway's fees on its charges and refunds (a refund may return some)
    collected: Totals  # per the ledger: payments taken through this gateway
    ledger_refunds: Totals

    @property
    def bill_not_ready(self):
        """Whether a day of the dates still waits for the gateway's bill."""
        return self.waiting_from is not None

    @property
    def charged(self):
        """Charged per the gateway."""
        return _in_currency(self.charges, self.currency)

    @property
    def refunded(self):
        """Refunded per the gateway."""
        return _in_currency(self.refunds, self.currency)

    @property
    def net(self):
        """Charged minus refunded, per the gateway."""
        return self.charged - self.refunded

    @property
    def settlement(self):
        """What the gateway pays out: charges minus refunds minus its fees."""
        return self.net - self.fees

    @property
    def ledger_net(self):
        """Collected minus refunded through this gateway, per the ledger."""
        return self.collected.amount - self.ledger_refunds.amount

    @property
    def discrepancy_count(self):
        """Lines that are not matched."""
        return sum(t.count for cls, t in self.classes.items() if cls != MATCHED)


@dataclass
class Report:
    """The reconciliation of a business date range."""

    first_day: object
    last_day: object
    start: object
    end: object
    currency: str
    gateways: list  # GatewaySection, the configured gateways first, in their order
    collected: Totals
    by_channel: list
    by_terminal: list
    by_gateway: list
    refunds: Totals
    refunds_pending: Totals
    gateway_charges: list  # (gateway, currency, Totals)
    gateway_refunds: list
    classes: dict  # class -> ClassTotals (lines, ledger amounts of charges and of refunds), where the bills are out
    discrepancies: list
    truncated: bool
    hourly: list = field(default_factory=list)  # 24 x (ledger Totals, gateway Totals)
    #: Payments (of any date) still without their official e-receipt: each one's oldest waiting request.
    without_ereceipt: list = field(default_factory=list)

    @property
    def gateway_labels(self):
        """Each gateway's label by its name."""
        return {section.name: section.label for section in self.gateways}

    @property
    def fetched_at(self):
        """When every configured gateway's records for these dates had been fetched (the oldest fetch), or None."""
        times = [section.fetched_at for section in self.gateways if section.configured]
        return None if not times or None in times else min(times)

    @property
    def net(self):
        """Collected minus refunded, per the ledger."""
        return self.collected.amount - self.refunds.amount

    @property
    def gateway_net(self):
        """Charged minus refunded, per the gateways, in the ledger's currency."""
        charged = sum(t.amount for _g, c, t in self.gateway_charges if c == self.currency)
        refunded = sum(t.amount for _g, c, t in self.gateway_refunds if c == self.currency)
        return charged - refunded

    @property
    def discrepancy_count(self):
        """Lines that are not matched."""
        return sum(t.count for cls, t in self.classes.items() if cls != MATCHED)

    @property
    def line_count(self):
        """Lines of every class: none when nothing was charged or refunded on either side."""
        return sum(t.count for t in self.classes.values())

    @property
    def gateway_charged(self):
        """Charged per the gateways, in the ledger's currency."""
        return sum(section.charged for section in self.gateways)

    @property
    def gateway_refunded(self):
        """Refunded per the gateways, in the ledger's currency."""
        return sum(section.refunded for section in self.gateways)

    @property
    def gateway_fees(self):
        """The gateways' fees, in the ledger's currency."""
        return sum(section.fees for section in self.gateways)

    @property
    def gateway_settlement(self):
        """What the gateways pay out in all: their net less their fees."""
        return self.gateway_net - self.gateway_fees

    @property
    def net_difference(self):
        """Ledger net minus gateway net, over the gateways whose bill is out (the lines explain it)."""
        return sum(s.ledger_net - s.net for s in self.gateways if not s.bill_not_ready)


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


def reconcile(first_day, last_day, *, limit=PAGE_LINES, only=None, gateway=None):
    """The report for business dates first_day..last_day (inclusive), in BUSINESS_TIMEZONE.

    ``only`` lists the lines of one class, ``gateway`` those of one gateway.
    A gateway whose bill is not out yet for a day has its section say so,
    and its lines from that day on are neither listed nor counted.
    """
    check_range(first_day, last_day)
    start, end = business_day_window((first_day, last_day))
    tune_for_reports()
    fetches = last_fetches(start, end)
    awaiting_bill = {name: fetch.waiting_from for name, fetch in fetches.items() if fetch.bill_not_ready}
    # The lines are computed once (PostgreSQL materializes a CTE used twice): their counts by gateway and
    # class, and the first few to show, which alone get explained.
    lines = lines_query(start, end).cte("lines")
    when = func.coalesce(lines.c.ledger_at, lines.c.gateway_at)
    wanted = [lines.c.classification != MATCHED if only is None else lines.c.classification == only,
              not_(awaiting(lines, awaiting_bill))]
    if gateway is not None:
        wanted.append(lines.c.gateway == gateway)
    shown = (select(lines).where(*wanted).order_by(when, lines.c.payment_id, lines.c.transaction_id)
             .limit(limit + 1).subquery("shown"))
    names = terminals()
    shown_rows = (
        select(shown, explanation(shown, start, end).label("note"), names.c.name.label("terminal"),
               null().label("class_count"), null().label("class_charges"), null().label("class_refunds"))
        .outerjoin(names, names.c.id == shown.c.terminal_id)
    )
    # Charges and refunds are summed apart: one "matched" amount of both would mean nothing to finance.
    amount = func.coalesce(lines.c.ledger_amount, lines.c.gateway_amount)
    count_rows = select(
        *(column if column.name in ("classification", "gateway") else null().label(column.name)
          for column in lines.c),
        null().label("note"), null().label("terminal"), func.count().label("class_count"),
        minor_units_sum(case((lines.c.kind == "charge", amount), else_=ZERO)).label("class_charges"),
        minor_units_sum(case((lines.c.kind == "refund", amount), else_=ZERO)).label("class_refunds"),
    ).where(not_(awaiting(lines, awaiting_bill))).group_by(lines.c.gateway, lines.c.classification)
    rows = db.session.execute(union_all(shown_rows, count_rows)).mappings().all()
    classes_by_gateway = {}
    for row in rows:
        if row["class_count"] is not None:
            classes = classes_by_gateway.setdefault(row["gateway"], {cls: ClassTotals() for cls in CLASSES})
            classes[row["classification"]] = ClassTotals(row["class_count"], row["class_charges"] or 0,
                                                         row["class_refunds"] or 0)
    rows = sorted((r for r in rows if r["class_count"] is None),
                  key=lambda r: (r["ledger_at"] or r["gateway_at"], r["payment_id"] or "", r["transaction_id"] or ""))
    discrepancies = [dict(r) for r in rows[:limit]]

    refunds = db.session.execute(
        select(P.c.gateway, R.c.status, func.count(), minor_units_sum(R.c.amount))
        .select_from(R.join(P, P.c.id == R.c.payment_id))
        .where(within(R.c.created_at, start, end)).group_by(P.c.gateway, R.c.status)
    ).all()
    gateway_rows = db.session.execute(
        select(G.c.gateway, G.c.kind, G.c.currency, func.count(), minor_units_sum(G.c.amount),
               minor_units_sum(G.c.fee))
        .where(within(G.c.created_at, start, end))
        .group_by(G.c.gateway, G.c.kind, G.c.currency).order_by(G.c.gateway, G.c.currency)
    ).all()
    by_channel, by_terminal, by_gateway, ledger_hourly = _ledger_totals(start, end)
    names = terminal_names({t for t in by_terminal if t is not None})
    collected = Totals(sum(t.count for _k, t in by_channel), sum(t.amount for _k, t in by_channel))
    currency = current_app.config["CURRENCY"]
    sections = _sections(start, currency, fetches, classes_by_gateway, refunds, gateway_rows, dict(by_gateway))
    return Report(
        without_ereceipt=waiting_payments(),
        first_day=first_day, last_day=last_day, start=start, end=end, currency=currency, gateways=sections,
        collected=collected, by_channel=by_channel,
        by_terminal=sorted(((names.get(t, f"#{t}"), totals) for t, totals in by_terminal.items() if t is not None),
                           key=lambda pair: pair[0]),
        by_gateway=by_gateway,
        refunds=_status_totals(refunds, "succeeded"), refunds_pending=_status_totals(refunds, "pending"),
        gateway_charges=[(g, c, Totals(n, a)) for g, k, c, n, a, _f in gateway_rows if k == "charge"],
        gateway_refunds=[(g, c, Totals(n, a)) for g, k, c, n, a, _f in gateway_rows if k == "refund"],
        classes=_sum_classes(section.classes for section in sections),
        discrepancies=discrepancies, truncated=len(rows) > limit,
        hourly=list(zip(ledger_hourly, _gateway_hourly(start, end), strict=True)),
    )


def _status_totals(refunds, status, gateway=None):
    """The ledger's refunds in one status: of the payments taken through ``gateway``, or of all when None."""
    found = [(n, a) for g, s, n, a in refunds if s == status and (gateway is None or g == gateway)]
    return Totals(sum(n for n, _a in found), sum(a for _n, a in found))


def _sum_classes(class_tables):
    total = {cls: ClassTotals() for cls in CLASSES}
    for classes in class_tables:
        for cls, t in classes.items():
            total[cls] = ClassTotals(total[cls].count + t.count, total[cls].charges + t.charges,
                                     total[cls].refunds + t.refunds)
    return total


def _sections(start, currency, fetches, classes_by_gateway, refunds, gateway_rows, collected_by_gateway):
    """A GatewaySection for each configured gateway, in order, then for any other gateway the dates have lines of."""
    labels = {gateway.name: label_of(gateway) for gateway in configured_gateways()}
    seen = (set(classes_by_gateway) | {g for g, *_rest in gateway_rows} | set(collected_by_gateway)
            | {g for g, *_rest in refunds})
    names = list(labels) + sorted(seen - set(labels))
    sections = []
    for name in names:
        fetch = fetches.get(name)
        rows = [(k, c, Totals(n, a), f) for g, k, c, n, a, f in gateway_rows if g == name]
        sections.append(GatewaySection(
            name=name, label=labels.get(name, name), configured=name in labels, currency=currency,
            fetched_at=fetch.at if fetch else None, waiting_from=fetch.waiting_from if fetch else None,
            partly_ready=bool(fetch and fetch.bill_not_ready and fetch.waiting_from > start),
            classes=classes_by_gateway.get(name, {cls: ClassTotals() for cls in CLASSES}),
            charges=[(c, t) for k, c, t, _f in rows if k == "charge"],
            refunds=[(c, t) for k, c, t, _f in rows if k == "refund"],
            fees=sum(f for _k, c, _t, f in rows if c == currency),
            collected=collected_by_gateway.get(name, Totals()),
            ledger_refunds=_status_totals(refunds, "succeeded", name),
        ))
    return sections


def terminal_names(ids):
    """Kiosk names by terminal id."""
    if not ids:
        return {}
    names = terminals()
    return dict(db.session.execute(select(names.c.id, names.c.name).where(names.c.id.in_(ids))).all())

