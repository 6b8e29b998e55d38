"""FinePay running with PAYMENT_GATEWAY=stripe against a real localstripe: the API end to end,
and a signed webhook that localstripe itself delivers to the running app."""
import re
import time
import uuid

import pytest
import requests

from finepay.extensions import db
from payments import states
from payments.models import Payment, WebhookEvent
from tests.factories import make_violation
from tests.live import app_on_copy, serving
from tests.payments.test_stripe_gateway import (
    API_KEY,
    DECLINING_CARD,
    THREE_D_SECURE_CARD,
    WEBHOOK_SECRET,
    card_payment_method,
    gateway_config,
)

VEHICLE = {"plate": "蒙B12345", "vin_last6": "A12345"}


@pytest.fixture
def stripe_app(localstripe, sqlite_template, tmp_path):
    """FinePay on SQLite with the stripe gateway pointed at localstripe, served on 127.0.0.1."""
    app = app_on_copy(sqlite_template, tmp_path, PAYMENT_GATEWAY="stripe", **gateway_config(localstripe))
    with serving(app) as base:
        requests.post(f"{localstripe}/_config/webhooks/finepay", timeout=5, data=[
            ("url", f"{base}/webhooks/stripe"), ("secret", WEBHOOK_SECRET),
            ("events[]", "payment_intent.succeeded"), ("events[]", "payment_intent.payment_failed"),
        ]).raise_for_status()
        with app.app_context():
            yield app, base
            db.session.remove()
        requests.delete(f"{localstripe}/_config/webhooks", timeout=5).raise_for_status()


def create_payment(base, violation_ids):
    response = requests.post(f"{base}/api/v1/payments", timeout=10, json={**VEHICLE, "violation_ids": violation_ids},
                             headers={"Idempotency-Key": str(uuid.uuid4())})
    assert response.status_code == 201, response.text
    return response.json()


def test_pay_through_the_api_with_the_stripe_gateway(stripe_app):
    app, base = stripe_app
    violation = make_violation(fine=20000)

    payment = create_payment(base, [violation.id])
    assert payment["gateway"] == "stripe"
    assert payment["client_secret"] and payment["publishable_key"] == "pk_test_finepay"

    confirmed = requests.post(f"{base}/api/v1/payments/{payment['id']}/confirm", timeout=10,
                              json={"payment_method": "pm_card_visa"}).json()

    assert confirmed["status"] == "succeeded"
    assert confirmed["receipt_number"]
    receipt = requests.get(f"{base}/api/v1/receipts/{confirmed['receipt_number']}", timeout=10).json()
    assert receipt["amount"] == payment["amount"]


def test_the_pay_page_draws_stripes_card_field_and_serves_its_script(stripe_app):
    app, base = stripe_app
    payment = create_payment(base, [make_violation(fine=20000).id])

    page = requests.get(f"{base}/pay/{payment['id']}", timeout=10)

    assert page.status_code == 200
    assert 'id="card-payment"' in page.text and 'data-publishable-key="pk_test_finepay"' in page.text
    assert f'data-client-secret="{payment["client_secret"]}"' in page.text
    assert '<script src="https://js.stripe.com/v3/"></script>' in page.text
    assert "sandbox-methods" not in page.text
    script = re.search(r'<script src="(/[^"]*pay-stripe\.js)"></script>', page.text).group(1)
    assert "Stripe(box.dataset.publishableKey)" in requests.get(base + script, timeout=10).text


def test_a_declined_card_is_explained_in_drivers_words(stripe_app, localstripe):
    app, base = stripe_app
    violation = make_violation()
    payment = create_payment(base, [violation.id])

    result = requests.post(f"{base}/api/v1/payments/{payment['id']}/confirm", timeout=10,
                           json={"payment_method": card_payment_method(localstripe, DECLINING_CARD)}).json()

    assert result["status"] == "failed"
    assert "declined" in result["failure_message"]


def test_three_d_secure_completes_and_get_settles_it(stripe_app, localstripe):
    app, base = stripe_app
    violation = make_violation()
    payment = create_payment(base, [violation.id])

    pending = requests.post(f"{base}/api/v1/payments/{payment['id']}/confirm", timeout=10,
                            json={"payment_method": card_payment_method(localstripe, THREE_D_SECURE_CARD)}).json()
    assert pending["status"] == "requires_action"
    intent_id = db.session.get(Payment, payment["id"]).gateway_intent_id
    requests.post(f"{localstripe}/v1/payment_intents/{intent_id}/_authenticate", timeout=5, data={
        "client_secret": payment["client_secret"], "success": "true", "key": "pk_test_finepay",
    }).raise_for_status()

    assert requests.get(f"{base}/api/v1/payments/{payment['id']}", timeout=10).json()["status"] == "succeeded"


def test_webhook_from_localstripe_settles_a_payment_the_app_never_heard_about(stripe_app, localstripe):
    app, base = stripe_app
    violation = make_violation()
    payment = create_payment(base, [violation.id])
    intent_id = db.session.get(Payment, payment["id"]).gateway_intent_id
    # Confirmed at the gateway behind FinePay's back (a lost response): only the webhook tells.
    requests.post(f"{localstripe}/v1/payment_intents/{intent_id}", auth=(API_KEY, ""), timeout=5,
                  data={"payment_method": "pm_card_visa"}).raise_for_status()
    requests.post(f"{localstripe}/v1/payment_intents/{intent_id}/confirm", auth=(API_KEY, ""),
                  timeout=5).raise_for_status()

    deadline = time.monotonic() + 10
    status = None
    while time.monotonic() < deadline:
        db.session.expire_all()
        status = db.session.get(Payment, payment["id"]).status
        if status == states.SUCCEEDED:
            break
        time.sleep(0.2)

    assert status == states.SUCCEEDED, "localstripe's signed webhook did not settle the payment"
    assert db.session.query(WebhookEvent).filter_by(gateway="stripe").count() >= 1
    db.session.refresh(violation)
    assert violation.status == "paid"


def test_unsigned_webhook_to_the_running_app_is_refused(stripe_app):
    app, base = stripe_app

    response = requests.post(f"{base}/webhooks/stripe", timeout=5, data=b'{"id": "evt_x", "type": "payment_intent.succeeded"}',
                             headers={"Content-Type": "application/json"})

    assert response.status_code == 400
    assert response.json()["code"] == "bad_signature"
