"""Staff accounts and signing in: the CLI, passwords, lockout, sign-out, safe redirects, CSRF."""
from datetime import timedelta

import pytest
from sqlalchemy import select

from finepay.extensions import db
from staff.models import LoginAttempt, StaffUser
from tests.staff.helpers import (
    PASSWORD,
    audit_actions,
    last_audit,
    make_supervisor,
    make_user,
    sign_in,
    sign_in_as,
)

OTHER_ADDRESS = {"REMOTE_ADDR": "192.0.2.77"}


# --- the CLI --------------------------------------------------------------------------


def test_create_user_from_stdin_hashes_the_password_with_scrypt(runner):
    result = runner.invoke(args=["staff", "create-user", "Alice", "--role", "supervisor", "--password-stdin"],
                           input=PASSWORD + "\n")

    assert result.exit_code == 0, result.output
    user = db.session.execute(select(StaffUser)).scalar_one()
    assert (user.username, user.role, user.active) == ("alice", "supervisor", True)
    assert user.password_hash.startswith("scrypt:")
    assert PASSWORD not in user.password_hash
    assert last_audit("staff.user_created").subject_id == "alice"


def test_create_user_prompts_for_the_password_twice(runner):
    result = runner.invoke(args=["staff", "create-user", "bob", "--role", "clerk"],
                           input=f"{PASSWORD}\n{PASSWORD}\n")

    assert result.exit_code == 0, result.output
    assert db.session.execute(select(StaffUser.role)).scalar_one() == "clerk"


@pytest.mark.parametrize("args, stdin, message", [
    (["carol", "--role", "clerk", "--password-stdin"], "short\n", "at least 12"),
    (["carol", "--role", "admin", "--password-stdin"], PASSWORD + "\n", "Invalid value for '--role'"),
    (["no spaces allowed", "--role", "clerk", "--password-stdin"], PASSWORD + "\n", "username"),
])
def test_create_user_refuses_bad_input(runner, args, stdin, message):
    result = runner.invoke(args=["staff", "create-user", *args], input=stdin)

    assert result.exit_code != 0
    assert message in result.output
    assert db.session.execute(select(StaffUser)).first() is None


def test_create_user_refuses_a_taken_name(runner):
    make_user("dave")
    result = runner.invoke(args=["staff", "create-user", "DAVE", "--role", "clerk", "--password-stdin"],
                           input=PASSWORD + "\n")

    assert result.exit_code != 0
    assert "taken" in result.output


# --- signing in ------------------------------------------------------------------------


def test_sign_in_goes_to_the_dashboard_and_is_recorded(client):
    make_user("erin")

    response = sign_in(client, "Erin")

    assert response.status_code == 303
    assert response.headers["Location"] == "/staff/"
    page = client.get("/staff/")
    assert page.status_code == 200
    assert "erin" in page.get_data(as_text=True)
    entry = last_audit("staff.signed_in")
    assert entry.actor == "staff:erin" and entry.remote_addr == "127.0.0.1"
    assert db.session.execute(select(LoginAttempt.success)).scalars().all() == [True]


def test_wrong_password_and_unknown_user_get_the_same_answer(client):
    make_user("frank")

    wrong = sign_in(client, "frank", "not the password at all")
    unknown = sign_in(client, "nobody", "not the password at all")

    assert wrong.status_code == unknown.status_code == 401
    for response in (wrong, unknown):
        body = response.get_data(as_text=True)
        assert "Wrong username or password." in body
        assert "not the password at all" not in body
    assert client.get("/staff/").status_code == 302
    assert audit_actions(action="staff.sign_in_failed") == ["staff.sign_in_failed"] * 2


def test_an_inactive_account_cannot_sign_in(client):
    make_user("gina", active=False)

    assert sign_in(client, "gina").status_code == 401


def test_empty_fields_are_shown_beside_the_fields(client):
    response = client.post("/staff/login", data={"username": "", "password": ""})

    assert response.status_code == 422
    body = response.get_data(as_text=True)
    assert 'id="username-error"' in body and "Enter your username." in body
    assert 'id="password-error"' in body and "Enter your password." in body


# --- lockout ------------------------------------------------------------------------------


def test_five_failures_lock_the_account_even_for_the_right_password(client):
    make_user("hank")
    for _ in range(4):
        assert sign_in(client, "hank", "wrong password!!").status_code == 401

    fifth = sign_in(client, "hank", "wrong password!!")
    locked = sign_in(client, "hank", environ_base=OTHER_ADDRESS)  # the right password, from elsewhere

    assert fifth.status_code == 429
    assert locked.status_code == 429
    assert "locked" in locked.get_data(as_text=True)
    assert client.get("/staff/").status_code == 302
    assert last_audit("staff.sign_in_locked").subject_id == "hank"
    # Attempts refused while locked are not counted, so the lock ends on time.
    assert db.session.execute(select(LoginAttempt)).scalars().all().__len__() == 5


def test_the_account_lock_ends_after_the_window(client):
    make_user("ivy")
    for _ in range(5):
        sign_in(client, "ivy", "wrong password!!")
    assert sign_in(client, "ivy").status_code == 429

    for attempt in db.session.execute(select(LoginAttempt)).scalars():
        attempt.at -= timedelta(minutes=16)
    db.session.commit()

    assert sign_in(client, "ivy").status_code == 303


