"""Refusals of unauthenticated requests are counted per source and minute, not written one entry each."""
import uuid
from datetime import timedelta

import pytest
from sqlalchemy import select

from finepay import audit
from finepay.audit import AuditEntry, verify_chain
from finepay.dbtypes import utcnow
from finepay.extensions import db
from staff import services as staff_services
from tests.payments.helpers import post_event
from tests.staff.helpers import make_user, sign_in

KIOSK_HAMMERING = 3000
ATTACKER = {"REMOTE_ADDR": "203.0.113.7"}
NEIGHBOUR = {"REMOTE_ADDR": "203.0.113.8"}


def written(action):
    """The audit entries with this action, once every counted refusal is written out."""
    audit.flush_refusals(include_current=True)
    db.session.expire_all()
    return db.session.execute(select(AuditEntry).where(AuditEntry.action == action)
                              .order_by(AuditEntry.id)).scalars().all()


def minutes_spanned(started):
    """How many distinct minutes the run touched (each may hold one entry per source)."""
    return int((utcnow().replace(second=0, microsecond=0) - started.replace(second=0, microsecond=0))
               / timedelta(minutes=1)) + 1


def test_thousands_of_kiosk_requests_without_a_credential_write_a_bounded_count(client):
    started = utcnow()
    for n in range(KIOSK_HAMMERING):
        response = client.get("/kiosk/api/status", environ_base=ATTACKER if n % 3 else NEIGHBOUR)
        assert response.status_code == 401

    entries = written("kiosk.credential_refused")

    assert len(entries) <= 2 * minutes_spanned(started)  # one per source and minute, not one per request
    assert sum(e.details["count"] for e in entries) == KIOSK_HAMMERING
    by_source = {}
    for entry in entries:
        assert entry.actor == "kiosk" and entry.subject_id == "-" and entry.details["reason"] == "missing"
        by_source[entry.remote_addr] = by_source.get(entry.remote_addr, 0) + entry.details["count"]
    assert by_source == {ATTACKER["REMOTE_ADDR"]: KIOSK_HAMMERING * 2 // 3, NEIGHBOUR["REMOTE_ADDR"]: KIOSK_HAMMERING // 3}
    assert audit.seal().sealed >= len(entries) and verify_chain().ok


def test_a_finished_minute_is_written_by_the_sealer_and_later_refusals_start_afresh(client, monkeypatch):
    now = utcnow().replace(second=30)
    monkeypatch.setattr(audit, "utcnow", lambda: now)
    for _ in range(4):
        client.get("/kiosk/api/status", environ_base=ATTACKER)

    assert audit.seal().refusals_flushed == 0  # the minute is not over: still counting
    assert not db.session.execute(select(AuditEntry)).scalars().all()

    now += timedelta(minutes=1)
    assert audit.seal().refusals_flushed == 1
    client.get("/kiosk/api/status", environ_base=ATTACKER)
    now += timedelta(minutes=1)
    audit.seal()

    entries = db.session.execute(select(AuditEntry).order_by(AuditEntry.id)).scalars().all()
    assert [(e.action, e.details["count"]) for e in entries] == [("kiosk.credential_refused", 4),
                                                                 ("kiosk.credential_refused", 1)]
    assert all(e.seal_seq is not None for e in entries) and verify_chain().checked == 2


def test_bad_enrolment_codes_are_counted(client):
    for _ in range(25):
        assert client.post(f"/kiosk/enrol/{uuid.uuid4().hex}", environ_base=ATTACKER).status_code == 404

    (entry,) = written("kiosk.enrolment_refused")

    assert entry.details["count"] == 25 and entry.details["reason"] == "unknown"


@pytest.fixture
def api_key(app):
    return staff_services.create_api_key("authority system", "test")[1]


def test_wrong_and_missing_api_keys_are_counted(client, api_key):
    for n in range(30):
        headers = {"X-API-Key": f"fp_{'x' * 40}"} if n % 2 else {}
        assert client.get("/api/v1/settlements", headers=headers, environ_base=ATTACKER).status_code == 401
    assert client.get("/api/v1/settlements", headers={"X-API-Key": api_key}).status_code == 200

    entries = written("api_key.refused")

    assert sorted((e.details["reason"], e.details["count"]) for e in entries) == [("invalid", 15), ("missing", 15)]


def test_badly_signed_webhooks_are_counted(client):
    for n in range(20):
        response = client.post("/webhooks/sandbox", data=b'{"id": "evt_%d"}' % n, environ_base=ATTACKER,
                                headers={"X-Sandbox-Signature": "t=1,v1=00", "Content-Type": "application/json"})
        assert response.status_code == 400
    assert post_event(client, {"id": "evt_ok", "type": "something.else"}).status_code == 200

    (entry,) = written("webhook.refused")

    assert entry.details["count"] == 20 and entry.subject_id == "sandbox" and entry.remote_addr == "203.0.113.7"


def test_failed_staff_sign_ins_are_counted_and_name_only_real_accounts(client):
    make_user("ivy")
    for n in range(12):
        sign_in(client, "ivy" if n % 2 else f"guess{n}", "wrong password!!", environ_base=ATTACKER)

    refused = written("staff.sign_in_failed") + written("staff.sign_in_locked")

    assert sum(e.details["count"] for e in refused) == 12
    assert {e.subject_id for e in refused} <= {"ivy", "-"}
    assert len(refused) <= 4
