"""A violation with an instalment plan at a kiosk: shown with its next instalment, never offered whole."""
from datetime import timedelta
from html import unescape

import pytest

from finepay.formatting import day, format_money
from tests.conftest import in_app_language, in_both_languages, translated
from tests.kiosk.helpers import enrol, pay, prove, start_visit, vehicle
from violations.fees import business_today
from violations.services import approve_plan


@pytest.fixture
def kiosk(client):
    """An enrolled kiosk."""
    return enrol(client)


@in_both_languages
def test_a_planned_violation_is_listed_as_paid_online_by_instalments_and_cannot_be_paid_whole(app, kiosk, client):
    planned, other = vehicle()
    today = business_today(app.config["BUSINESS_TIMEZONE"])
    due = [today + timedelta(days=30), today + timedelta(days=60)]
    plan = approve_plan(planned, due_dates=due, actor="boss")
    with in_app_language(app):
        note = translated(app, "Paid in instalments: pay instalment %(number)d of %(count)d (%(amount)s, due "
                               "%(date)s) online, not at a kiosk.", number=1, count=2,
                          amount=format_money(plan.instalments[0].amount), date=day(due[0]))
    headers = start_visit(client)
    screen = prove(client, headers)
    assert screen.status_code == 200
    html = unescape(screen.get_json()["html"])
    assert f'data-id="{other}"' in html
    assert f'data-id="{planned}"' not in html  # not a row the driver can tick
    assert "kviolation-plan" in html
    assert note in html
    response = pay(client, headers, [planned], key="0" * 32)
    assert response.status_code == 422
