"""Asking for official e-receipts (财政电子票据) without ever holding up or undoing a payment.

* A request is recorded in the transaction that settles a payment
  (``request_ereceipt`` from payments.services), and in the one that records
  a succeeded refund. The issuer is asked only after commit
  (``issue_after_commit``), and any failure there leaves the request queued:
  the payment has already succeeded.
* Asking brings the payment's e-receipts in line with what it paid now: the
  fines and late fees of the lines it settled, less what was refunded
  (``fiscal_items``). A refund that changed them red-flushes (冲红) the
  current e-receipt in full and has a new one issued for what remains; a
  refund that left them as they were (money captured beyond what was due,
  a line the payment did not settle) changes nothing.
* While the issuer is down, a request waits with its attempts and the time of
  its next try (doubling from a minute, at most an hour); ``payments sync``
  and ``flask ereceipts issue`` ask again.
* One worker at a time asks for a request: it claims it with a conditional
  update (a lease), only when no older request of the same payment is still
  waiting; every call to the issuer carries a key derived from the request,
  and the records are unique per request and kind. Two retriers at once make
  one e-receipt.

The service fee is not on the e-receipt: it is not a fine, and not the
authority's revenue (docs/ereceipts.md).
"""
import logging
from datetime import timedelta

from flask import current_app
from sqlalchemy import exists, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import aliased

from finepay import audit
from finepay.dbtypes import utcnow
from finepay.extensions import db
from payments import refunds, states
from payments.ereceipts import (
    BLUE,
    ITEM_FINE,
    ITEM_LATE_FEE,
    EReceipt,
    EReceiptError,
    EReceiptItem,
    IssueRequest,
    check_ereceipt,
    current_issuer,
)
from payments.models import EREQUEST_DONE, EREQUEST_PENDING, EReceiptRequest, IssuedEReceipt, Payment
from violations.models import Violation

log = logging.getLogger(__name__)

# How long one worker may take over a request before another may (it died, or the issuer hangs).
LEASE = timedelta(minutes=2)
FIRST_RETRY = timedelta(minutes=1)
LONGEST_RETRY = timedelta(hours=1)


def retry_delay(attempts):
    """How long a request waits after its ``attempts``-th failed try: a minute, doubling, at most an hour."""
    # The exponent stops growing once the delay has reached the cap (2**6 minutes is past an hour).
    return min(FIRST_RETRY * 2 ** min(max(attempts - 1, 0), 6), LONGEST_RETRY)


def request_ereceipt(payment, refund=None):
    """Record that the payment's e-receipt must be issued (or brought in line after ``refund``); no issuer is called.

    Called inside the transaction that settles the payment or records the
    refund, under the payment's lock: it commits with it, or not at all.
    """
    if current_issuer() is None:  # ERECEIPT_ISSUER=none: no e-receipts are issued
        return
    key = f"{payment.id}:ereceipt" if refund is None else f"{payment.id}:ereceipt:refund:{refund.id}"
    seen = db.session.execute(select(EReceiptRequest.id).where(EReceiptRequest.idempotency_key == key)).first()
    if seen is None:
        db.session.add(EReceiptRequest(payment_id=payment.id, refund_id=refund.id if refund else None,
                                       idempotency_key=key, next_try_at=utcnow()))


def split_refunded(line):
    """A line's fine and late fee less their part of what was refunded of it: (fine, late fee) left.

    What went back of a line is shared over its fine, its late fee and its
    share of the service fee in proportion (largest remainder, as the service
    fee itself is shared), so a partial refund lowers each by its part.
    """
    fine, late_fee = line.item.fine, line.item.late_fee
    parts = refunds.fee_shares(min(line.refunded, line.due), [fine, late_fee, line.fee_share])
    return fine - parts[0], late_fee - parts[1]


def fiscal_items(ledger, notice_numbers):
    """The items an e-receipt for this payment must carry now: each settled line's fine and late fee left.

    ``ledger`` is payments.refunds.balance(payment) (succeeded refunds);
    ``notice_numbers`` maps a violation id to its notice number. Lines the
    payment did not settle, and lines refunded in full, carry nothing.
    """
    items = []
    for line in ledger.lines:
        if not line.item.settled:
            continue
        fine, late_fee = split_refunded(line)
        reference = notice_numbers[line.item.violation_id]
        if fine > 0:
            items.append(EReceiptItem(ITEM_FINE, reference, fine))
        if late_fee > 0:
            items.append(EReceiptItem(ITEM_LATE_FEE, reference, late_fee))
    return tuple(items)


def _items_of(row):
    return tuple(EReceiptItem(kind, reference, amount) for kind, reference, amount in row.items)


