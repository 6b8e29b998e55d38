"""Helpers for the kiosk tests: an enrolled terminal, a visit, and the steps of the flow."""
import re
from dataclasses import dataclass
from datetime import timedelta

from flask import current_app
from sqlalchemy import select

from finepay import audit
from finepay.audit import AuditEntry
from finepay.extensions import db
from kiosk import services
from kiosk.models import Terminal
from tests.factories import make_violation
from violations.fees import business_today

PLATE, VIN = "蒙B12345", "A12345"
SESSION = "X-Kiosk-Session"


@dataclass
class Kiosk:
    """An enrolled terminal and the test client that holds its credential."""

    client: object
    terminal_id: int
    name: str
    credential: str

    @property
    def terminal(self):
        return db.session.get(Terminal, self.terminal_id)


def enrol(client, name="hall-1"):
    """Enrol a terminal the way a kiosk does (open the link, press the button) and keep its cookie."""
    enrolment = services.enrol_terminal(name, "test")
    response = client.post(enrolment.path)
    assert response.status_code == 303, response.get_data(as_text=True)
    credential = client.get_cookie(services.COOKIE_NAME, path=services.COOKIE_PATH).value
    return Kiosk(client, enrolment.terminal_id, name, credential)


def vehicle(plate=PLATE, vin=VIN, fines=(20000, 10000), days_since_decision=20):
    """Unpaid, payable violations of one vehicle; returns their ids."""
    today = business_today(current_app.config["BUSINESS_TIMEZONE"])
    return [make_violation(plate=plate, vin_last6=vin, fine=fine,
                           decision_date=today - timedelta(days=days_since_decision)).id for fine in fines]


def start_visit(client):
    """Touch Start: returns the headers that name the visit."""
    response = client.post("/kiosk/api/sessions", json={})
    assert response.status_code == 201, response.get_json()
    return {SESSION: response.get_json()["session"]}


def prove(client, headers, plate=PLATE, vin=VIN):
    """Plate then VIN code: the violations screen's JSON answer."""
    assert client.post("/kiosk/api/plate", json={"plate": plate}, headers=headers).status_code == 200
    return client.post("/kiosk/api/lookup", json={"vin_last6": vin}, headers=headers)


def review(client, headers, ids):
    """The review screen; returns the idempotency key it was rendered with."""
    response = client.post("/kiosk/api/review", json={"violation_ids": ids}, headers=headers)
    assert response.status_code == 200, response.get_json()
    return re.search(r'data-key="([0-9a-f]{32})"', response.get_json()["html"]).group(1)


def pay(client, headers, ids, key=None):
    """Review and Pay: the reader screen (or an error)."""
    key = key or review(client, headers, ids)
    return client.post("/kiosk/api/payments", json={"violation_ids": ids, "idempotency_key": key},
                       headers=headers)


def simulate(client, headers, outcome):
    """A sandbox reader control."""
    return client.post("/kiosk/api/sandbox/reader", json={"outcome": outcome}, headers=headers)


def audit_actions(prefix="kiosk."):
    """The audit log's actions (and details) starting with prefix, oldest first, counted refusals written out."""
    audit.flush_refusals(include_current=True)
    return [(e.action, e.details) for e in db.session.execute(
        select(AuditEntry).where(AuditEntry.action.startswith(prefix)).order_by(AuditEntry.id)
    ).scalars()]
