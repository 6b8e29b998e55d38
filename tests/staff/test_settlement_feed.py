"""API keys (created, shown once, hashed, revocable) and the settlement feed they open."""
import re

import pytest
from sqlalchemy import select

from finepay.extensions import db
from staff import services
from staff.models import ApiKey
from tests.staff.helpers import last_audit, make_supervisor, paid_payment, sign_in_as
from violations.models import Violation


@pytest.fixture
def supervisor(client):
    return sign_in_as(client, make_supervisor("keymaster"))


@pytest.fixture
def api_key(app):
    return services.create_api_key("authority system", "test")[1]


def feed(client, key, **query):
    return client.get("/api/v1/settlements", query_string=query, headers={"X-API-Key": key})


def test_a_key_is_shown_once_and_stored_as_a_hash(supervisor):
    response = supervisor.post("/staff/keys", data={"name": "Authority system"})

    page = response.get_data(as_text=True)
    raw = re.search(r'id="new-key-value">(fpk_[^<]+)<', page).group(1)
    stored = db.session.execute(select(ApiKey)).scalar_one()
    assert stored.key_hash == services.hash_api_key(raw)
    assert raw not in stored.key_hash and stored.prefix in raw
    assert raw not in supervisor.get("/staff/keys").get_data(as_text=True)
    assert last_audit("api_key.created").actor == "staff:keymaster"
    assert raw not in str(last_audit("api_key.created").details)


def test_a_revoked_key_stops_working(supervisor, client):
    page = supervisor.post("/staff/keys", data={"name": "Authority system"}).get_data(as_text=True)
    raw = re.search(r'id="new-key-value">(fpk_[^<]+)<', page).group(1)
    key_id = db.session.execute(select(ApiKey.id)).scalar_one()
    assert feed(client, raw).status_code == 200

    response = supervisor.post(f"/staff/keys/{key_id}/revoke")

    assert response.status_code == 303
    assert feed(client, raw).status_code == 401
    assert "revoked" in supervisor.get("/staff/keys").get_data(as_text=True)
    assert last_audit("api_key.revoked").actor == "staff:keymaster"


def test_a_key_needs_a_name(supervisor):
    response = supervisor.post("/staff/keys", data={"name": ""})

    assert response.status_code == 422
    assert 'id="name-error"' in response.get_data(as_text=True)
    assert db.session.execute(select(ApiKey)).first() is None


def test_the_feed_lists_settled_then_refunded_violations_in_order(client, api_key):
    first, v1 = paid_payment(fine=20000)
    second, v2 = paid_payment(fine=10000)
    from payments.services import refund_payment
    refund_payment(first.id, first.amount_received, reason="appeal upheld", actor="staff:x",
                   idempotency_key=f"{first.id}:test")

    body = feed(client, api_key).get_json()

    events = [(e["event"], e["violation_id"]) for e in body["events"]]
    assert events == [("settled", v1.id), ("settled", v2.id), ("refunded", v1.id)]
    settled = body["events"][0]
    assert settled["notice_number"] == v1.notice_number
    assert settled["receipt_number"] == first.receipt_number
    assert settled["amount"] == settled["fine"] + settled["late_fee"] == 23000
    assert settled["currency"] == "CNY" and settled["payment_id"] == first.id
    cursors = [int(e["cursor"]) for e in body["events"]]
    assert cursors == sorted(cursors)
    assert body["has_more"] is False
    assert feed(client, api_key, after=body["next_cursor"]).get_json()["events"] == []


def test_the_feed_pages_with_its_cursor_and_never_repeats(client, api_key):
    violations = [paid_payment(fine=1000 * (n + 1))[1].id for n in range(4)]

    seen, cursor, pages = [], "0", 0
    while True:
        body = feed(client, api_key, after=cursor, limit=2).get_json()
        seen += [e["violation_id"] for e in body["events"]]
        cursor, pages = body["next_cursor"], pages + 1
        if not body["has_more"]:
            break
        assert pages < 50

    assert seen == violations
    later = paid_payment(fine=777)[1].id
    assert [e["violation_id"] for e in feed(client, api_key, after=cursor).get_json()["events"]] == [later]


@pytest.mark.parametrize("query", [{"after": "abc"}, {"after": "-1"}, {"limit": 0}, {"limit": 501}, {"limit": "x"},
                                   {"after": "9" * 30}])
def test_bad_cursors_and_limits_are_422(client, api_key, query):
    response = feed(client, api_key, **query)

    assert response.status_code == 422
    assert response.get_json()["code"] == "invalid_input"


def test_a_voided_or_unpaid_violation_is_not_in_the_feed(client, api_key, app):
    from tests.payments.helpers import overdue_violation
    violation = overdue_violation()
    services.void_violation(violation.id, reason="withdrawn on appeal", actor_name="staff:x")

    assert feed(client, api_key).get_json()["events"] == []
    assert db.session.get(Violation, violation.id).status == "void"
