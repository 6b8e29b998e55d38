"""The receipt page for a driver: refunded receipts say so over their net lines, a wrong number is "not found"."""
from html import unescape

from finepay.extensions import db
from finepay.formatting import format_money
from payments import services
from payments.models import Payment
from tests.conftest import in_app_language, in_both_languages, translated
from tests.payments.helpers import confirm, create_ok, fresh_violation


def page(client, receipt_number):
    response = client.get(f"/receipts/{receipt_number}")
    return response.status_code, unescape(response.get_data(as_text=True))


def paid(client, *fines):
    violations = [fresh_violation(fine=fine) for fine in fines]
    return confirm(client, create_ok(client, [v.id for v in violations])["id"]).get_json(), violations


@in_both_languages
def test_a_partly_refunded_receipt_shows_each_lines_net_under_a_refunded_heading(app, client):
    payment, (kept, returned) = paid(client, 20000, 5000)
    item = next(i.id for i in db.session.get(Payment, payment["id"]).items if i.violation_id == returned.id)
    services.refund_payment(payment["id"], item_ids=[item], reason="appeal upheld", actor="staff:x")

    status, text = page(client, payment["receipt_number"])

    assert status == 200
    assert f'<h1 id="receipt-heading">{translated(app, "Payment receipt: partly refunded")}</h1>' in text
    with in_app_language(app):
        net_cell = f'<td class="num line-net" data-label="{translated(app, "Net paid")}">'
        assert net_cell + format_money(0) + "<" in text  # the refunded line
        assert net_cell + format_money(kept.fine) + "<" in text  # the line that stays paid
        assert f'id="receipt-net">{format_money(kept.fine)}<' in text
    assert translated(app, "Net paid after refunds") in text


@in_both_languages
def test_a_receipt_refunded_in_full_says_so_in_its_heading(app, client):
    payment, _violations = paid(client, 20000)
    services.refund_payment(payment["id"], amount=payment["amount"], reason="appeal upheld", actor="staff:x")

    _status, text = page(client, payment["receipt_number"])

    assert f'<h1 id="receipt-heading">{translated(app, "Payment receipt: refunded in full")}</h1>' in text


@in_both_languages
def test_a_receipt_without_refunds_keeps_its_plain_heading(app, client):
    payment, _violations = paid(client, 20000)

    _status, text = page(client, payment["receipt_number"])

    assert f'<h1 id="receipt-heading">{translated(app, "Payment receipt")}</h1>' in text


@in_both_languages
def test_a_bad_receipt_number_gets_receipt_not_found_not_the_payment_problem(app, client):
    for number in ("FP-NOSUCHRECEIPT", "x" * 40):
        status, text = page(client, number)

        assert status == 404
        assert translated(app, "Receipt not found") in text
        assert translated(app, "The payment cannot continue") not in text
