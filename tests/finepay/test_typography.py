"""Chinese typography: one date style per language, one word per state, due dates that say the day counts."""
import re
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from babel.messages.pofile import read_po
from flask import g
from flask_babel import force_locale

from finepay.formatting import day, when
from finepay.i18n import status_label
from tests.conftest import in_app_language, in_both_languages, translated
from tests.factories import make_violation
from tests.payments.helpers import end_session_after_each_request
from tests.staff.helpers import make_supervisor, paid_payment, sign_in_as
from violations.fees import PrcLateFeePolicy, business_today

CATALOGUE = Path(__file__).resolve().parents[2] / "translations" / "zh_Hans_CN" / "LC_MESSAGES" / "messages.po"
ISO_DATE = re.compile(r"\b\d{4}-\d{2}-\d{2}\b")
CHINESE_DATE = re.compile(r"\d{4}年\d{1,2}月\d{1,2}日")


@pytest.fixture
def app_config():
    """Chinese, as production serves pages by default."""
    return {"DEFAULT_LOCALE": "zh_CN"}


@pytest.fixture(autouse=True)
def _each_request_starts_afresh(app):
    """Every request forgets the previous one's user, language and session, as in production."""
    @app.before_request
    def _forget_the_previous_user():
        g.pop("_login_user", None)
        g.pop("_flask_babel", None)

    end_session_after_each_request(app)


@pytest.mark.parametrize("header, a_day, a_time", [
    ("zh-CN", "2026年11月30日", "2026年11月30日 14:05"),
    ("en", "30 Nov 2026", "30 Nov 2026, 14:05"),
])
def test_dates_and_times_are_written_one_way_per_language(app, header, a_day, a_time):
    with app.test_request_context("/", headers={"Accept-Language": header}):
        assert day(date(2026, 11, 30)) == a_day
        assert when(datetime(2026, 11, 30, 6, 5, tzinfo=UTC)) == a_time  # 14:05 in the business time zone


def test_a_chinese_page_writes_every_date_the_chinese_way(app, client):
    make_violation(plate="蒙B12345", vin_last6="A12345", decision_date=business_today("Asia/Shanghai"))
    payment, violation = paid_payment()
    results = client.post("/lookup", data={"plate": "蒙B12345", "proof": "vin", "vin_last6": "A12345"})
    console = sign_in_as(client, make_supervisor())
    pages = {
        "results": results,
        "receipt": client.get(f"/receipts/{payment.receipt_number}"),
        "staff payment": console.get(f"/staff/payments/{payment.id}"),
        "staff violation": console.get(f"/staff/violations/{violation.id}"),
        "dashboard": console.get("/staff/"),
    }

    for name, response in pages.items():
        text = re.sub(r"<[^>]+>", " ", response.get_data(as_text=True))
        assert not ISO_DATE.search(text), (name, ISO_DATE.search(text).group(0))
        assert CHINESE_DATE.search(text), name


@in_both_languages
def test_the_due_date_says_that_the_day_itself_still_counts(app, client):
    due_today = business_today("Asia/Shanghai")
    decided = due_today - timedelta(days=PrcLateFeePolicy().grace_days)
    make_violation(plate="蒙B12345", vin_last6="A12345", decision_date=decided)

    page = client.post("/lookup", data={"plate": "蒙B12345", "proof": "vin", "vin_last6": "A12345"})

    with in_app_language(app):
        due = day(due_today)
    assert translated(app, "Pay by %(date)s (inclusive) to avoid a late fee.", date=due) in page.get_data(as_text=True)
    # ...as the late fee counts it: nothing on the due date itself, the first day's fee the day after.
    assert PrcLateFeePolicy().days_overdue(decided, due_today) == 0
    assert PrcLateFeePolicy().days_overdue(decided, due_today + timedelta(days=1)) == 1


def test_each_state_has_one_chinese_word(app):
    with app.test_request_context(), force_locale("zh_CN"):
        assert [status_label(s) for s in ("unpaid", "paid", "refunded")] == ["未缴", "已缴", "已退款"]
    with open(CATALOGUE, "rb") as handle:
        catalog = read_po(handle, locale="zh_Hans_CN")
    others = re.compile("待缴|已缴清|未支付|已支付|未付款|已付款")
    strings = [s for m in catalog if m.id for s in (m.string if isinstance(m.string, tuple) else [m.string])]
    assert [s for s in strings if others.search(s)] == []