def _same(items, other):
    return sorted((i.kind, i.reference, i.amount) for i in items) == sorted((i.kind, i.reference, i.amount)
                                                                             for i in other)


def current_ereceipt(payment_id):
    """The payment's e-receipt in force: its latest blue one that no red-flush cancelled; None when none."""
    red = aliased(IssuedEReceipt)
    return db.session.execute(
        select(IssuedEReceipt)
        .where(IssuedEReceipt.payment_id == payment_id, IssuedEReceipt.kind == BLUE,
               ~exists().where(red.flushes_id == IssuedEReceipt.id))
        .order_by(IssuedEReceipt.id.desc()).limit(1)
    ).scalar_one_or_none()


def _claim(request_id, now):
    """Take the request for LEASE if it is due, no one holds it, and no older request of its payment waits."""
    older = aliased(EReceiptRequest)
    won = db.session.execute(
        update(EReceiptRequest)
        .where(EReceiptRequest.id == request_id, EReceiptRequest.status == EREQUEST_PENDING,
               EReceiptRequest.next_try_at <= now,
               (EReceiptRequest.claimed_until.is_(None)) | (EReceiptRequest.claimed_until < now),
               ~exists().where(older.payment_id == EReceiptRequest.payment_id, older.status == EREQUEST_PENDING,
                               older.id < EReceiptRequest.id))
        .values(claimed_until=now + LEASE, attempts=EReceiptRequest.attempts + 1)
        .execution_options(synchronize_session=False)
    ).rowcount
    db.session.commit()
    return bool(won)


def _record(request_id, payment_id, ereceipt, flushes_id=None):
    """Keep what the issuer returned; a second worker's copy of the same answer is the same row."""
    issuer = current_issuer()
    row = IssuedEReceipt(
        payment_id=payment_id, request_id=request_id, kind=ereceipt.kind, issuer=issuer.name, code=ereceipt.code,
        number=ereceipt.number, check_code=ereceipt.check_code, issued_at=ereceipt.issued_at,
        amount=ereceipt.amount, currency=ereceipt.currency, payer=ereceipt.payer, authority=ereceipt.authority,
        items=[[item.kind, item.reference, item.amount] for item in ereceipt.items],
        verification_url=ereceipt.verification_url, flushes_id=flushes_id, simulated=issuer.simulated,
    )
    db.session.add(row)
    try:
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        row = db.session.execute(select(IssuedEReceipt).where(
            IssuedEReceipt.request_id == request_id, IssuedEReceipt.kind == ereceipt.kind)).scalar_one()
    audit.record(f"ereceipt.{'issued' if ereceipt.kind == BLUE else 'red_flushed'}", "payment", payment_id,
                 code=row.code, number=row.number, amount=row.amount, request=request_id)
    db.session.commit()
    return row


def _as_ereceipt(row):
    return EReceipt(kind=row.kind, code=row.code, number=row.number, check_code=row.check_code,
                    issued_at=row.issued_at, payer=row.payer, authority=row.authority, currency=row.currency,
                    items=_items_of(row), verification_url=row.verification_url)


def _bring_in_line(request):
    """Red-flush and issue as the payment's lines now require; raises EReceiptError if the issuer fails.

    Everything the issuer is sent is read first, and the transaction ended:
    nothing is held (on SQLite, no read lock either) while it is asked.
    """
    request_id, key = request.id, request.idempotency_key
    payment = db.session.get(Payment, request.payment_id, populate_existing=True)
    db.session.refresh(payment)
    notice_numbers = dict(db.session.execute(
        select(Violation.id, Violation.notice_number).where(Violation.id.in_([i.violation_id for i in payment.items]))
    ).all())
    wanted = fiscal_items(refunds.balance(payment), notice_numbers) if payment.status in states.CHARGED else ()
    current = current_ereceipt(payment.id)
    if current is not None and _same(_items_of(current), wanted):
        db.session.commit()
        return "unchanged"
    in_force = (current.id, _as_ereceipt(current)) if current is not None else None
    asked = IssueRequest(idempotency_key=f"{key}:blue", payer=payment.plate,
                         authority=current_app.config["AUTHORITY_NAME"], currency=payment.currency, items=wanted,
                         payment_id=payment.id, receipt_number=payment.receipt_number)
    issuer = current_issuer()
    db.session.commit()  # nothing is held while the issuer is asked
    outcome = "unchanged"
    if in_force is not None:
        flushed_id, flushed = in_force
        changed = sorted({item.reference for item in set(flushed.items) ^ set(wanted)})
        red = check_ereceipt(issuer.red_flush(flushed, changed, reason="refund", idempotency_key=f"{key}:red"))
        _record(request_id, asked.payment_id, red, flushes_id=flushed_id)
        outcome = "red_flushed"
    if wanted:
        _record(request_id, asked.payment_id, check_ereceipt(issuer.issue(asked)))
        outcome = "issued"
    return outcome


