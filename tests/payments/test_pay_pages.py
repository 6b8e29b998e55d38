"""The driver's pages over HTTP, lookup → review → pay → receipt, in Chinese (the default) and in English."""
import re
from html import unescape

from finepay.formatting import format_money
from tests.conftest import in_app_language, in_both_languages, translated
from tests.payments.helpers import PLATE, VIN, expected_late_fee, overdue_violation


def text(response):
    """The page's HTML with entities decoded, so that expected catalogue text matches as written."""
    return unescape(response.get_data(as_text=True))


def hidden(page, name):
    """The values of the page's hidden inputs called ``name``."""
    return re.findall(rf'<input type="hidden" name="{name}" value="([^"]*)">', page)


def look_up(client):
    """POST the lookup form for the test vehicle: returns the results page."""
    response = client.post("/lookup", data={"plate": PLATE, "proof": "vin", "vin_last6": VIN})
    assert response.status_code == 200
    return text(response)


def open_payment(client, results):
    """Review every selected violation and continue: returns the payment page's response."""
    ids = re.findall(r'name="violation_id" value="(\d+)"', results)
    review = client.post("/pay/review", data={"vehicle": hidden(results, "vehicle")[0], "violation_id": ids})
    assert review.status_code == 200
    page = text(review)
    form = {"vehicle": hidden(page, "vehicle")[0], "idempotency_key": hidden(page, "idempotency_key")[0],
            "violation_id": hidden(page, "violation_id")}
    return review, client.post("/pay", data=form, follow_redirects=True)


def pay_with(client, pay_page, method):
    """Press the pay page's button for this sandbox card; returns the page the driver lands on."""
    (action,) = [action for action, form in re.findall(r'<form[^>]*action="([^"]+)"[^>]*>(.*?)</form>', pay_page, re.S)
                 if f'name="payment_method" value="{method}"' in form]
    return client.post(action, data={"payment_method": method}, follow_redirects=True)


@in_both_languages
def test_a_driver_looks_up_reviews_pays_and_gets_a_receipt_in_their_language(app, client):
    violation = overdue_violation(fine=20000)
    with in_app_language(app):
        total = format_money(violation.fine + expected_late_fee(violation))

    home = client.get("/")
    assert translated(app, "Look up and pay your traffic fines") in text(home)

    results = look_up(client)
    assert translated(app, "Review and pay the selected fines") in results
    assert total in results

    review, pay = open_payment(client, results)
    assert translated(app, "Review your payment") in text(review)
    assert translated(app, "Continue to payment: %(total)s", total=total) in text(review)
    assert pay.status_code == 200
    assert translated(app, "Pay your fines") in text(pay)
    assert translated(app, "Visa card that pays") in text(pay)

    receipt = pay_with(client, text(pay), "pm_card_visa")
    assert receipt.status_code == 200
    assert receipt.request.path.startswith("/receipts/FP-")
    page = text(receipt)
    assert translated(app, "Payment receipt") in page
    assert translated(app, "Total paid") in page and total in page
    assert translated(app, "Card (sandbox)") in page and translated(app, "Online payment") in page


@in_both_languages
def test_a_declined_card_is_explained_in_the_drivers_language_and_another_may_be_tried(app, client):
    overdue_violation(fine=20000)
    _review, pay = open_payment(client, look_up(client))

    failed = pay_with(client, text(pay), "pm_card_chargeDeclined")

    page = text(failed)
    assert failed.request.path == pay.request.path
    assert translated(app, "The payment did not go through") in page
    assert translated(app, "Your card was declined. Try another card, or ask your bank why.") in page
    assert translated(app, "Nothing was charged. You can try again below.") in page
    assert translated(app, "Visa card that pays") in page
