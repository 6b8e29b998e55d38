"""Staff sessions live on the server: sign-out, account changes and time end them, whatever cookie is replayed."""
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from flask_login.utils import encode_cookie
from sqlalchemy import func, select

from finepay.extensions import db
from staff.models import ApiKey
from tests.staff.helpers import PASSWORD, last_audit, make_supervisor, make_user, sign_in

START = datetime(2026, 11, 30, 1, 0, tzinfo=UTC)


def signed_in(app, username, **environ):
    """A fresh client signed in through the sign-in form, as a browser would be."""
    client = app.test_client()
    response = sign_in(client, username, environ_base=environ)
    assert response.status_code == 303, response.status_code
    assert client.get("/staff/").status_code == 200
    return client


def saved_cookie(client):
    """The session cookie a browser (or a thief) holds right now."""
    return client.get_cookie("session").value


def replay(app, cookie):
    """A new client presenting a saved session cookie."""
    thief = app.test_client()
    thief.set_cookie("session", cookie)
    return thief


def is_signed_out(client, path="/staff/"):
    """True when the console sends this client to the sign-in page."""
    response = client.get(path)
    return response.status_code == 302 and response.headers["Location"].startswith("/staff/login")


def api_key_count():
    db.session.expire_all()
    return db.session.execute(select(func.count()).select_from(ApiKey)).scalar_one()


# --- sign-out --------------------------------------------------------------------------


def test_a_cookie_saved_before_sign_out_no_longer_opens_the_console(app):
    make_supervisor("amy")
    browser = signed_in(app, "amy")
    cookie = saved_cookie(browser)

    assert browser.post("/staff/logout").status_code == 303

    thief = replay(app, cookie)
    assert is_signed_out(thief)
    response = thief.post("/staff/keys", data={"name": "stolen upstream"})
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/staff/login")
    assert api_key_count() == 0
    assert thief.get("/api/v1/settlements").status_code == 401  # the feed takes API keys, never cookies
    assert last_audit("staff.signed_out").details == {"reason": "signed out", "sessions": 1}


def test_signing_out_ends_every_session_of_that_person_and_no_one_elses(app):
    make_supervisor("ben")
    make_supervisor("cleo")
    desk, laptop, phone = (signed_in(app, "ben") for _ in range(3))
    colleague = signed_in(app, "cleo")
    assert laptop.get("/staff/sessions").get_data(as_text=True).count('class="session-row') == 3

    desk.post("/staff/logout")

    assert is_signed_out(desk)
    assert is_signed_out(laptop)
    assert is_signed_out(phone)
    assert not is_signed_out(colleague)
    assert last_audit("staff.signed_out").details == {"reason": "signed out", "sessions": 3}


def test_a_session_can_be_ended_from_the_list_of_sessions(app):
    make_user("cleo")
    office = signed_in(app, "cleo", REMOTE_ADDR="192.0.2.10")
    lost_laptop = signed_in(app, "cleo", REMOTE_ADDR="198.51.100.7")
    from staff.models import StaffSession

    page = office.get("/staff/sessions").get_data(as_text=True)
    assert "198.51.100.7" in page and "192.0.2.10" in page
    other_id = db.session.execute(
        select(StaffSession.id).where(StaffSession.remote_addr == "198.51.100.7")).scalar_one()

    assert office.post(f"/staff/sessions/{other_id}/end").status_code == 303

    assert is_signed_out(lost_laptop)
    assert not is_signed_out(office)


def test_nobody_can_end_another_persons_session(app):
    from staff.models import StaffSession

    make_user("cole")
    make_user("dora")
    victim = signed_in(app, "cole")
    victim_session = db.session.execute(select(StaffSession.id)).scalar_one()
    other = signed_in(app, "dora")

    assert other.post(f"/staff/sessions/{victim_session}/end").status_code == 404
    assert other.post("/staff/sessions/99999999/end").status_code == 404
    assert other.post(f"/staff/sessions/{2**64}/end").status_code == 404
    assert not is_signed_out(victim)
    listed = other.get("/staff/sessions").get_data(as_text=True)
    assert listed.count('class="session-row') == 1 and f'data-session="{victim_session}"' not in listed


def test_a_remember_me_cookie_does_not_sign_anyone_in(app):
    """No remember-me cookie is issued; one forged with the app's key still opens nothing."""
    user = make_supervisor("dina")
    browser = app.test_client()
    for value in (str(user.id), user.get_id()):
        browser.set_cookie("remember_token", encode_cookie(value))
        assert is_signed_out(browser)


# --- account changes end every session of that person ---------------------------------------


@pytest.mark.parametrize("change, reason", [
    ({"role": "supervisor", "active": "y"}, "role changed"),
    ({"role": "clerk"}, "account disabled"),  # "active" unticked
    ({"role": "clerk", "active": "y", "password": "a brand new password"}, "password changed"),
])
def test_a_supervisor_changing_an_account_ends_all_its_sessions(app, change, reason):
    make_supervisor("eve")
    clerk = make_user("finn")
    counter, back_office = signed_in(app, "finn"), signed_in(app, "finn")
    kept_cookie = saved_cookie(counter)
    supervisor = signed_in(app, "eve")

    assert supervisor.post(f"/staff/users/{clerk.id}", data=change).status_code == 303

    assert is_signed_out(counter)
    assert is_signed_out(back_office)
    assert is_signed_out(replay(app, kept_cookie))
    assert not is_signed_out(supervisor)
    entry = last_audit("staff.signed_out")
    assert (entry.subject_id, entry.actor, entry.details) == ("finn", "staff:eve", {"reason": reason, "sessions": 2})