def test_five_failures_from_one_address_lock_that_address_for_every_account(client):
    make_user("jack")
    for n in range(5):
        sign_in(client, f"guess{n}", "wrong password!!")

    from_there = sign_in(client, "jack")
    from_elsewhere = sign_in(client, "jack", environ_base=OTHER_ADDRESS)

    assert from_there.status_code == 429
    assert from_elsewhere.status_code == 303


def test_a_successful_sign_in_starts_the_account_count_again(client):
    make_user("kate")
    for _ in range(4):
        sign_in(client, "kate", "wrong password!!", environ_base={"REMOTE_ADDR": "192.0.2.1"})
    assert sign_in(client, "kate", environ_base={"REMOTE_ADDR": "192.0.2.2"}).status_code == 303
    client.post("/staff/logout")

    sign_in(client, "kate", "wrong password!!", environ_base={"REMOTE_ADDR": "192.0.2.3"})

    assert sign_in(client, "kate", environ_base={"REMOTE_ADDR": "192.0.2.4"}).status_code == 303


@pytest.mark.parametrize("app_config", [{"STAFF_LOCKOUT_ATTEMPTS": 2, "STAFF_LOCKOUT_MINUTES": 1}])
def test_the_lockout_follows_its_settings(client):
    make_user("liam")
    sign_in(client, "liam", "wrong password!!")

    assert sign_in(client, "liam", "wrong password!!").status_code == 429


# --- where sign-in leads ------------------------------------------------------------------


def test_anonymous_visitors_are_sent_to_sign_in_and_brought_back(client):
    make_user("mia")

    first = client.get("/staff/reconciliation?start=2026-11-01")
    assert first.status_code == 302
    assert first.headers["Location"] == "/staff/login?next=/staff/reconciliation?start%3D2026-11-01"
    form = client.get(first.headers["Location"]).get_data(as_text=True)
    assert 'value="/staff/reconciliation?start=2026-11-01"' in form

    response = sign_in(client, "mia", next_url="/staff/reconciliation?start=2026-11-01")

    assert response.headers["Location"] == "/staff/reconciliation?start=2026-11-01"


@pytest.mark.parametrize("target", [
    "https://evil.example/staff/", "//evil.example/staff/", "/\\evil.example", "\\\\evil.example",
    "http:/staff/", "javascript:alert(1)", "/staff\r\nLocation: https://evil.example", "/",
    "/receipts/FP-1", "/staff/login", " //evil.example", "/%2F%2Fevil.example",
])
def test_next_never_leads_off_the_console(client, target):
    make_user("noah")

    response = sign_in(client, "noah", next_url=target)

    assert response.status_code == 303
    assert response.headers["Location"] == "/staff/"
    assert "evil" not in client.get(f"/staff/login?next={target}").get_data(as_text=True)


def test_signed_in_staff_opening_the_sign_in_page_go_to_the_dashboard(client):
    sign_in_as(client, make_user("olga"))

    assert client.get("/staff/login?next=https://evil.example/").headers["Location"] == "/staff/"


# --- sessions (and tests/staff/test_sessions.py) ---------------------------------------------------------------------------------


def test_sign_out_ends_the_session(client):
    make_user("sam")
    sign_in(client, "sam")

    response = client.post("/staff/logout")

    assert response.status_code == 303
    assert client.get("/staff/").status_code == 302
    assert "staff.signed_out" in audit_actions()


def test_sign_out_is_a_post(client):
    sign_in_as(client, make_user("tess"))

    assert client.get("/staff/logout").status_code == 405
    assert client.get("/staff/").status_code == 200


def test_a_new_password_ends_other_sessions(client, app):
    supervisor = make_supervisor("uma")
    clerk = make_user("vic")
    other = app.test_client()
    sign_in_as(other, clerk)
    assert other.get("/staff/").status_code == 200
    sign_in_as(client, supervisor)

    client.post(f"/staff/users/{clerk.id}", data={"role": "clerk", "active": "y", "password": "a brand new password"})

    assert other.get("/staff/").status_code == 302
    assert sign_in(app.test_client(), "vic", "a brand new password").status_code == 303


def test_a_deactivated_account_is_signed_out_at_once(client, app):
    supervisor = make_supervisor("wes")
    clerk = make_user("xena")
    other = sign_in_as(app.test_client(), clerk)
    sign_in_as(client, supervisor)

    client.post(f"/staff/users/{clerk.id}", data={"role": "clerk"})  # "active" unticked

    assert other.get("/staff/").status_code == 302


# --- CSRF ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("app_config", [{"WTF_CSRF_ENABLED": True}])
def test_forms_without_their_token_are_refused(client):
    user = make_supervisor("yara")

    assert client.post("/staff/login", data={"username": "yara", "password": PASSWORD}).status_code == 400
    sign_in_as(client, user)
    for path in ("/staff/logout", "/staff/keys", "/staff/users", "/staff/reconciliation/fetch", "/staff/imports",
                 "/staff/sessions/1/end"):
        response = client.post(path, data={"name": "x"})
        assert response.status_code in (400, 422), path
        assert "expired" in response.get_data(as_text=True) or "CSRF" in response.get_data(as_text=True), path
    assert client.get("/staff/").status_code == 200


@pytest.mark.parametrize("app_config", [{"WTF_CSRF_ENABLED": True}])
def test_sign_in_works_with_the_token_from_the_form(client):
    make_user("zoe")
    page = client.get("/staff/login").get_data(as_text=True)
    token = page.split('name="csrf_token" type="hidden" value="')[1].split('"')[0]

    response = client.post("/staff/login", data={"username": "zoe", "password": PASSWORD, "csrf_token": token})

    assert response.status_code == 303
