"""Supervisors manage staff accounts and enrol or revoke kiosks from the console."""
import re

import pytest
from sqlalchemy import select

from finepay.extensions import db
from kiosk.models import Terminal
from staff.models import StaffUser
from tests.staff.helpers import last_audit, make_supervisor, make_user, sign_in, sign_in_as


@pytest.fixture
def supervisor(client):
    return sign_in_as(client, make_supervisor("boss"))


def user(username):
    db.session.expire_all()
    return db.session.execute(select(StaffUser).where(StaffUser.username == username)).scalar_one_or_none()


def test_a_supervisor_creates_an_account_that_can_sign_in(supervisor, app):
    response = supervisor.post("/staff/users", data={"username": "New.Clerk", "role": "clerk",
                                                     "password": "twelve chars plus"})

    assert response.status_code == 303
    created = user("new.clerk")
    assert created.role == "clerk" and created.password_hash.startswith("scrypt:")
    assert sign_in(app.test_client(), "new.clerk", "twelve chars plus").status_code == 303
    assert last_audit("staff.user_created").actor == "staff:boss"


@pytest.mark.parametrize("data, field", [
    ({"username": "x", "role": "clerk", "password": "twelve chars plus"}, "username"),
    ({"username": "has space", "role": "clerk", "password": "twelve chars plus"}, "username"),
    ({"username": "boss", "role": "clerk", "password": "twelve chars plus"}, "username"),
    ({"username": "ok.name", "role": "admin", "password": "twelve chars plus"}, "role"),
    ({"username": "ok.name", "role": "clerk", "password": "short"}, "password"),
])
def test_bad_account_details_are_explained_beside_the_field(supervisor, data, field):
    response = supervisor.post("/staff/users", data=data)

    assert response.status_code == 422
    assert f'id="{field}-error"' in response.get_data(as_text=True)
    assert user("ok.name") is None


def test_a_supervisor_promotes_and_deactivates_others_but_not_themself(supervisor):
    clerk = make_user("clerk")
    me = user("boss")

    supervisor.post(f"/staff/users/{clerk.id}", data={"role": "supervisor", "active": "y"})
    refused = supervisor.post(f"/staff/users/{me.id}", data={"role": "clerk"})

    assert user("clerk").role == "supervisor"
    assert user("boss").role == "supervisor" and user("boss").active
    assert "cannot demote or deactivate your own account" in supervisor.get(refused.headers["Location"]).get_data(
        as_text=True)
    assert last_audit("staff.user_changed").details == {"role": ["clerk", "supervisor"]}


def test_a_short_new_password_is_refused(supervisor):
    clerk = make_user("clerk")
    before = clerk.password_hash

    response = supervisor.post(f"/staff/users/{clerk.id}", data={"role": "clerk", "active": "y", "password": "short"})

    assert "Not changed" in supervisor.get(response.headers["Location"]).get_data(as_text=True)
    assert user("clerk").password_hash == before


def test_enrolling_a_kiosk_shows_its_one_time_link_once(supervisor):
    response = supervisor.post("/staff/terminals", data={"name": "hall-3"})

    page = response.get_data(as_text=True)
    code = re.search(r'id="enrolment-code">([A-Za-z0-9_\-]{32})<', page).group(1)
    assert f"/kiosk/enrol/{code}" in page
    terminal = db.session.execute(select(Terminal).where(Terminal.name == "hall-3")).scalar_one()
    assert terminal.enrolment_code_hash and code not in terminal.enrolment_code_hash
    again = supervisor.get("/staff/terminals").get_data(as_text=True)
    assert code not in again and "hall-3" in again
    assert last_audit("kiosk.enrolment_issued").actor == "staff:boss"


def test_a_bad_terminal_name_is_explained(supervisor):
    response = supervisor.post("/staff/terminals", data={"name": "-no good-"})

    assert response.status_code == 422
    assert 'id="name-error"' in response.get_data(as_text=True)


def test_revoking_a_kiosk_switches_it_off(supervisor):
    supervisor.post("/staff/terminals", data={"name": "hall-4"})

    response = supervisor.post("/staff/terminals/hall-4/revoke")

    assert response.status_code == 303
    db.session.expire_all()
    assert db.session.execute(select(Terminal.revoked_at).where(Terminal.name == "hall-4")).scalar_one()
    assert last_audit("kiosk.revoked").actor == "staff:boss"
    assert supervisor.post("/staff/terminals/nowhere/revoke").status_code == 404


def test_the_dashboard_lists_kiosks(supervisor):
    supervisor.post("/staff/terminals", data={"name": "hall-5"})

    page = supervisor.get("/staff/").get_data(as_text=True)

    terminals = page.split('id="terminals"')[1].split("</section>")[0]
    assert "hall-5" in terminals and "never" in terminals
