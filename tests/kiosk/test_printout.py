"""The kiosk's printed receipt: the payee, 缴款方式 in words, the gateway's number, each line's amounts, the terminal."""
from html import unescape

import pytest
from sqlalchemy import select

from finepay.extensions import db
from finepay.formatting import format_money
from payments.gateways.sandbox import SandboxIntent
from payments.models import Payment
from tests.conftest import in_app_language, in_both_languages, translated
from tests.kiosk.helpers import enrol, pay, prove, simulate, start_visit, vehicle

AUTHORITY = "包头市公安局交通管理支队"


@pytest.fixture
def kiosk(client):
    """An enrolled kiosk."""
    return enrol(client, name="hall-2")


@in_both_languages
def test_the_printout_names_the_payee_the_method_the_gateways_number_the_lines_and_the_terminal(app, kiosk, client):
    ids = vehicle(fines=(20000, 10000), days_since_decision=40)  # overdue: each line carries a late fee
    headers = start_visit(client)
    assert prove(client, headers).status_code == 200
    pay(client, headers, ids)
    simulate(client, headers, "approve")
    payment = db.session.execute(select(Payment)).scalar_one()
    charge_id = db.session.get(SandboxIntent, payment.gateway_intent_id).charge_id

    html = unescape(client.get("/kiosk/api/receipt", headers=headers).get_json()["html"])
    printout = html.split('id="kiosk-receipt"')[1]
    facts = printout.split('class="kreceipt-facts"')[1].split("</dl>")[0]

    assert printout.split("</header>")[0].count(AUTHORITY) == 1
    assert translated(app, "Payee") in facts and f'id="payee">{AUTHORITY}<' in facts
    assert f'{translated(app, "Payment method")}</dt><dd id="paid-by">{translated(app, "Card (sandbox)")}<' in facts
    assert translated(app, "Paid") + "</dt>" not in facts  # 缴款方式, not 已缴
    assert f'id="transaction-number" class="ktxn">{charge_id}<' in facts
    assert translated(app, "Terminal") in facts and 'id="terminal-name">hall-2<' in facts
    with in_app_language(app):
        for item in payment.items:
            assert item.late_fee > 0
            assert format_money(item.fine) in printout and format_money(item.late_fee) in printout
            assert format_money(item.fine + item.late_fee) in printout
    assert printout.count(translated(app, "Net paid")) == len(ids)
    assert translated(app, "Collected by %(authority)s through FinePay. Questions about this payment: call %(hotline)s.",
                      authority=AUTHORITY, hotline="12122") in printout
