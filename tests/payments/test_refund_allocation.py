"""The allocation rule of payments.refunds: how a refund is shared out among a payment's violation lines."""
from types import SimpleNamespace

import pytest

from payments.refunds import AllocationError, allocate, balance, fee_shares


def payment(lines, fee=0, received=None, refunds=()):
    """A payment-shaped object: lines are (fine, late_fee); refunds are (status, amount, {item id: part})."""
    items = [SimpleNamespace(id=i + 1, fine=fine, late_fee=late, settled=True) for i, (fine, late) in enumerate(lines)]
    amount = sum(fine + late for fine, late in lines) + fee
    return SimpleNamespace(
        items=items, convenience_fee=fee, amount=amount,
        amount_received=amount if received is None else received,
        refunds=[
            SimpleNamespace(id=n + 1, status=status, amount=total, lines=[
                SimpleNamespace(payment_item_id=item_id, amount=part) for item_id, part in parts.items()])
            for n, (status, total, parts) in enumerate(refunds)
        ],
    )


# --- the service fee's shares ------------------------------------------------------------


@pytest.mark.parametrize("fee, amounts, shares", [
    (0, [100, 200], [0, 0]),
    (3, [100, 200], [1, 2]),
    (1, [100, 100], [1, 0]),  # a tie goes to the earlier line
    (2, [100, 100, 100], [1, 1, 0]),
    (10, [1, 1, 98], [0, 0, 10]),
    (377, [23000, 5750, 1], [302, 75, 0]),
])
def test_the_service_fee_is_split_in_proportion_and_adds_up_exactly(fee, amounts, shares):
    assert fee_shares(fee, amounts) == shares
    assert sum(fee_shares(fee, amounts)) == fee


def test_fee_shares_of_lines_with_nothing_to_pay_are_zero():
    assert fee_shares(50, [0, 0]) == [0, 0]
    assert fee_shares(50, []) == []


# --- an amount shared out in the stated order ---------------------------------------------


def test_an_amount_goes_beyond_the_amount_due_first_then_line_by_line_in_order():
    assert allocate(150, [100, 200], beyond_due=30) == ([100, 20], 30)
    assert allocate(20, [100, 200], beyond_due=30) == ([0, 0], 20)
    assert allocate(1, [100, 200]) == ([1, 0], 0)
    assert allocate(300, [100, 200]) == ([100, 200], 0)


def test_no_amount_takes_everything_that_is_left():
    assert allocate(None, [100, 0, 5], beyond_due=7) == ([100, 0, 5], 7)


@pytest.mark.parametrize("amount", [0, -1, 301])
def test_an_amount_that_is_not_positive_or_more_than_what_is_left_is_refused(amount):
    with pytest.raises(AllocationError):
        allocate(amount, [100, 200])


def test_nothing_left_refuses_even_the_whole_of_it():
    with pytest.raises(AllocationError):
        allocate(None, [0, 0])


# --- a payment's balance ------------------------------------------------------------------


def test_each_line_is_its_fine_late_fee_and_share_of_the_fee():
    ledger = balance(payment([(20000, 3000), (5000, 0)], fee=420))

    assert [line.fee_share for line in ledger.lines] == [345, 75]
    assert [line.due for line in ledger.lines] == [23345, 5075]
    assert sum(line.due for line in ledger.lines) == ledger.received
    assert ledger.refundable == ledger.received


def test_pending_refunds_count_against_what_is_left_but_not_as_refunded():
    ledger = balance(payment([(5000, 0), (3000, 0)], refunds=[
        ("succeeded", 1000, {1: 1000}), ("pending", 3000, {2: 3000}), ("failed", 4000, {1: 4000}),
    ]))

    first, second = ledger.lines
    assert (first.refunded, first.committed, first.refundable, first.net) == (1000, 1000, 4000, 4000)
    assert (second.refunded, second.committed, second.refundable, second.net) == (0, 3000, 0, 3000)
    assert not second.refunded_in_full  # pending: the violation stays paid until the money went back
    assert ledger.refundable == 4000


def test_a_line_is_refunded_in_full_only_when_all_of_it_came_back():
    ledger = balance(payment([(5000, 0), (3000, 0)], refunds=[("succeeded", 4999, {1: 4999})]))
    assert [line.refunded_in_full for line in ledger.lines] == [False, False]

    ledger = balance(payment([(5000, 0), (3000, 0)], refunds=[("succeeded", 5000, {1: 5000})]))
    assert [line.refunded_in_full for line in ledger.lines] == [True, False]


def test_chosen_lines_are_refunded_in_full_and_nothing_else():
    ledger = balance(payment([(5000, 0), (3000, 0), (2000, 0)], received=10500))

    assert ledger.allocate(item_ids=[2]) == ({2: 3000}, 0)
    assert ledger.allocate(2500, item_ids=[3, 1]) == ({1: 2500}, 0)  # shared out in the payment's order
    with pytest.raises(AllocationError):
        ledger.allocate(5001, item_ids=[1])
    with pytest.raises(AllocationError):
        ledger.allocate(item_ids=[99])  # not a line of this payment


def test_an_amount_alone_takes_the_money_captured_beyond_the_amount_due_first():
    ledger = balance(payment([(5000, 0), (3000, 0)], received=8500))

    assert ledger.beyond_due == 500
    assert ledger.allocate(1000) == ({1: 500}, 500)
    assert ledger.allocate(item_ids=[2], beyond_due=True) == ({2: 3000}, 500)  # the automatic surplus refund


def test_a_refund_from_before_allocation_is_read_in_the_stated_order():
    ledger = balance(payment([(5000, 0), (3000, 0)], received=8200, refunds=[("succeeded", 5700, {})]))

    assert ledger.beyond_due_refundable == 0
    assert [line.refunded for line in ledger.lines] == [5000, 500]
    assert ledger.refundable == 2500
