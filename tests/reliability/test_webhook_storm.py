"""A webhook storm: the same events 100 times, shuffled, with forgeries, ends where one clean delivery does."""
import json
import random
from collections import Counter

from sqlalchemy import func, select

from finepay.audit import AuditEntry
from finepay.extensions import db
from payments.models import Payment, Refund, WebhookEvent
from tests.conftest import _empty_postgres
from tests.payments.helpers import (
    capture_at_sandbox,
    create_ok,
    end_session_after_each_request,
    overdue_violation,
    post_event,
    signed_event,
    stale_timestamp,
)
from violations.models import Violation

REPEATS = 100


def scenario(client):
    """Three payments: captured behind FinePay's back, declined there, and never paid. Returns the events."""
    paid, declined, unpaid = (overdue_violation(notice_number=f"15020320261170000{i}") for i in range(3))
    events = []
    for violation, method, kind in ((paid, "pm_card_visa", "succeeded"),
                                    (declined, "pm_card_chargeDeclined", "payment_failed")):
        payment = create_ok(client, [violation.id])
        intent = db.session.get(Payment, payment["id"]).gateway_intent_id
        capture_at_sandbox(intent, method)
        events.append({"id": f"evt_{kind}", "type": f"payment_intent.{kind}", "intent_id": intent})
    never = create_ok(client, [unpaid.id])
    forged_target = db.session.get(Payment, never["id"]).gateway_intent_id
    events.append({"id": "evt_unknown_type", "type": "charge.dispute.created", "intent_id": None})
    return events, forged_target


def snapshot():
    """The state that matters, by notice number (ids and random receipt numbers aside)."""
    db.session.expire_all()
    return {
        "violations": sorted((v.notice_number, v.status, v.receipt_number is not None)
                             for v in db.session.execute(select(Violation)).scalars()),
        "payments": sorted(Counter(p.status for p in db.session.execute(select(Payment)).scalars()).items()),
        "refunds": db.session.execute(select(func.count()).select_from(Refund)).scalar(),
        "webhook_events": db.session.execute(select(func.count()).select_from(WebhookEvent)).scalar(),
        "audit": sorted(Counter(e.action for e in db.session.execute(select(AuditEntry)).scalars()).items()),
    }


def forgeries(events, forged_target):
    """Deliveries an attacker could make: wrong signature, tampered body, replayed stale, made-up success."""
    made_up = {"id": "evt_forged", "type": "payment_intent.succeeded", "intent_id": forged_target}
    tampered_body, tampered_headers = signed_event(events[1])
    stale_body, stale_headers = signed_event({**made_up, "id": "evt_stale"}, timestamp=stale_timestamp())
    return [
        (json.dumps(made_up).encode(), {"X-Sandbox-Signature": "t=1700000000,v1=" + "0" * 64}),
        (tampered_body.replace(b"payment_failed", b"succeeded"), tampered_headers),
        (stale_body, stale_headers),
        (json.dumps(made_up).encode(), {}),
    ]


def test_a_shuffled_storm_with_forgeries_ends_like_one_clean_delivery(app, client, database_url):
    end_session_after_each_request(app)
    events, _ = scenario(client)
    clean_answers = Counter(post_event(client, e).status_code for e in events)
    clean = snapshot()

    db.session.remove()
    _empty_postgres(database_url)
    events, forged_target = scenario(client)
    deliveries = [("valid", e) for e in events for _ in range(REPEATS)]
    deliveries += [("forged", f) for f in forgeries(events, forged_target) for _ in range(REPEATS // 4)]
    random.Random(6).shuffle(deliveries)
    answers = Counter()
    for kind, item in deliveries:
        if kind == "valid":
            response = post_event(client, item)
        else:
            body, headers = item
            response = client.post("/webhooks/sandbox", data=body, headers=headers)
        answers[f"{kind} {response.status_code}"] += 1
    storm = snapshot()

    print(f"\n[reliability] webhook storm: events {len(events)}, deliveries {len(deliveries)} "
          f"({REPEATS}x each, shuffled), forged {sum(1 for k, _ in deliveries if k == 'forged')}, answers "
          f"{dict(answers)}; clean delivery answers {dict(clean_answers)}; state identical: {storm == clean}")

    assert storm == clean, (storm, clean)
    assert answers["forged 400"] == sum(1 for k, _ in deliveries if k == "forged")
    assert set(answers) == {"valid 200", "forged 400"}
    assert sum(1 for v in storm["violations"] if v[1] == "paid") == 1  # only the real capture
