"""Terminals: the enroll/revoke/list commands, the one-time enrolment link, and the stored credential."""
from datetime import timedelta

from sqlalchemy import select

from finepay.dbtypes import utcnow
from finepay.extensions import db
from kiosk import services
from kiosk.models import Terminal
from tests.conftest import in_both_languages, translated
from tests.kiosk.helpers import audit_actions, enrol


def link_path(output):
    """The path of the enrolment link printed by `kiosk enroll`."""
    url = output.strip().splitlines()[-1]
    assert url.startswith("http://127.0.0.1:8000/kiosk/enrol/")
    return url.removeprefix("http://127.0.0.1:8000")


def test_enroll_command_prints_a_one_time_link_valid_15_minutes(runner):
    before = utcnow()
    result = runner.invoke(args=["kiosk", "enroll", "hall-1"])

    assert result.exit_code == 0, result.output
    assert "works once" in result.output
    terminal = db.session.execute(select(Terminal).where(Terminal.name == "hall-1")).scalar_one()
    assert timedelta(minutes=14) < terminal.enrolment_expires_at - before <= timedelta(minutes=15, seconds=5)
    assert terminal.credential_hash is None
    assert [a for a, _ in audit_actions()] == ["kiosk.enrolment_issued"]


def test_enroll_command_takes_a_base_url_and_a_reader(runner):
    result = runner.invoke(args=["kiosk", "enroll", "hall-2", "--base-url", "https://pay.example.org/",
                                 "--reader", "tmr_FAKE123"])

    assert result.exit_code == 0, result.output
    assert result.output.strip().splitlines()[-1].startswith("https://pay.example.org/kiosk/enrol/")
    assert db.session.execute(select(Terminal.reader_id).where(Terminal.name == "hall-2")).scalar() == "tmr_FAKE123"


def test_opening_the_link_shows_a_confirmation_and_uses_nothing(runner, client):
    path = link_path(runner.invoke(args=["kiosk", "enroll", "hall-1"]).output)

    page = client.get(path)

    assert page.status_code == 200
    assert "Enrol this kiosk" in page.get_data(as_text=True)
    assert client.get_cookie(services.COOKIE_NAME, path="/kiosk") is None
    assert client.get(path).status_code == 200  # a link preview did not use it up


def test_the_enrolment_code_works_once(runner, client, app):
    path = link_path(runner.invoke(args=["kiosk", "enroll", "hall-1"]).output)

    first = client.post(path)
    other = app.test_client()
    second = other.post(path)

    assert first.status_code == 303 and first.headers["Location"] == "/kiosk"
    cookie = client.get_cookie(services.COOKIE_NAME, path="/kiosk")
    assert cookie.http_only and cookie.same_site == "Strict" and cookie.path == "/kiosk"
    assert not cookie.secure  # development; see the production test
    assert cookie.expires > utcnow() + timedelta(days=300)  # long-lived
    assert second.status_code == 404
    assert other.get_cookie(services.COOKIE_NAME, path="/kiosk") is None
    assert other.get(path).status_code == 404
    assert client.get("/kiosk").status_code == 200
    actions = [a for a, _ in audit_actions()]
    assert actions[:2] == ["kiosk.enrolment_issued", "kiosk.enrolled"]
    assert "kiosk.enrolment_refused" in actions


def test_an_expired_enrolment_code_is_refused_and_audited(runner, client):
    path = link_path(runner.invoke(args=["kiosk", "enroll", "hall-1"]).output)
    terminal = db.session.execute(select(Terminal)).scalar_one()
    terminal.enrolment_expires_at = utcnow() - timedelta(seconds=1)
    db.session.commit()

    response = client.post(path)

    assert response.status_code == 410
    assert "expired" in response.get_data(as_text=True)
    assert client.get_cookie(services.COOKIE_NAME, path="/kiosk") is None
    action, details = audit_actions()[-1]
    assert action == "kiosk.enrolment_refused" and details["reason"] == "expired" and details["count"] == 1


def test_a_mistyped_code_is_refused_without_touching_any_terminal(client):
    for code in ["x" * 32, "short", "%27%3B--" * 5, "a" * 500]:
        response = client.post(f"/kiosk/enrol/{code}")
        assert response.status_code == 404, code
        assert response.mimetype == "text/html"


def test_enrolment_from_another_site_is_refused(client):
    enrolment = services.enrol_terminal("hall-1", "test")

    response = client.post(enrolment.path, headers={"Origin": "https://evil.example"})

    assert response.status_code == 403
    assert client.post(enrolment.path).status_code == 303  # the code was not used up


