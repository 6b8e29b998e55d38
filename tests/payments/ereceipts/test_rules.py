"""The e-receipt rules that need no database: the standard's number formats, the sandbox's numbering and check
code, the retry backoff, and how a refund is shared over a line's fine and late fee (the red-flush allocation)."""
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest

from payments.ereceipt_requests import fiscal_items, retry_delay, split_refunded
from payments.ereceipts import (
    BLUE,
    ITEM_FINE,
    ITEM_LATE_FEE,
    RED,
    EReceipt,
    EReceiptError,
    EReceiptItem,
    check_ereceipt,
)
from payments.ereceipts.sandbox.adapter import check_code_for, code_for
from payments.refunds import Line, balance

ISSUED = datetime(2026, 11, 30, 15, 0, tzinfo=UTC)


def ereceipt(kind=BLUE, code="15060126", number="0000000001", check_code="a1b2c3", items=None, flushes=None):
    items = items or (EReceiptItem(ITEM_FINE, "N1", 20000 if kind == BLUE else -20000),)
    return EReceipt(kind=kind, code=code, number=number, check_code=check_code, issued_at=ISSUED, payer="蒙B12345",
                    authority="包头市公安局交通管理支队", currency="CNY", items=items, verification_url="/v",
                    flushes=flushes)


def test_an_ereceipt_with_the_standards_numbers_passes():
    assert check_ereceipt(ereceipt()).code == "15060126"
    assert check_ereceipt(ereceipt(RED, flushes=("15060126", "0000000001"))).amount == -20000


@pytest.mark.parametrize("fields", [
    {"code": "1506012"},  # 票据代码 is 8 digits
    {"code": "1506012A"},
    {"number": "000000001"},  # 票据号码 is 10 digits
    {"number": "00000000012"},
    {"check_code": "a1b2c"},  # 校验码 is 6 characters
    {"check_code": "a1b2c3d"},
    {"check_code": "a1b2-3"},
    {"items": (EReceiptItem(ITEM_FINE, "N1", -1),)},  # a blue e-receipt's lines are positive
    {"items": (EReceiptItem("service_fee", "N1", 100),)},  # the service fee is not a fiscal item
    {"kind": RED},  # a red-flush must name the e-receipt it cancels (and its lines are negative)
])
def test_an_ereceipt_that_breaks_the_standard_is_refused(fields):
    with pytest.raises(EReceiptError) as refused:
        check_ereceipt(ereceipt(**fields))
    assert refused.value.code == "ereceipt_malformed"


def test_the_sandbox_code_is_region_category_kind_and_year():
    assert code_for("15", 2026) == "15060126"
    assert code_for("11", 2030) == "11060130"


def test_the_check_code_is_six_hex_digits_that_change_with_number_and_amount_and_need_the_secret():
    code = check_code_for("secret", "15060126", "0000000001", 20000, ISSUED)
    assert len(code) == 6 and all(c in "0123456789abcdef" for c in code)
    assert code == check_code_for("secret", "15060126", "0000000001", 20000, ISSUED)
    others = {check_code_for("secret", "15060126", "0000000002", 20000, ISSUED),
              check_code_for("secret", "15060126", "0000000001", 20001, ISSUED),
              check_code_for("other", "15060126", "0000000001", 20000, ISSUED)}
    assert code not in others


def test_retries_wait_a_minute_then_double_up_to_an_hour():
    assert [retry_delay(n) for n in (1, 2, 3, 4)] == [timedelta(minutes=m) for m in (1, 2, 4, 8)]
    assert retry_delay(7) == timedelta(hours=1)
    assert retry_delay(50) == timedelta(hours=1)


def line(fine, late_fee, fee_share=0, refunded=0):
    return Line(SimpleNamespace(id=1, fine=fine, late_fee=late_fee, settled=True, violation_id=1), fee_share,
                refunded=refunded, committed=refunded)


@pytest.mark.parametrize("fine, late_fee, fee_share, refunded, left", [
    (20000, 0, 0, 0, (20000, 0)),
    (20000, 3000, 0, 23000, (0, 0)),  # refunded in full: nothing left
    (20000, 3000, 230, 23230, (0, 0)),  # with its service-fee share
    (20000, 5000, 0, 5000, (16000, 4000)),  # a fifth of the line goes back: a fifth of each
    (20000, 5000, 250, 2525, (18000, 4500)),  # the service fee's share takes its part too
    (100, 1, 0, 1, (99, 1)),  # the unit goes to the larger remainder
])
def test_a_refund_comes_off_a_lines_fine_and_late_fee_in_proportion(fine, late_fee, fee_share, refunded, left):
    assert split_refunded(line(fine, late_fee, fee_share, refunded)) == left


def payment(lines, refunds=(), fee=0, settled=None):
    items = [SimpleNamespace(id=i + 1, fine=fine, late_fee=late, violation_id=10 + i,
                             settled=True if settled is None else settled[i]) for i, (fine, late) in enumerate(lines)]
    amount = sum(fine + late for fine, late in lines) + fee
    return SimpleNamespace(items=items, convenience_fee=fee, amount=amount, amount_received=amount, refunds=[
        SimpleNamespace(id=n + 1, status="succeeded", amount=sum(parts.values()), lines=[
            SimpleNamespace(payment_item_id=item, amount=part) for item, part in parts.items()])
        for n, parts in enumerate(refunds)])


NOTICES = {10: "N10", 11: "N11", 12: "N12"}


def test_the_ereceipt_carries_each_settled_lines_fine_and_late_fee_but_not_the_service_fee():
    items = fiscal_items(balance(payment([(20000, 3000), (5000, 0)], fee=280)), NOTICES)
    assert items == (EReceiptItem(ITEM_FINE, "N10", 20000), EReceiptItem(ITEM_LATE_FEE, "N10", 3000),
                     EReceiptItem(ITEM_FINE, "N11", 5000))


def test_a_line_refunded_in_full_leaves_the_ereceipt_and_a_partly_refunded_one_shrinks():
    paid = payment([(20000, 3000), (5000, 0), (10000, 0)], refunds=[{2: 5000}, {3: 4000}])
    assert fiscal_items(balance(paid), NOTICES) == (
        EReceiptItem(ITEM_FINE, "N10", 20000), EReceiptItem(ITEM_LATE_FEE, "N10", 3000),
        EReceiptItem(ITEM_FINE, "N12", 6000))


def test_a_line_this_payment_did_not_settle_is_not_on_its_ereceipt():
    paid = payment([(20000, 0), (5000, 0)], settled=[True, False])
    assert fiscal_items(balance(paid), NOTICES) == (EReceiptItem(ITEM_FINE, "N10", 20000),)
