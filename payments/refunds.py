"""How refunds are shared out among a payment's violation lines.

Every minor unit a payment captured belongs to one line (a PaymentItem: its
fine, its late fee and its share of the service fee) or, if the gateway
captured more than was due, to that surplus, which belongs to no violation.

The service fee (CONVENIENCE_FEE_BPS) is split across the lines in proportion
to their fine + late fee, by largest remainder, so that the shares add up to
the fee exactly. A line refunded in full therefore gives back its part of the
fee with it: nobody pays a service fee for a fine that ends up not paid.

A refund is allocated either to the lines a supervisor chose or, for an
amount alone, in the stated order: first any money captured beyond the amount
due, then line by line in the payment's order (the order of the receipt, top
first), each line up to what is left of it before the next. A violation is
owed again only once its whole line has been refunded (succeeded refunds).
"""
from dataclasses import dataclass

from payments import states
from payments.models import REFUND_COMMITTED, REFUND_SUCCEEDED


class AllocationError(ValueError):
    """A refund that cannot be allocated: nothing chosen, or more than what is left."""


def fee_shares(fee, amounts):
    """Split ``fee`` across lines in proportion to ``amounts``; the shares add up to ``fee`` exactly.

    Largest remainder: each line gets the floor of its exact share, and the
    units left over go to the lines with the largest remainders (the earlier
    line on a tie), so the split is the same every time it is computed.
    """
    total = sum(amounts)
    if fee <= 0 or total <= 0:
        return [0] * len(amounts)
    exact = [fee * amount for amount in amounts]
    shares = [part // total for part in exact]
    left = fee - sum(shares)
    for index in sorted(range(len(amounts)), key=lambda i: (-(exact[i] % total), i))[:left]:
        shares[index] += 1
    return shares


def allocate(amount, open_amounts, beyond_due=0):
    """Share ``amount`` out: ``beyond_due`` first, then each line in order up to what is left of it.

    ``open_amounts`` lists what is left to refund on each line, in order.
    Returns (the part for each line, the part of ``beyond_due``). ``amount``
    None takes everything that is left. Raises AllocationError for an amount
    that is not positive or is more than what is left.
    """
    available = beyond_due + sum(open_amounts)
    if amount is None:
        amount = available
    if amount <= 0 or amount > available:
        raise AllocationError(amount)
    from_beyond = min(amount, beyond_due)
    rest = amount - from_beyond
    parts = []
    for open_amount in open_amounts:
        part = min(rest, open_amount)
        parts.append(part)
        rest -= part
    return parts, from_beyond


@dataclass
class Line:
    """One violation line of a payment and what has gone back for it."""

    item: object  # PaymentItem
    fee_share: int
    refunded: int = 0  # by succeeded refunds
    committed: int = 0  # by succeeded and pending refunds

    @property
    def due(self):
        """What the driver paid for this line: fine, late fee and its share of the service fee."""
        return self.item.fine + self.item.late_fee + self.fee_share

    @property
    def refundable(self):
        """What can still be refunded on this line (pending refunds count as sent)."""
        return max(0, self.due - self.committed)

    @property
    def net(self):
        """What the driver has paid for this line, net of succeeded refunds."""
        return self.due - self.refunded

    @property
    def refunded_in_full(self):
        """Whether succeeded refunds gave back the whole line (then the violation is owed again)."""
        return self.due > 0 and self.refunded >= self.due


@dataclass
class Balance:
    """A payment's lines, the money captured beyond the amount due, and what went back of each."""

    lines: list
    received: int
    beyond_due: int
    beyond_due_committed: int = 0

    @property
    def beyond_due_refundable(self):
        """Money captured beyond the amount due that is not refunded or being refunded."""
        return max(0, self.beyond_due - self.beyond_due_committed)

    @property
    def refundable(self):
        """Everything that can still be refunded."""
        return self.beyond_due_refundable + sum(line.refundable for line in self.lines)

    def line_for(self, item_id):
        """The line of this payment item, or None."""
        return next((line for line in self.lines if line.item.id == item_id), None)

    def allocate(self, amount=None, item_ids=None, beyond_due=None):
        """Allocate a new refund; returns ({item id: part}, part beyond the amount due).

        ``item_ids``: the chosen lines (None: every line, after the money
        captured beyond the amount due, the stated order). ``beyond_due``
        overrides whether that money is included. ``amount`` None takes all
        that is left of what was chosen.
        """
        if item_ids is None:
            chosen, beyond_due = self.lines, True if beyond_due is None else beyond_due
        else:
            wanted = set(item_ids)
            chosen = [line for line in self.lines if line.item.id in wanted]
            if len(chosen) != len(wanted):
                raise AllocationError(item_ids)
        parts, from_beyond = allocate(amount, [line.refundable for line in chosen],
                                      self.beyond_due_refundable if beyond_due else 0)
        return {line.item.id: part for line, part in zip(chosen, parts, strict=True) if part}, from_beyond


def balance(payment):
    """The payment's lines with what succeeded and pending refunds allocated to each.

    A refund made before refunds were allocated has no lines: it is read as
    an amount-only refund is allocated today (the stated order).
    """
    items = list(payment.items)
    shares = fee_shares(payment.convenience_fee, [item.fine + item.late_fee for item in items])
    lines = [Line(item, share) for item, share in zip(items, shares, strict=True)]
    by_item = {line.item.id: line for line in lines}
    received = payment.amount_received or 0
    result = Balance(lines=lines, received=received, beyond_due=max(0, received - payment.amount) if received else 0)
    for refund in sorted(payment.refunds, key=lambda r: r.id or 0):
        if refund.status not in REFUND_COMMITTED:
            continue
        succeeded = refund.status == REFUND_SUCCEEDED
        allocated = 0
        for part in refund.lines:
            line = by_item.get(part.payment_item_id)
            if line is not None:
                _add(line, part.amount, succeeded)
                allocated += part.amount
        unallocated = refund.amount - allocated
        if unallocated > 0:
            from_beyond = min(unallocated, result.beyond_due_refundable)
            result.beyond_due_committed += from_beyond
            rest = unallocated - from_beyond
            for line in lines:
                part = min(rest, line.refundable)
                _add(line, part, succeeded)
                rest -= part
    return result


def open_to_refund(payment, ledger):
    """(what can still be refunded, the part of it captured beyond the amount due): nothing unless it succeeded."""
    if payment.status != states.SUCCEEDED:
        return 0, 0
    return ledger.refundable, ledger.beyond_due_refundable


def _add(line, amount, succeeded):
    line.committed += amount
    if succeeded:
        line.refunded += amount
