"""Every staff route and staff API, walked as anonymous, clerk and supervisor."""
import pytest

from finepay.extensions import db
from kiosk.services import enrol_terminal
from staff import services
from tests.payments.helpers import overdue_violation
from tests.staff.helpers import make_supervisor, make_user, paid_payment, sign_in_as

ANONYMOUS, CLERK, SUPERVISOR = "anonymous", "clerk", "supervisor"


@pytest.fixture
def world(app):
    """One of everything a console route can be about."""
    clerk = make_user("clerk1")
    supervisor = make_supervisor("super1")
    payment, violation = paid_payment()
    unpaid = overdue_violation()
    enrol_terminal("hall-1", "test")
    key, raw = services.create_api_key("upstream", "test")
    return {
        "clerk": clerk, "supervisor": supervisor, "payment": payment.id, "violation": violation.id,
        "unpaid": unpaid.id, "key_id": key.id, "key": raw, "clerk_id": clerk.id,
    }


# (method, path template, who may use it, form data)
ROUTES = [
    ("GET", "/staff/", CLERK, None),
    ("GET", "/staff/search", CLERK, None),
    ("GET", "/staff/search?q=蒙B12345", CLERK, None),
    ("GET", "/staff/payments/{payment}", CLERK, None),
    ("GET", "/staff/violations/{violation}", CLERK, None),
    ("GET", "/staff/reconciliation", CLERK, None),
    ("GET", "/staff/reconciliation?start=2026-11-01&end=2026-11-02&only=gateway_only", CLERK, None),
    ("GET", "/staff/reconciliation.csv", CLERK, None),
    ("GET", "/staff/reconciliation.csv?start=2026-11-01&end=2026-11-02", CLERK, None),
    ("POST", "/staff/reconciliation/fetch", CLERK, {"start": "2026-11-01", "end": "2026-11-01"}),
    ("GET", "/staff/imports", CLERK, None),
    ("POST", "/staff/imports", CLERK, {}),
    ("POST", "/staff/imports/{fake_token}/apply", CLERK, {}),
    ("GET", "/staff/terminals", CLERK, None),
    ("GET", "/staff/audit", CLERK, None),
    ("GET", "/staff/audit?action=payment&subject=payment", CLERK, None),
    ("POST", "/staff/payments/{payment}/refund/review", SUPERVISOR, {"amount": "1.00", "reason": "route walk review",
                                                                   "form_key": "1" * 32}),
    ("POST", "/staff/payments/{payment}/refund", SUPERVISOR, {"amount": "1.00", "reason": "route walk refund",
                                                            "form_key": "0" * 32}),
    ("POST", "/staff/violations/{unpaid}/void", SUPERVISOR, {"reason": "route walk void"}),
    ("POST", "/staff/terminals", SUPERVISOR, {"name": "hall-2"}),
    ("POST", "/staff/terminals/hall-1/revoke", SUPERVISOR, {}),
    ("GET", "/staff/keys", SUPERVISOR, None),
    ("POST", "/staff/keys", SUPERVISOR, {"name": "another system"}),
    ("POST", "/staff/keys/{key_id}/revoke", SUPERVISOR, {}),
    ("GET", "/staff/users", SUPERVISOR, None),
    ("POST", "/staff/users", SUPERVISOR, {"username": "newbie", "role": "clerk", "password": "long enough password"}),
    ("POST", "/staff/users/{clerk_id}", SUPERVISOR, {"role": "clerk", "active": "y"}),
    ("POST", "/staff/logout", CLERK, {}),
]
ALLOWED = {"GET": {200}, "POST": {200, 303, 404, 413, 422}}


def client_as(app, world, who):
    client = app.test_client()
    if who != ANONYMOUS:
        sign_in_as(client, world[who])
    return client


@pytest.mark.parametrize("who", [ANONYMOUS, CLERK, SUPERVISOR])
def test_every_staff_route_answers_as_the_role_allows(app, world, who):
    answers = []
    for method, template, needs, data in ROUTES:
        path = template.format(fake_token="f" * 32, **world)
        client = client_as(app, world, who)  # afresh: some routes sign out or change things
        response = client.open(path, method=method, data=data)
        response.get_data()  # a streamed CSV runs to its end
        answers.append((method, path, response.status_code, response.headers.get("Location")))
        label = f"{who} {method} {path} -> {response.status_code}"
        if who == ANONYMOUS:
            assert response.status_code == 302, label
            assert response.headers["Location"].startswith("/staff/login"), label
            if method == "GET":
                assert "next=" in response.headers["Location"], label
        elif who == CLERK and needs == SUPERVISOR:
            assert response.status_code == 403, label
            assert "Only a supervisor" in response.get_data(as_text=True), label
        else:
            assert response.status_code in ALLOWED[method], label
            assert response.headers.get("X-Frame-Options") == "DENY", label
    print("\n".join(f"{who:10} {m:4} {p} -> {s} {loc or ''}" for m, p, s, loc in answers))


def test_the_sign_in_page_is_open_to_everyone(client):
    response = client.get("/staff/login")

    assert response.status_code == 200
    assert "Sign in to the staff console" in response.get_data(as_text=True)
    assert response.headers["Cache-Control"] == "no-store"
    assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]


def test_clerks_see_no_supervisor_controls(app, world):
    client = client_as(app, world, CLERK)

    payment_page = client.get(f"/staff/payments/{world['payment']}").get_data(as_text=True)
    violation_page = client.get(f"/staff/violations/{world['unpaid']}").get_data(as_text=True)
    nav = client.get("/staff/").get_data(as_text=True)

    assert 'id="refund-form"' not in payment_page and "Only a supervisor can refund." in payment_page
    assert 'id="void-button"' not in violation_page
    assert "/staff/keys" not in nav and "/staff/users" not in nav


def test_unknown_console_pages_and_ids_are_404(app, world):
    client = client_as(app, world, SUPERVISOR)

    assert client.get("/staff/nowhere").status_code == 404
    for path in ("/staff/payments/pay_missing", "/staff/violations/999999", "/staff/payments/" + "x" * 500):
        response = client.get(path)
        assert response.status_code == 404, path
        assert 'id="staff-error"' in response.get_data(as_text=True), path


@pytest.mark.parametrize("who", [ANONYMOUS, CLERK, SUPERVISOR])
def test_the_settlement_feed_wants_an_api_key_not_a_session(app, world, who):
    client = client_as(app, world, who)

    without = client.get("/api/v1/settlements")
    wrong = client.get("/api/v1/settlements", headers={"X-API-Key": "fpk_00000000_nope"})
    right = client.get("/api/v1/settlements", headers={"X-API-Key": world["key"]})

    assert without.status_code == wrong.status_code == 401
    assert without.get_json()["code"] == "unauthorized"
    assert "X-API-Key" in without.get_json()["message"]
    assert right.status_code == 200


def test_the_settlement_feed_is_in_the_openapi_document(client):
    spec = client.get("/api/openapi.json").get_json()

    assert "/api/v1/settlements" in spec["paths"]
    assert spec["components"]["securitySchemes"]["ApiKeyAuth"] == {"type": "apiKey", "in": "header",
                                                                  "name": "X-API-Key"}
    db.session.rollback()