@in_both_languages
def test_enrolment_from_another_site_is_refused_in_the_kiosks_language(app, client):
    enrolment = services.enrol_terminal("hall-1", "test")

    response = client.post(enrolment.path, headers={"Origin": "https://evil.example"})

    assert response.status_code == 403
    assert translated(app, "This form must be sent from this page.") in response.get_data(as_text=True)


def test_credential_and_code_are_stored_only_as_hashes(client):
    enrolment = services.enrol_terminal("hall-1", "test")
    code_hash = db.session.get(Terminal, enrolment.terminal_id).enrolment_code_hash
    kiosk = enrol(client, "hall-2")
    terminal = kiosk.terminal

    assert enrolment.code not in code_hash and len(code_hash) == 64
    assert terminal.credential_hash != kiosk.credential and len(terminal.credential_hash) == 64
    assert terminal.enrolment_code_hash is None
    flat = repr(audit_actions())
    assert kiosk.credential not in flat and enrolment.code not in flat


def test_re_enrolling_replaces_the_credential(client, app):
    old = enrol(client, "hall-1")
    fresh = app.test_client()

    enrol(fresh, "hall-1")

    assert fresh.get("/kiosk").status_code == 200
    assert old.client.get("/kiosk").status_code == 401


def test_revoke_stops_the_credential_at_once(client, runner):
    kiosk = enrol(client)

    result = runner.invoke(args=["kiosk", "revoke", "hall-1"])

    assert result.exit_code == 0, result.output
    api = client.post("/kiosk/api/sessions", json={})
    assert api.status_code == 403 and api.get_json()["code"] == "terminal_revoked"
    page = client.get("/kiosk")
    assert page.status_code == 403 and "switched off" in page.get_data(as_text=True)
    assert kiosk.terminal.revoked_at is not None
    actions = audit_actions()
    assert ("kiosk.revoked", {"name": "hall-1"}) in actions
    assert actions[-1][0] == "kiosk.credential_refused" and actions[-1][1]["reason"] == "revoked"


def test_revoking_also_kills_an_unused_enrolment_link(client, runner):
    enrolment = services.enrol_terminal("hall-1", "test")
    runner.invoke(args=["kiosk", "revoke", "hall-1"])

    assert client.post(enrolment.path).status_code == 404


def test_a_revoked_terminal_can_be_enrolled_again(client, runner):
    enrol(client)
    runner.invoke(args=["kiosk", "revoke", "hall-1"])

    enrol(client)

    assert client.get("/kiosk").status_code == 200


def test_revoke_or_enroll_with_a_bad_name_fails_cleanly(runner):
    assert runner.invoke(args=["kiosk", "revoke", "nobody"]).exit_code == 1
    bad = runner.invoke(args=["kiosk", "enroll", "no spaces/here"])
    assert bad.exit_code == 1 and "terminal name" in bad.output


def test_list_shows_each_terminal_with_its_last_heartbeat(client, runner):
    enrol(client, "hall-1")
    services.enrol_terminal("hall-2", "test")
    assert client.post("/kiosk/api/heartbeat", json={}).status_code == 200

    result = runner.invoke(args=["kiosk", "list"])

    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].split()[:3] == ["NAME", "STATUS", "LAST"]
    hall1 = next(line for line in lines if line.startswith("hall-1"))
    hall2 = next(line for line in lines if line.startswith("hall-2"))
    assert "active" in hall1 and "never" not in hall1 and " yes " in hall1
    assert "awaiting enrolment" in hall2 and "never" in hall2


def test_list_terminals_reports_status_for_the_staff_console(client):
    enrol(client, "a-active")
    services.enrol_terminal("b-pending", "test")
    services.enrol_terminal("c-revoked", "test")
    services.revoke_terminal("c-revoked", "supervisor:ann")
    stale = services.enrol_terminal("d-stale", "test")
    db.session.get(Terminal, stale.terminal_id).enrolment_expires_at = utcnow() - timedelta(minutes=1)
    db.session.commit()

    summary = {t.name: t for t in services.list_terminals()}

    assert [summary[n].status for n in ("a-active", "b-pending", "c-revoked", "d-stale")] == [
        services.ACTIVE, services.AWAITING_ENROLMENT, services.REVOKED, services.ENROLMENT_EXPIRED]
    assert summary["a-active"].credential_expires_at > utcnow() + timedelta(days=364)
    assert summary["c-revoked"].revoked_at is not None
