"""What the money says: charges at the gateway (the sandbox's, or a simulator's) against payments, violations and the audit log."""
from collections import Counter, defaultdict

from sqlalchemy import select

from finepay.audit import AuditEntry, seal, verify_chain
from finepay.extensions import db
from payments.gateways.sandbox import SandboxIntent, SandboxRefund
from payments.models import Payment, PaymentItem
from violations.models import Violation

SETTLED = ("succeeded", "refunded")


def sandbox_charges():
    """What each payment's intent kept at the sandbox gateway (received less refunded), by payment id."""
    intents = {i.payment_id: i for i in db.session.execute(select(SandboxIntent)).scalars()}
    refunded = defaultdict(int)
    for refund in db.session.execute(select(SandboxRefund)).scalars():
        refunded[refund.intent_id] += refund.amount
    return {pid: i.amount_received - refunded[i.id] for pid, i in intents.items() if i.status == "succeeded"}


def ledger_report(charges_at_gateway=None):
    """Figures for the whole database: double charges, lost payments and audit disagreements (all must be 0).

    ``charges_at_gateway``: what the gateway kept, by FinePay intent id, as the
    gateway itself says (a simulator's state); the sandbox's by default. Seals
    the audit log first, as `payments sync` would after the race, so that the
    chain checked is the whole log.
    """
    sealing = seal()
    db.session.expire_all()
    payments = {p.id: p for p in db.session.execute(select(Payment)).scalars()}
    if charges_at_gateway is None:
        kept = sandbox_charges()
    else:
        by_intent = {p.gateway_intent_id: pid for pid, p in payments.items()}
        kept = {by_intent[intent_id]: amount for intent_id, amount in charges_at_gateway.items()}
    items = db.session.execute(select(PaymentItem)).scalars().all()
    violations = {v.id: v for v in db.session.execute(select(Violation)).scalars()}
    succeeded_entries = Counter(
        e.subject_id for e in db.session.execute(
            select(AuditEntry).where(AuditEntry.action == "payment.succeeded")
        ).scalars()
    )

    charged = {pid for pid, amount in kept.items() if amount > 0}
    net_charges = Counter(item.violation_id for item in items if item.payment_id in charged)
    double_charges = sum(1 for count in net_charges.values() if count > 1)
    # Money kept while a fine stays owed, or a charge FinePay does not count as paid.
    lost = {pid for pid in charged if payments[pid].status not in SETTLED} | {
        item.payment_id for item in items
        if item.payment_id in charged and violations[item.violation_id].status != "paid"
    }
    paid_without_money = [v.id for v in violations.values()
                          if v.status == "paid" and not any(i.violation_id == v.id and i.payment_id in charged
                                                            for i in items)]
    audit_disagreements = [
        pid for pid, p in payments.items() if succeeded_entries[pid] != (1 if p.status in SETTLED else 0)
    ]
    chain = verify_chain()
    return {
        "payments": len(payments),
        "charged": len(charged),
        "settled": sum(1 for p in payments.values() if p.status in SETTLED),
        "violations_paid": sum(1 for v in violations.values() if v.status == "paid"),
        "double_charges": double_charges,
        "payments_lost": len(lost) + len(paid_without_money),
        "audit_disagreements": len(audit_disagreements),
        # Every entry sealed into one chain that verifies (the race left none to a sealer that stopped).
        "audit_chain_ok": chain.ok and chain.unsealed == 0 and sealing.blocked_at is None,
        "statuses": dict(Counter(p.status for p in payments.values())),
    }