def test_changing_your_own_password_ends_your_other_sessions_but_not_this_one(app):
    boss = make_supervisor("gus")
    here, elsewhere = signed_in(app, "gus"), signed_in(app, "gus")

    response = here.post(f"/staff/users/{boss.id}",
                         data={"role": "supervisor", "active": "y", "password": "another long password"})

    assert response.status_code == 303
    assert not is_signed_out(here)
    assert is_signed_out(elsewhere)


def test_a_promoted_clerk_signs_in_again_to_use_the_new_role(app):
    make_supervisor("hana")
    clerk = make_user("ivan")
    clerk_browser = signed_in(app, "ivan")
    signed_in(app, "hana").post(f"/staff/users/{clerk.id}", data={"role": "supervisor", "active": "y"})

    assert is_signed_out(clerk_browser, "/staff/keys")
    assert sign_in(clerk_browser, "ivan", PASSWORD).status_code == 303
    assert clerk_browser.get("/staff/keys").status_code == 200


# --- time: idle and absolute limits -----------------------------------------------------------------


def test_an_idle_session_ends_and_its_cookie_cannot_revive_it(app):
    make_user("jack")
    with time_machine.travel(START, tick=False) as clock:
        browser = signed_in(app, "jack")
        cookie = saved_cookie(browser)
        clock.shift(timedelta(minutes=31))

        assert is_signed_out(browser, "/staff/search")
        assert "without activity" in browser.get("/staff/login").get_data(as_text=True)
        assert is_signed_out(replay(app, cookie))
    assert last_audit("staff.signed_out").details == {"reason": "idle", "sessions": 1}


@pytest.mark.parametrize("app_config", [{"STAFF_SESSION_MINUTES": 5}])
def test_idle_expiry_follows_its_setting(app):
    make_user("kate")
    with time_machine.travel(START, tick=False) as clock:
        browser = signed_in(app, "kate")
        clock.shift(timedelta(minutes=4))
        assert not is_signed_out(browser)
        clock.shift(timedelta(minutes=6))
        assert is_signed_out(browser)


def test_activity_keeps_a_session_alive_within_the_idle_limit(app):
    make_user("liam")
    with time_machine.travel(START, tick=False) as clock:
        browser = signed_in(app, "liam")
        for _ in range(6):
            clock.shift(timedelta(minutes=25))
            assert not is_signed_out(browser)


def test_a_session_ends_at_its_absolute_limit_however_busy(app):
    """The cookie is renewed on use, yet the session still ends STAFF_SESSION_MAX_HOURS after sign-in."""
    make_user("mia")
    with time_machine.travel(START, tick=False) as clock:
        browser = signed_in(app, "mia")
        cookie = None
        for _ in range(12 * 3 - 1):  # a request every 20 minutes, never idle, for 11 h 40 min
            clock.shift(timedelta(minutes=20))
            assert not is_signed_out(browser)
            cookie = saved_cookie(browser)
        clock.shift(timedelta(minutes=21))  # 12 h 1 min after sign-in, 21 minutes after the last request

        assert is_signed_out(browser)
        assert "signed in for 12 hours" in browser.get("/staff/login").get_data(as_text=True)
        assert is_signed_out(replay(app, cookie))
    assert last_audit("staff.signed_out").details == {"reason": "expired", "sessions": 1}


@pytest.mark.parametrize("app_config", [{"STAFF_SESSION_MAX_HOURS": 2, "STAFF_SESSION_MINUTES": 240}])
def test_the_absolute_limit_follows_its_setting(app):
    make_user("nora")
    with time_machine.travel(START, tick=False) as clock:
        browser = signed_in(app, "nora")
        clock.shift(timedelta(minutes=119))
        assert not is_signed_out(browser)
        clock.shift(timedelta(minutes=2))
        assert is_signed_out(browser)


def test_last_seen_is_written_at_most_once_a_minute(app):
    """The idle clock is kept on the server without a write on every click."""
    from staff.models import StaffSession

    make_user("otto")
    with time_machine.travel(START, tick=False) as clock:
        browser = signed_in(app, "otto")
        signed_in_at = db.session.execute(select(StaffSession.last_seen_at)).scalar_one()
        clock.shift(timedelta(seconds=30))
        browser.get("/staff/")
        db.session.expire_all()
        assert db.session.execute(select(StaffSession.last_seen_at)).scalar_one() == signed_in_at
        clock.shift(timedelta(seconds=31))
        browser.get("/staff/")
        db.session.expire_all()
        assert db.session.execute(select(StaffSession.last_seen_at)).scalar_one() == START + timedelta(seconds=61)


def test_the_session_id_is_stored_hashed(app):
    from staff.models import StaffSession

    make_user("pia")
    browser = signed_in(app, "pia", REMOTE_ADDR="192.0.2.44", HTTP_USER_AGENT="Counter PC")
    row = db.session.execute(select(StaffSession)).scalar_one()
    with browser.session_transaction() as session:
        token = session["staff_session"]

    assert token not in row.token_hash and len(row.token_hash) == 64
    assert (row.remote_addr, row.user_agent, row.revoked_at) == ("192.0.2.44", "Counter PC", None)


def test_the_command_line_ends_every_session_of_an_account(app, runner):
    make_user("quin")
    desk, laptop = signed_in(app, "quin"), signed_in(app, "quin")

    result = runner.invoke(args=["staff", "sign-out", "QUIN"])

    assert result.exit_code == 0, result.output
    assert "Ended 2 session(s) of quin." in result.output
    assert is_signed_out(desk) and is_signed_out(laptop)
    entry = last_audit("staff.signed_out")
    assert entry.actor.startswith("cli") and entry.details == {"reason": "ended by an administrator", "sessions": 2}
    assert runner.invoke(args=["staff", "sign-out", "nobody"]).exit_code != 0
