"""A kiosk's card reader when several gateways run: the payment goes to the one with readers, whatever the order."""
import pytest
from sqlalchemy import select

from finepay.extensions import db
from payments.models import Payment
from tests.kiosk.helpers import enrol, pay, prove, start_visit, vehicle


@pytest.fixture
def app_config():
    """Stripe first (no card reader set up here), then the sandbox with its simulated reader."""
    return {"PAYMENT_GATEWAYS": "stripe,sandbox", "STRIPE_API_KEY": "sk_test_unused",
            "STRIPE_PUBLISHABLE_KEY": "pk_test_unused"}


def test_a_kiosk_payment_goes_to_the_gateway_with_card_readers(client):
    enrol(client)
    ids = vehicle()
    headers = start_visit(client)
    prove(client, headers)

    response = pay(client, headers, ids)

    assert response.status_code == 201
    assert response.get_json()["screen"] == "reader"
    assert db.session.execute(select(Payment.gateway)).scalar_one() == "sandbox"
