"""The reconciliation's lines: every charge and refund of a window, matched across the ledger and the gateway.

Each line is a charge (one gateway intent, or one payment) or a refund, and
is classified as one of CLASSES by the database, in one statement
(``lines_query``); ``explanation`` adds the sentence staff read on it.
"""
from datetime import timedelta

from flask import current_app
from flask_babel import gettext as _
from sqlalchemy import (
    BigInteger,
    Integer,
    String,
    and_,
    case,
    cast,
    false,
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

from finepay.extensions import db
from finepay.i18n import N_, status_label
from payments.models import GatewayRecord, Payment, PaymentItem, Refund
from payments.states import CHARGED, STATUSES

# The table naming the terminals that take payments (id, name), registered by the area that has them (the kiosk).
TERMINALS = "finepay.reconciliation.terminals"

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
# How far from the window a charge may be and still match a payment charged in it.
MATCH_MARGIN = timedelta(days=1)
MAX_DAYS = 31

P = Payment.__table__
G = GatewayRecord.__table__
R = Refund.__table__
PI = PaymentItem.__table__
ZERO = literal_column("0", BigInteger)
ONE = literal_column("1", BigInteger)


def check_range(first_day, last_day):
    """Raise ValueError unless the range is ordered and at most MAX_DAYS long."""
    if last_day < first_day:
        raise ValueError(N_("The end date is before the start date."))
    if (last_day - first_day).days >= MAX_DAYS:
        raise ValueError(N_("Choose at most 31 days."))


def tune_for_reports():
    """PostgreSQL: let this transaction sort and hash a day's lines in memory, and skip JIT compiling."""
    if db.session.get_bind().dialect.name == "postgresql":
        db.session.execute(text("SET LOCAL work_mem = '64MB'"))
        db.session.execute(text("SET LOCAL jit = off"))


def within(column, start, end):
    """SQL: ``column`` falls in [start, end)."""
    return and_(column >= start, column < end)


def charged_within(start, end):
    """SQL: the payment (P) was charged, and its charge was recorded in [start, end)."""
    return and_(P.c.status.in_(CHARGED), within(P.c.paid_at, start, end))


def minor_units_sum(expr):
    """SQL SUM that stays an integer (PostgreSQL sums BIGINT into NUMERIC)."""
    return cast(func.sum(expr), BigInteger)


def sql_text(value):
    """A string as an SQL value (a bound parameter)."""
    return literal(value, String)


def _code(value):
    return literal_column(f"'{value}'")


def lines_query(start, end):
    """Every reconciliation line for [start, end) as one SQL statement (UNION ALL of charge and refund lines)."""
    charged_in_window = charged_within(start, end)

    def charges_of(*where, name):
        """Each intent's charges (count, total, currencies, first time): a second capture is a duplicate."""
        return (
            select(G.c.gateway, G.c.intent_id, func.count().label("n"), minor_units_sum(G.c.amount).label("amount"),
                   func.min(G.c.currency).label("currency"), func.max(G.c.currency).label("currency_max"),
                   minor_units_sum(G.c.fee).label("fee"),
                   func.min(G.c.created_at).label("first_at"), func.min(G.c.transaction_id).label("txn"),
                   func.max(G.c.payment_id).label("payment_ref"))
            .where(G.c.kind == "charge", G.c.intent_id.is_not(None), *where)
            .group_by(G.c.gateway, G.c.intent_id).subquery(name)
        )

    # For the window's settlements: the charges near the window. (A settlement more than
    # MATCH_MARGIN away from its capture shows as two one-sided lines.)
    charges = charges_of(within(G.c.created_at, start - MATCH_MARGIN, end + MATCH_MARGIN), name="charges")
    # Refunds come after their charge: none can be older than the margin before the window.
    gateway_refunds = (
        select(G.c.gateway, G.c.intent_id, minor_units_sum(G.c.amount).label("amount"))
        .where(G.c.kind == "refund", G.c.intent_id.is_not(None), G.c.created_at >= start - MATCH_MARGIN)
        .group_by(G.c.gateway, G.c.intent_id).cte("gateway_refunds")
    )
    ledger_refunds = (
        select(R.c.payment_id,
               minor_units_sum(case((R.c.status == "succeeded", R.c.amount), else_=ZERO)).label("refunded"),
               minor_units_sum(case((R.c.status == "pending", R.c.amount), else_=ZERO)).label("pending"))
        .where(R.c.created_at >= start - MATCH_MARGIN)
        .group_by(R.c.payment_id).cte("ledger_refunds")
    )
    # A violation this payment did not settle because an earlier payment had already paid it.
    earlier_item, earlier = PI.alias("earlier_item"), P.alias("earlier")
    duplicates = (
        select(PI.c.payment_id, minor_units_sum(PI.c.fine + PI.c.late_fee).label("amount"))
        .select_from(PI.join(P, P.c.id == PI.c.payment_id))
        .where(charged_in_window, PI.c.settled.is_(False),
               select(earlier_item.c.id)
               .select_from(earlier_item.join(earlier, earlier.c.id == earlier_item.c.payment_id))
               .where(earlier_item.c.violation_id == PI.c.violation_id,
                      # the same instalment, for a line that pays one (another instalment is no duplicate)
                      earlier_item.c.instalment_id.is_not_distinct_from(PI.c.instalment_id),
                      earlier_item.c.payment_id != PI.c.payment_id,
                      earlier.c.status.in_(CHARGED), earlier.c.paid_at <= P.c.paid_at)
               .exists())
        .group_by(PI.c.payment_id).cte("duplicates")
    )

    # Intents charged in the window that no payment charged in the window accounts for: found by an
    # anti-join of the window's rows on both sides, so that only these few look up their payment.
    paid, charged = P.alias("paid"), G.alias("charged")
    unmatched = (
        select(charged.c.gateway, charged.c.intent_id)
        .where(charged.c.kind == "charge", charged.c.intent_id.is_not(None),
               within(charged.c.created_at, start, end),
               ~select(paid.c.id).where(paid.c.gateway == charged.c.gateway,
                                        paid.c.gateway_intent_id == charged.c.intent_id,
                                        paid.c.status.in_(CHARGED), within(paid.c.paid_at, start, end))
               .exists())
        .distinct().cte("unmatched")
    )
    stray = charges_of(tuple_(G.c.gateway, G.c.intent_id).in_(select(unmatched.c.gateway, unmatched.c.intent_id)),
                       name="stray_charges")
    expected = case((P.c.status.in_(CHARGED), P.c.amount_received), else_=P.c.amount)

    def currency_differs(charges):
        return or_(charges.c.currency != P.c.currency, charges.c.currency_max != charges.c.currency)

    def charge_line(charges, classification, gateway, intent, refunded, duplicate):
        return [
            classification.label("classification"), _code("charge").label("kind"),
            P.c.id.label("payment_id"), gateway.label("gateway"), intent.label("intent_id"),
            charges.c.txn.label("transaction_id"), charges.c.payment_ref.label("gateway_payment_ref"),
            P.c.channel.label("channel"), P.c.terminal_id.label("terminal_id"), P.c.status.label("ledger_status"),
            P.c.plate.label("plate"), P.c.receipt_number.label("receipt_number"), P.c.paid_at.label("ledger_at"), expected.label("ledger_amount"), P.c.currency.label("ledger_currency"),
            charges.c.first_at.label("gateway_at"), charges.c.amount.label("gateway_amount"),
            charges.c.currency.label("gateway_currency"), charges.c.fee.label("gateway_fee"),
            charges.c.n.label("gateway_count"),
            refunded.label("refunded"), duplicate.label("duplicate_amount"),
            func.coalesce(gateway_refunds.c.amount, ZERO).label("gateway_refunded"),
        ]

    # Charged in the window per the ledger, matched to the gateway's charges for its intent.
    ledger_side = (
        select(*charge_line(
            charges,
            case(
                (charges.c.n.is_(None), _code(LEDGER_ONLY)),
                (charges.c.n > 1, _code(DUPLICATE)),
                (or_(currency_differs(charges), charges.c.amount != P.c.amount_received), _code(MISMATCH)),
                (duplicates.c.amount.is_not(None), _code(DUPLICATE)),
                else_=_code(MATCHED),
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
        .where(charged_in_window)
    )
    # Charged at the gateway in the window, for an intent whose payment was not charged in the window: every charge of it.
    gateway_side = (
        select(*charge_line(
            stray,
            case(
                (P.c.id.is_(None), _code(GATEWAY_ONLY)),
                (stray.c.n > 1, _code(DUPLICATE)),
                (or_(currency_differs(stray), stray.c.amount != expected), _code(MISMATCH)),
                (P.c.status.not_in(CHARGED), _code(GATEWAY_ONLY)),
                else_=_code(MATCHED),  # charged on another day
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
        _code(GATEWAY_ONLY).label("classification"), _code("charge").label("kind"), null().label("payment_id"),
        G.c.gateway, null().label("intent_id"), G.c.transaction_id, G.c.payment_id.label("gateway_payment_ref"),
        null().label("channel"), null().label("terminal_id"), null().label("ledger_status"),
        null().label("plate"), null().label("receipt_number"), null().label("ledger_at"), null().label("ledger_amount"), null().label("ledger_currency"),
        G.c.created_at.label("gateway_at"), G.c.amount.label("gateway_amount"), G.c.currency.label("gateway_currency"),
        G.c.fee.label("gateway_fee"), ONE.label("gateway_count"), ZERO.label("refunded"), ZERO.label("duplicate_amount"),
        ZERO.label("gateway_refunded"),
    ).where(G.c.kind == "charge", G.c.intent_id.is_(None), within(G.c.created_at, start, end))

    # Refunds recorded in the ledger in the window, against the gateway's refunds.
    RP = P.alias("refund_payment")
    GR = G.alias("gateway_refund")
    def refund_columns(classification):
        return [
            classification.label("classification"), _code("refund").label("kind"), RP.c.id.label("payment_id"),
            RP.c.gateway.label("gateway"), RP.c.gateway_intent_id.label("intent_id"),
            func.coalesce(GR.c.transaction_id, R.c.gateway_refund_id).label("transaction_id"),
            GR.c.payment_id.label("gateway_payment_ref"), RP.c.channel.label("channel"),
            RP.c.terminal_id.label("terminal_id"), R.c.status.label("ledger_status"), RP.c.plate.label("plate"),
            RP.c.receipt_number.label("receipt_number"), R.c.created_at.label("ledger_at"),
            R.c.amount.label("ledger_amount"), R.c.currency.label("ledger_currency"),
            GR.c.created_at.label("gateway_at"), GR.c.amount.label("gateway_amount"),
            GR.c.currency.label("gateway_currency"), GR.c.fee.label("gateway_fee"),
            case((GR.c.id.is_(None), ZERO), else_=ONE).label("gateway_count"),
            ZERO.label("refunded"), ZERO.label("duplicate_amount"), ZERO.label("gateway_refunded"),
        ]

    ledger_refund_lines = (
        select(*refund_columns(case(
            (GR.c.id.is_(None), _code(LEDGER_ONLY)),
            (or_(GR.c.amount != R.c.amount, GR.c.currency != R.c.currency), _code(MISMATCH)),
            else_=_code(MATCHED),
        )))
        .select_from(
            R.join(RP, RP.c.id == R.c.payment_id)
            .outerjoin(GR, and_(GR.c.gateway == RP.c.gateway, GR.c.transaction_id == R.c.gateway_refund_id,
                                GR.c.kind == "refund"))
        )
        # A refund the gateway refused moved no money on either side: nothing to reconcile.
        .where(within(R.c.created_at, start, end), R.c.status != "failed")
    )
    # Refunds the gateway made in the window that the ledger did not record in the window.
    gateway_refund_lines = (
        select(*refund_columns(case((R.c.id.is_(None), _code(GATEWAY_ONLY)), else_=_code(MATCHED))))
        .select_from(
            GR.outerjoin(R, R.c.gateway_refund_id == GR.c.transaction_id)
            .outerjoin(RP, and_(RP.c.gateway == GR.c.gateway, RP.c.gateway_intent_id == GR.c.intent_id))
        )
        .where(GR.c.kind == "refund", within(GR.c.created_at, start, end),
               or_(R.c.id.is_(None), not_(within(R.c.created_at, start, end))))
    )
    return union_all(ledger_side, gateway_side, loose_charges, ledger_refund_lines, gateway_refund_lines)


def bill_not_ready_note():
    """What staff read for a gateway whose bill for the dates is not out yet (instead of every line ledger-only)."""
    return _("the gateway's bill for this day is not available yet (usually after about 10:00 the next day)")


def _with(sentence, **values):
    """SQL for a translated sentence with its named placeholders filled from columns, in the translator's order."""
    result = sql_text(sentence)
    for name, column in values.items():
        result = func.replace(result, f"%({name})s", column)
    return result


def awaiting(line, awaiting_bill):
    """SQL: the line falls when its gateway's bill is not out yet (``awaiting_bill``: gateway name -> from when)."""
    when = func.coalesce(line.c.ledger_at, line.c.gateway_at)
    return or_(false(), *(and_(line.c.gateway == name, when >= since) for name, since in awaiting_bill.items()))


def explanation(line, start, end, awaiting_bill=None):
    """SQL for the sentence staff read on a line: why it is in its class, and whether a duplicate was refunded.

    ``awaiting_bill`` (gateway name -> from when) says where a gateway's bill
    is not out yet: ledger-only lines there are only waiting for it, and say so.
    """
    c = line.c
    other_day = and_(c.ledger_at.is_not(None), or_(c.ledger_at < start, c.ledger_at >= end))
    surplus = c.gateway_amount - c.ledger_amount
    surplus_refunded = and_(surplus > 0, c.gateway_refunded >= surplus)
    count = cast(c.gateway_count, String)
    refund_note = case(
        (c.classification == LEDGER_ONLY, case(
            (c.ledger_status == "pending", sql_text(_("refund still pending: not yet accepted by the gateway"))),
            else_=sql_text(_("refund recorded in the ledger, not found at the gateway")))),
        (c.classification == GATEWAY_ONLY, sql_text(_("refund made at the gateway, not recorded in the ledger"))),
        (c.classification == MISMATCH, sql_text(_("refund amount or currency differs"))),
        (other_day, sql_text(_("refund recorded in the ledger on another day"))),
        else_=null(),
    )
    return case(
        (and_(c.classification == LEDGER_ONLY, awaiting(line, awaiting_bill or {})), sql_text(bill_not_ready_note())),
        (c.kind == "refund", refund_note),
        (c.classification == GATEWAY_ONLY, case(
            (and_(c.payment_id.is_(None), c.gateway_payment_ref.is_not(None)),
             _with(_("no payment in the ledger for this charge (gateway says payment %(payment)s)"),
                   payment=c.gateway_payment_ref)),
            (c.payment_id.is_(None), sql_text(_("no payment in the ledger for this charge"))),
            else_=_with(_("the ledger's payment is %(status)s: money taken but the fines not marked paid"),
                        status=_status_words(c.ledger_status)))),
        (c.classification == LEDGER_ONLY, sql_text(_("no charge at the gateway for this settled payment"))),
        (c.classification == MISMATCH, case(
            (c.gateway_currency != c.ledger_currency,
             _with(_("currency: ledger %(ledger)s, gateway %(gateway)s"),
                   ledger=c.ledger_currency, gateway=c.gateway_currency)),
            else_=sql_text(_("amount: ledger and gateway differ")))),
        (c.classification == DUPLICATE, case(
            (and_(c.gateway_count > 1, surplus_refunded),
             _with(_("captured %(count)s times at the gateway; the surplus was refunded"), count=count)),
            (c.gateway_count > 1,
             _with(_("captured %(count)s times at the gateway; the surplus was NOT refunded"), count=count)),
            (c.refunded >= c.duplicate_amount,
             sql_text(_("violation already paid by an earlier payment; the duplicate charge was refunded"))),
            (c.refunded > 0,
             sql_text(_("violation already paid by an earlier payment; the duplicate charge was partly refunded"))),
            else_=sql_text(_("violation already paid by an earlier payment; the duplicate charge was NOT refunded")))),
        (other_day, sql_text(_("settled in the ledger on another day"))),
        else_=null(),
    )


def _status_words(column):
    """SQL: a payment status code as the word staff read for it (status_label), in the request's language."""
    return case(*((column == code, sql_text(status_label(code))) for code in STATUSES), else_=column)


def name_terminals(app, table):
    """Where reconciliation finds the names of the terminals that took payments (a table with id and name)."""
    app.extensions[TERMINALS] = table


def terminals():
    """The terminals' (id, name), or none when no area registered any."""
    table = current_app.extensions.get(TERMINALS)
    if table is None:
        return select(cast(null(), Integer).label("id"), cast(null(), String).label("name")).where(false()).subquery(
            "terminals")
    return select(table.c.id, table.c.name).subquery("terminals")


def explained_lines(start, end, awaiting_bill=None, as_cte=False):
    """The lines of [start, end), each with its explanation (``note``) and its kiosk's name (``terminal``);
    a CTE with ``as_cte`` (for a query that reads them twice), else a subquery."""
    raw = lines_query(start, end).subquery("raw_lines")
    names = terminals()
    query = (
        select(raw, explanation(raw, start, end, awaiting_bill).label("note"), names.c.name.label("terminal"))
        .outerjoin(names, names.c.id == raw.c.terminal_id)
    )
    return query.cte("lines") if as_cte else query.subquery("lines")