def process_request(request_id, now=None):
    """Ask the issuer for one request if this worker can claim it; returns "done", "failed" or "skipped"."""
    now = now or utcnow()
    if not _claim(request_id, now):
        return "skipped"
    request = db.session.get(EReceiptRequest, request_id, populate_existing=True)
    try:
        _bring_in_line(request)
    except Exception as error:  # noqa: BLE001 - whatever the issuer does, the request waits for the next try
        db.session.rollback()
        code = error.code if isinstance(error, EReceiptError) else type(error).__name__
        request = db.session.get(EReceiptRequest, request_id, populate_existing=True)
        request.last_error = code[:100]
        request.next_try_at = utcnow() + retry_delay(request.attempts)
        request.claimed_until = None
        audit.record("ereceipt.failed", "payment", request.payment_id, code=code, attempts=request.attempts,
                     request=request.id)
        db.session.commit()
        if isinstance(error, EReceiptError):
            log.warning("e-receipt request %s of %s failed (%s); retried at %s", request.id, request.payment_id,
                        code, request.next_try_at.isoformat())
        else:
            log.exception("e-receipt request %s of %s failed", request.id, request.payment_id)
        return "failed"
    request = db.session.get(EReceiptRequest, request_id, populate_existing=True)
    request.status, request.done_at, request.claimed_until, request.last_error = EREQUEST_DONE, utcnow(), None, None
    db.session.commit()
    return "done"


def issue_pending(payment_id=None, now=None):
    """Ask for every request that is due (of one payment, or all), oldest first; returns counts."""
    now = now or utcnow()
    counts = {"done": 0, "failed": 0, "skipped": 0}
    if current_issuer() is None:  # requests left from an issuer no longer configured wait for one
        return counts
    query = select(EReceiptRequest.id).where(EReceiptRequest.status == EREQUEST_PENDING,
                                             EReceiptRequest.next_try_at <= now)
    if payment_id is not None:
        query = query.where(EReceiptRequest.payment_id == payment_id)
    for request_id in db.session.execute(query.order_by(EReceiptRequest.id)).scalars().all():
        counts[process_request(request_id, now)] += 1
    db.session.commit()
    return counts


def issue_after_commit(payment_id):
    """Ask for the payment's due requests now that its transaction committed; never raises (the payment stands)."""
    try:
        issue_pending(payment_id)
    except Exception:  # noqa: BLE001 - the payment succeeded whatever happens here; sync asks again
        db.session.rollback()
        log.exception("e-receipt requests of %s not asked for; payments sync retries them", payment_id)


WAITING_LISTED = 200


def waiting_payments(limit=WAITING_LISTED):
    """Payments still without their official e-receipt, oldest first: (request, payment) of each one's oldest request.

    A payment appears once, with the request that holds the others back (its
    attempts, last error and next try); at most ``limit`` of them.
    """
    older = aliased(EReceiptRequest)
    return db.session.execute(
        select(EReceiptRequest, Payment).join(Payment, Payment.id == EReceiptRequest.payment_id)
        .where(EReceiptRequest.status == EREQUEST_PENDING,
               ~exists().where(older.payment_id == EReceiptRequest.payment_id, older.status == EREQUEST_PENDING,
                               older.id < EReceiptRequest.id))
        .order_by(EReceiptRequest.id).limit(limit)
    ).all()


def oldest_waiting(payment_id):
    """The payment's oldest e-receipt request still waiting (its attempts, error and next try), or None."""
    return db.session.execute(select(EReceiptRequest).where(
        EReceiptRequest.payment_id == payment_id, EReceiptRequest.status == EREQUEST_PENDING)
        .order_by(EReceiptRequest.id).limit(1)).scalar_one_or_none()


def ereceipts_of(payment_id):
    """The payment's e-receipts and red-flushes, oldest first, and whether a request still waits."""
    rows = db.session.execute(
        select(IssuedEReceipt).where(IssuedEReceipt.payment_id == payment_id).order_by(IssuedEReceipt.id)
    ).scalars().all()
    pending = db.session.execute(select(EReceiptRequest.id).where(
        EReceiptRequest.payment_id == payment_id, EReceiptRequest.status == EREQUEST_PENDING).limit(1)).first()
    return rows, pending is not None
