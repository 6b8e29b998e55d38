"""The kiosk's printout carries the official e-receipt with its verification QR code, or says it is on its way."""
from html import unescape

import pytest
from sqlalchemy import select

from finepay.extensions import db
from payments.models import IssuedEReceipt
from tests.conftest import in_both_languages, translated
from tests.kiosk.helpers import enrol, pay, prove, simulate, start_visit, vehicle


@pytest.fixture
def kiosk(client):
    """An enrolled kiosk."""
    return enrol(client, name="hall-2")


def printout_after_paying(client):
    ids = vehicle(fines=(20000,), days_since_decision=1)
    headers = start_visit(client)
    assert prove(client, headers).status_code == 200
    pay(client, headers, ids)
    simulate(client, headers, "approve")
    html = unescape(client.get("/kiosk/api/receipt", headers=headers).get_json()["html"])
    return html.split('id="kiosk-receipt"')[1]


@in_both_languages
def test_the_printout_carries_the_ereceipts_numbers_and_its_qr_code(app, kiosk, client):
    printout = printout_after_paying(client)

    ereceipt = db.session.execute(select(IssuedEReceipt)).scalar_one()
    assert translated(app, "Official e-receipt") in printout
    assert f'id="ereceipt-code">{ereceipt.code}<' in printout
    assert f'id="ereceipt-number">{ereceipt.number}<' in printout
    assert f'id="ereceipt-check-code">{ereceipt.check_code}<' in printout
    assert printout.count("<svg") == 2  # the online copy's QR code and the e-receipt's verification


@pytest.mark.parametrize("app_config", [{"ERECEIPT_SANDBOX_DOWN": True}])
def test_a_printout_made_while_the_ereceipt_service_is_down_says_it_is_on_its_way(app, kiosk, client):
    printout = printout_after_paying(client)

    assert 'id="ereceipt-pending"' in printout
    assert translated(app, "Your payment is complete. The official e-receipt is on its way: it appears here as soon "
                           "as the e-receipt service issues it.") in printout
