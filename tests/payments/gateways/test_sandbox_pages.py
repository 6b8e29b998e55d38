"""The sandbox's own pages: its test cards on the pay page, its bank's security check, its simulated reader."""
from payments.gateways import READER_SIMULATIONS, SURFACE_KIOSK, Payer, gateway_named
from payments.gateways.sandbox.adapter import PAGE_CHOICES, READER_OUTCOMES, TEST_METHODS
from tests.payments.helpers import create_ok, fresh_violation, payment_row


def test_the_pay_page_offers_the_test_cards_as_forms(client):
    payment = create_ok(client, [fresh_violation().id])

    html = client.get(f"/pay/{payment['id']}").get_data(as_text=True)

    assert 'id="sandbox-methods"' in html
    assert html.count(f'action="/pay/{payment["id"]}/confirm"') == len(PAGE_CHOICES) == 4
    assert "Sandbox: these are test cards. No real money moves." in html


def test_a_test_card_posted_from_the_page_pays_and_leads_to_the_receipt(client):
    payment = create_ok(client, [fresh_violation().id])

    response = client.post(f"/pay/{payment['id']}/confirm", data={"payment_method": "pm_card_visa"})

    assert response.status_code == 303 and response.headers["Location"] == f"/pay/{payment['id']}"
    assert client.get(response.headers["Location"]).headers["Location"].startswith("/receipts/")


def test_a_posted_method_the_sandbox_does_not_know_is_a_bad_request(client):
    payment = create_ok(client, [fresh_violation().id])

    response = client.post(f"/pay/{payment['id']}/confirm", data={"payment_method": "pm_card_stolen"})

    assert response.status_code == 400
    assert payment_row(payment["id"]).status == "created"


def test_every_choice_on_the_page_is_a_test_method():
    assert {method for method, _label in PAGE_CHOICES} <= set(TEST_METHODS)


def test_the_security_check_page_approves_and_returns_to_the_payment(client):
    payment = create_ok(client, [fresh_violation().id])
    challenged = client.post(f"/pay/{payment['id']}/confirm",
                             data={"payment_method": "pm_card_threeDSecure2Required"})
    intent_id = payment_row(payment["id"]).gateway_intent_id
    assert challenged.headers["Location"] == f"/sandbox/authenticate/{intent_id}"

    page = client.get(challenged.headers["Location"])
    approved = client.post(challenged.headers["Location"], data={"outcome": "approve"})

    assert page.status_code == 200 and 'id="approve"' in page.get_data(as_text=True)
    assert approved.status_code == 303 and approved.headers["Location"] == f"/pay/{payment['id']}"
    assert payment_row(payment["id"]).status == "succeeded"


def test_the_security_check_page_of_an_unknown_intent_is_a_problem_page(client):
    response = client.get("/sandbox/authenticate/si_nope")

    assert response.status_code == 404
    assert response.mimetype == "text/html"


def test_the_simulated_reader_understands_the_seams_words(app):
    assert set(READER_OUTCOMES) == set(READER_SIMULATIONS)
    action = gateway_named("sandbox").next_action(None, Payer(surface=SURFACE_KIOSK))
    assert action.fragment == "sandbox/reader.html"
