"""What a receipt carries for reimbursement: the payee, the method in words, the gateway's number, each line's amounts."""
from html import unescape

import pytest

from finepay.formatting import format_money
from payments import receipts
from payments.gateways import gateway_named
from tests.conftest import in_app_language, in_both_languages, translated
from tests.payments.helpers import confirm, create_ok, overdue_violation, payment_row, sandbox_intents, set_payment

AUTHORITY = "包头市公安局交通管理支队"


def paid(client, *violations):
    """Pay these violations with the sandbox's test card; returns the stored payment."""
    payment = create_ok(client, [v.id for v in violations])
    assert confirm(client, payment["id"]).status_code == 200
    return payment_row(payment["id"])


@in_both_languages
def test_the_receipt_names_the_payee_the_method_the_gateways_number_and_each_lines_amounts(app, client):
    first, second = overdue_violation(fine=20000), overdue_violation(fine=5000)
    payment = paid(client, first, second)
    (intent,) = sandbox_intents(id=payment.gateway_intent_id)

    html = unescape(client.get(f"/receipts/{payment.receipt_number}").get_data(as_text=True))
    facts = html.split('class="receipt-facts"')[1].split("</dl>")[0]

    assert translated(app, "Payee") in facts and f'id="payee">{AUTHORITY}<' in facts
    assert translated(app, "Payment method") in facts
    assert f'id="paid-by">{translated(app, "Card (sandbox)")}<' in facts
    assert f'id="paid-through">{translated(app, "Online payment")}<' in facts
    assert translated(app, "Transaction number") in facts
    assert f'id="transaction-number" class="txn">{intent.charge_id}<' in facts
    notices = {first.id: first.notice_number, second.id: second.notice_number}
    with in_app_language(app):
        for item in payment.items:
            row = html.split(notices[item.violation_id], 1)[1].split("</tr>")[0]
            assert item.late_fee > 0
            assert f'data-label="{translated(app, "Fine")}">{format_money(item.fine)}<' in row
            assert f'data-label="{translated(app, "Late fee")}">{format_money(item.late_fee)}<' in row
            assert f'data-label="{translated(app, "Net paid")}">{format_money(item.fine + item.late_fee)}<' in row
    assert translated(app, "Collected by %(authority)s through FinePay. Questions about this payment: call %(hotline)s.",
                      authority=AUTHORITY, hotline="12122") in html


def test_the_receipts_transaction_number_is_the_gateways_charge_else_its_intent(app, client):
    payment = paid(client, overdue_violation())
    (intent,) = sandbox_intents(id=payment.gateway_intent_id)

    kept = receipts.get_receipt(payment.receipt_number)
    set_payment(payment.id, gateway_charge_id=None)  # settled before the charge id was kept
    older = receipts.get_receipt(payment.receipt_number)

    assert kept["transaction_number"] == intent.charge_id and intent.charge_id.startswith("sch_")
    assert older["transaction_number"] == payment.gateway_intent_id


def test_the_method_is_the_gateways_label_or_its_name_once_it_is_gone(app):
    with in_app_language(app):
        assert receipts.payment_method("sandbox") == gateway_named("sandbox").label
        assert receipts.payment_method("retired") == "retired"


@in_both_languages
def test_the_gateways_order_is_named_after_the_authority_not_fine_pay(app, client, monkeypatch):
    gateway = gateway_named("sandbox")
    create_intent = gateway.create_intent
    seen = []

    def recording(**arguments):
        seen.append(arguments["description"])
        return create_intent(**arguments)

    monkeypatch.setattr(gateway, "create_intent", recording)
    create_ok(client, [overdue_violation().id])

    assert seen == [translated(app, "%(authority)s traffic fine", authority=AUTHORITY)]
    assert "FinePay" not in seen[0]


@in_both_languages
def test_the_sandbox_bank_asks_to_approve_a_payment_to_the_authority(app, client):
    payment = create_ok(client, [overdue_violation().id])
    challenged = client.post(f"/pay/{payment['id']}/confirm", data={"payment_method": "pm_card_threeDSecure2Required"})

    html = unescape(client.get(challenged.headers["Location"]).get_data(as_text=True))

    with in_app_language(app):
        amount = format_money(payment_row(payment["id"]).amount)
    assert translated(app, "Approve the payment of %(amount)s to %(payee)s?", amount=amount, payee=AUTHORITY) in html


@pytest.mark.parametrize("app_config", [{"SERVICE_HOTLINE": ""}])
def test_without_a_hotline_the_receipt_names_who_collected_and_no_number(app, client):
    payment = paid(client, overdue_violation())

    html = unescape(client.get(f"/receipts/{payment.receipt_number}").get_data(as_text=True))

    assert translated(app, "Collected by %(authority)s through FinePay.", authority=AUTHORITY) in html
    assert 'href="tel:' not in html
