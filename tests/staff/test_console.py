"""The console's pages and actions: dashboard, search, a payment's page, refunds and voids."""
import html
import re

import pytest
from sqlalchemy import select

from finepay import audit
from finepay.extensions import db
from finepay.formatting import format_money
from kiosk.models import Terminal
from kiosk.services import enrol_terminal
from payments.models import Refund
from tests.conftest import both_languages, in_app_language, in_both_languages, translated, translated_plural
from tests.payments.helpers import (
    OTHER_PLATE,
    OTHER_VIN,
    create_ok,
    overdue_violation,
    payment_row,
    sandbox_refunds,
    set_payment,
)
from tests.staff.helpers import audit_actions, last_audit, make_supervisor, make_user, paid_payment, sign_in_as
from violations.models import Violation


@pytest.fixture
def supervisor(client):
    return sign_in_as(client, make_supervisor("boss"))


def violation_row(violation_id):
    db.session.expire_all()
    return db.session.get(Violation, violation_id)


def form_key(page):
    return re.search(r'name="form_key" type="hidden" value="([0-9a-f]{32})"', page).group(1)


# --- reading ---------------------------------------------------------------------------


def test_the_dashboard_shows_todays_payments_by_channel(supervisor):
    paid_payment(fine=20000)
    paid_payment(fine=10000)

    page = supervisor.get("/staff/").get_data(as_text=True)

    today_total = page.split('id="today-total"')[1].split("</section>")[0]
    assert "¥345.00" in today_total and "2 payments" in today_total  # 200 + 100, each with 15 % late fee
    by_channel = page.split('id="today-by-channel"')[1].split("</section>")[0]
    assert "<td>web</td>" in by_channel
    assert page.count('href="/staff/payments/pay_') == 2


@pytest.mark.parametrize("query_of", [
    lambda p, v: p.plate, lambda p, v: "蒙b·12345", lambda p, v: v.notice_number,
    lambda p, v: p.receipt_number, lambda p, v: p.receipt_number.lower().replace("-", " "),
])
def test_search_finds_a_payment_by_plate_notice_or_receipt(supervisor, query_of):
    payment, violation = paid_payment()
    paid_payment(plate=OTHER_PLATE, vin_last6=OTHER_VIN)

    page = supervisor.post("/staff/search", data={"q": query_of(payment, violation)}).get_data(as_text=True)

    assert payment.id in page
    assert violation.notice_number in page
    assert OTHER_PLATE not in page


def test_search_by_payment_id_goes_straight_to_the_payment(supervisor):
    payment, _violation = paid_payment()

    response = supervisor.post("/staff/search", data={"q": payment.id.upper()})

    assert response.status_code == 302
    assert response.headers["Location"] == f"/staff/payments/{payment.id}"


@in_both_languages
def test_search_by_payment_id_goes_straight_to_the_payment_in_either_language(app, supervisor):
    payment, _violation = paid_payment()

    response = supervisor.post("/staff/search", data={"q": payment.id})

    assert response.status_code == 302
    assert response.headers["Location"] == f"/staff/payments/{payment.id}"
    page = supervisor.get(response.headers["Location"]).get_data(as_text=True)
    assert translated(app, "Refund") in page


@in_both_languages
def test_search_by_plate_says_how_it_understood_the_query_in_either_language(app, supervisor):
    payment, violation = paid_payment()

    page = supervisor.post("/staff/search", data={"q": payment.plate}).get_data(as_text=True)

    assert translated(app, "Searched as: %(kinds)s.", kinds=translated(app, "plate")) in page
    assert payment.id in page and violation.notice_number in page


@in_both_languages
def test_the_violation_page_gives_the_offense_and_its_points_in_the_staff_members_language(app, supervisor):
    violation = overdue_violation()

    page = supervisor.get(f"/staff/violations/{violation.id}").get_data(as_text=True)

    # One message, so that Chinese gets its full-width brackets with no space before them: 超速（6 分）.
    assert translated_plural(app, "%(description)s (%(num)d point)", "%(description)s (%(num)d points)",
                             violation.points, description=violation.description) in page
    if app.config["DEFAULT_LOCALE"] == "zh_CN":
        assert f"（{violation.points} 分）" in page


@in_both_languages
def test_the_consoles_refusals_are_in_the_staff_members_language(app, client):
    sign_in_as(client, make_user("clerk"))

    forbidden = client.get("/staff/users")
    missing = client.post("/staff/sessions/999999/end")  # no such session of hers

    assert forbidden.status_code == 403
    assert translated(app, "Only a supervisor can do this. Ask a supervisor if it needs doing.") \
        in forbidden.get_data(as_text=True)
    assert missing.status_code == 404
    assert translated(app, "There is no such page in the console.") in missing.get_data(as_text=True)


@both_languages(WTF_CSRF_ENABLED=True)
def test_an_expired_console_form_is_explained_in_the_staff_members_language(app, client):
    sign_in_as(client, make_supervisor("boss"))

    response = client.post("/staff/keys", data={"name": "another system"})

    assert response.status_code == 400
    expected = translated(app, "This form has expired, so nothing was done. Go back, reload the page and try again.")
    assert expected in response.get_data(as_text=True)


@pytest.mark.parametrize("query", ["京Z99999", "' OR 1=1 --", "x" * 64, "<script>alert(1)</script>", "%", "pay_"])
def test_search_for_nothing_or_nonsense_finds_nothing(supervisor, query):
    paid_payment()

    response = supervisor.post("/staff/search", data={"q": query})

    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert 'id="no-results"' in page
    assert "<script>alert" not in page


def test_an_empty_search_is_explained_beside_the_box(supervisor):
    response = supervisor.post("/staff/search", data={"q": ""})

    assert response.status_code == 422
    assert 'id="q-error"' in response.get_data(as_text=True)


def test_the_payment_page_shows_items_gateway_references_and_the_audit_trail(supervisor):
    payment, violation = paid_payment()

    page = supervisor.get(f"/staff/payments/{payment.id}").get_data(as_text=True)

    assert violation.notice_number in page
    assert payment.gateway_intent_id in page
    assert payment.receipt_number in page
    trail = page.split('id="audit-trail"')[1]
    for action in ("payment.created", "payment.processing", "payment.succeeded"):
        assert action in trail
    assert 'id="refund-form"' in page


# --- refunds -------------------------------------------------------------------------------


def confirm_form(page):
    """The fields the confirm screen posts, as a browser would send them."""
    form = page.split('id="refund-confirm-form"')[1].split("</form>")[0]
    fields = {}
    for name, value in re.findall(r'<input[^>]*\bname="([^"]+)"[^>]*\bvalue="([^"]*)"', form):
        fields.setdefault(name, []).append(html.unescape(value))
    return fields


def test_the_refund_form_starts_empty_not_with_the_whole_payment(supervisor):
    payment, _violation = paid_payment()

    page = supervisor.get(f"/staff/payments/{payment.id}").get_data(as_text=True)

    form = page.split('id="refund-form"')[1].split("</form>")[0]
    assert 'type="checkbox"' in form and "checked" not in form
    assert re.search(r'<input[^>]*name="amount"[^>]*value=""', form)


@in_both_languages
def test_reviewing_a_refund_moves_no_money_and_repeats_the_violations_amount_and_reason(app, supervisor):
    payment, violation = paid_payment()
    key = form_key(supervisor.get(f"/staff/payments/{payment.id}").get_data(as_text=True))

    response = supervisor.post(f"/staff/payments/{payment.id}/refund/review", data={
        "lines": [str(payment.items[0].id)], "reason": "Decision withdrawn on appeal", "form_key": key})

    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert translated(app, "Confirm the refund") in page
    lines = page.split('id="refund-confirm-lines"')[1].split("</table>")[0]
    with in_app_language(app):
        amount = format_money(23000)
    assert violation.notice_number in lines and violation.description in lines
    assert translated(app, "owed again") in lines
    assert amount in page.split('id="refund-confirm-amount"')[1].split("</td>")[0]
    assert "Decision withdrawn on appeal" in page.split('id="refund-confirm-reason"')[1].split("</dd>")[0]
    assert translated(app, "Refund %(amount)s", amount=amount) in page
    assert payment_row(payment.id).refunds == []
    assert sandbox_refunds(payment.gateway_intent_id) == []
    assert violation_row(violation.id).status == "paid"
    assert "refund.created" not in audit_actions(subject_id=payment.id)


@in_both_languages
def test_a_supervisor_refunds_from_the_payment_page_in_their_language(app, supervisor):
    payment, _violation = paid_payment()
    page = supervisor.get(f"/staff/payments/{payment.id}").get_data(as_text=True)
    assert translated(app, "Review the refund") in page
    review = supervisor.post(f"/staff/payments/{payment.id}/refund/review", data={
        "amount": "230.00", "reason": "Decision withdrawn on appeal", "form_key": form_key(page)})

    done = supervisor.post(f"/staff/payments/{payment.id}/refund", data=confirm_form(review.get_data(as_text=True)),
                           follow_redirects=True)

    with in_app_language(app):
        amount = format_money(23000)
    said = translated_plural(app, "Refunded %(amount)s. %(num)d violation is owed again.",
                             "Refunded %(amount)s. %(num)d violations are owed again.", 1, amount=amount)
    assert said in done.get_data(as_text=True)
    assert payment_row(payment.id).status == "refunded"


def test_a_supervisor_refunds_and_the_fines_are_owed_again(supervisor, client):
    payment, violation = paid_payment()
    key = form_key(supervisor.get(f"/staff/payments/{payment.id}").get_data(as_text=True))

    response = supervisor.post(f"/staff/payments/{payment.id}/refund", data={
        "amount": "230.00", "reason": "Decision withdrawn on appeal", "form_key": key})

    assert response.status_code == 303
    refunded = payment_row(payment.id)
    assert refunded.status == "refunded"
    (refund,) = refunded.refunds
    assert (refund.amount, refund.status, refund.actor) == (23000, "succeeded", "staff:boss")
    assert refund.idempotency_key == f"staff:{payment.id}:{key}"
    assert [r.amount for r in sandbox_refunds(payment.gateway_intent_id)] == [23000]
    assert violation_row(violation.id).status == "unpaid"
    assert re.search(r"Refunded \S*¥230\.00\. 1 violation is owed again",
                     supervisor.get(response.headers["Location"]).get_data(as_text=True))
    receipt = client.get(f"/receipts/{payment.receipt_number}").get_data(as_text=True)
    assert "Refunded on" in receipt and re.search(r"−\S*¥230\.00", receipt)
    assert "Refunded: this fine is owed again" in receipt and "Already paid before" not in receipt
    assert "refund.succeeded" in audit_actions(subject_id=payment.id)


@in_both_languages
def test_confirming_the_reviewed_refund_refunds_exactly_what_was_shown_once(app, supervisor):
    payment, violation = paid_payment()
    page = supervisor.get(f"/staff/payments/{payment.id}").get_data(as_text=True)
    review = supervisor.post(f"/staff/payments/{payment.id}/refund/review", data={
        "lines": [str(payment.items[0].id)], "amount": "30.00", "reason": "Late fee waived", "form_key": form_key(page)})
    confirmed = confirm_form(review.get_data(as_text=True))

    first = supervisor.post(f"/staff/payments/{payment.id}/refund", data=confirmed)
    second = supervisor.post(f"/staff/payments/{payment.id}/refund", data=confirmed)

    assert first.status_code == second.status_code == 303
    (refund,) = payment_row(payment.id).refunds
    assert (refund.amount, refund.reason, [line.amount for line in refund.lines]) == (3000, "Late fee waived", [3000])
    assert [r.amount for r in sandbox_refunds(payment.gateway_intent_id)] == [3000]
    assert violation_row(violation.id).status == "paid"


def test_clicking_refund_twice_refunds_once(supervisor):
    payment, _violation = paid_payment()
    key = form_key(supervisor.get(f"/staff/payments/{payment.id}").get_data(as_text=True))
    data = {"amount": "230.00", "reason": "Paid twice by mistake", "form_key": key}

    first = supervisor.post(f"/staff/payments/{payment.id}/refund", data=data)
    second = supervisor.post(f"/staff/payments/{payment.id}/refund", data=data)

    assert first.status_code == second.status_code == 303
    assert len(db.session.execute(select(Refund)).scalars().all()) == 1
    assert len(sandbox_refunds(payment.gateway_intent_id)) == 1


def test_a_partial_refund_leaves_the_rest_refundable(supervisor):
    payment, violation = paid_payment()

    supervisor.post(f"/staff/payments/{payment.id}/refund", data={
        "amount": "30.00", "reason": "Late fee waived", "form_key": "a" * 32})
    page = supervisor.get(f"/staff/payments/{payment.id}").get_data(as_text=True)

    assert payment_row(payment.id).refunded_amount == 3000
    assert re.search(r"Up to \S*¥200\.00 can be refunded", page)  # what is left
    assert violation_row(violation.id).status == "paid"  # a partial refund leaves the fine paid


@pytest.mark.parametrize("data, field, message", [
    ({"amount": "230.01", "reason": "Too much money"}, "amount", "larger than what is left to refund"),
    ({"reason": "Neither violations nor amount"}, "amount", "Tick the violations to refund, or enter an amount"),
    ({"lines": "x", "reason": "Not a line"}, "lines", "Invalid"),
    ({"amount": "0", "reason": "Nothing at all"}, "amount", "above zero"),
    ({"amount": "12.345", "reason": "Odd amount"}, "amount", "such as 230.00"),
    ({"amount": "-5", "reason": "Negative"}, "amount", "such as 230.00"),
    ({"amount": "1e3", "reason": "Exponent"}, "amount", "such as 230.00"),
    ({"amount": "10.00", "reason": ""}, "reason", "Say why"),
    ({"amount": "10.00", "reason": "abc"}, "reason", "at least 5"),
])
@pytest.mark.parametrize("step", ["refund/review", "refund"])
def test_a_bad_refund_is_explained_beside_the_field_and_nothing_moves(supervisor, data, field, message, step):
    payment, _violation = paid_payment()

    response = supervisor.post(f"/staff/payments/{payment.id}/{step}", data={**data, "form_key": "b" * 32})

    assert response.status_code == 422
    page = response.get_data(as_text=True)
    assert f'id="{field}-error"' in page and message in page
    assert payment_row(payment.id).refunds == []
    assert sandbox_refunds(payment.gateway_intent_id) == []


def test_a_payment_that_did_not_succeed_cannot_be_refunded(supervisor, client):
    violation = overdue_violation()
    created = create_ok(client, [violation.id])

    response = supervisor.post(f"/staff/payments/{created['id']}/refund", data={
        "amount": "1.00", "reason": "Not paid yet", "form_key": "c" * 32})

    assert response.status_code == 422
    assert "Only a succeeded payment can be refunded" in response.get_data(as_text=True)


def test_clerks_cannot_refund(client):
    payment, _violation = paid_payment()
    sign_in_as(client, make_user("clerk"))

    response = client.post(f"/staff/payments/{payment.id}/refund", data={
        "amount": "230.00", "reason": "I should not be able to", "form_key": "d" * 32})

    assert response.status_code == 403
    assert payment_row(payment.id).refunds == []


# --- voids -----------------------------------------------------------------------------------


def test_a_supervisor_voids_an_unpaid_violation(supervisor, client):
    violation = overdue_violation()

    response = supervisor.post(f"/staff/violations/{violation.id}/void", data={"reason": "Withdrawn on appeal"})

    assert response.status_code == 303
    assert violation_row(violation.id).status == "void"
    entry = last_audit("violation.voided")
    assert entry.actor == "staff:boss" and entry.details["reason"] == "Withdrawn on appeal"
    lookup = client.post("/api/v1/lookups", json={"plate": violation.plate, "vin_last6": violation.vin_last6})
    assert lookup.get_json()["total_due"] == 0


def test_a_void_never_touches_a_paid_violation(supervisor):
    _payment, violation = paid_payment()
    before = violation_row(violation.id)
    receipt = before.receipt_number

    response = supervisor.post(f"/staff/violations/{violation.id}/void", data={"reason": "Trying to void it"})

    assert response.status_code == 303
    after = violation_row(violation.id)
    assert (after.status, after.receipt_number) == ("paid", receipt)
    assert "Not voided: Only an unpaid violation" in supervisor.get(response.headers["Location"]).get_data(as_text=True)
    assert last_audit("violation.voided") is None


def test_a_violation_being_paid_cannot_be_voided(supervisor, client):
    violation = overdue_violation()
    create_ok(client, [violation.id])  # the payment now holds it

    supervisor.post(f"/staff/violations/{violation.id}/void", data={"reason": "Withdrawn on appeal"})

    assert violation_row(violation.id).status == "unpaid"
    page = supervisor.get(f"/staff/violations/{violation.id}").get_data(as_text=True)
    assert "A payment for this violation is in progress" in page


def test_a_void_needs_a_reason(supervisor):
    violation = overdue_violation()

    response = supervisor.post(f"/staff/violations/{violation.id}/void", data={"reason": " "})

    assert response.status_code == 422
    assert 'id="reason-error"' in response.get_data(as_text=True)
    assert violation_row(violation.id).status == "unpaid"


def test_clerks_cannot_void(client):
    violation = overdue_violation()
    sign_in_as(client, make_user("clerk"))

    assert client.post(f"/staff/violations/{violation.id}/void", data={"reason": "Withdrawn"}).status_code == 403
    assert violation_row(violation.id).status == "unpaid"


def test_a_search_is_posted_so_no_plate_goes_into_a_url(supervisor):
    payment, _violation = paid_payment()

    form = supervisor.get("/staff/search").get_data(as_text=True)
    results = supervisor.post("/staff/search", data={"q": payment.plate}).get_data(as_text=True)
    details = supervisor.get(f"/staff/payments/{payment.id}").get_data(as_text=True)

    assert 'method="post"' in form
    assert payment.id in results
    # The payment page's "more of this vehicle" is a posted form too, never a link with the plate in it.
    assert not any(payment.plate in href for href in re.findall(r'href="([^"]*)"', details))
    assert 'name="q" value="' + payment.plate + '"' in details


# --- kiosks by name -------------------------------------------------------------------------------


@in_both_languages
def test_kiosks_are_shown_by_name_not_by_number_across_the_console(app, supervisor):
    payment, _violation = paid_payment()
    enrol_terminal("hall-7", "test")
    terminal_id = db.session.execute(select(Terminal.id).where(Terminal.name == "hall-7")).scalar_one()
    set_payment(payment.id, channel="kiosk", terminal_id=terminal_id)
    audit.record("payment.created", "payment", payment.id, actor="kiosk", terminal_id=terminal_id)
    db.session.commit()
    named = translated(app, "kiosk %(name)s", name="hall-7")

    pages = {
        "payment": supervisor.get(f"/staff/payments/{payment.id}"),
        "search": supervisor.post("/staff/search", data={"q": payment.plate}),
        "dashboard": supervisor.get("/staff/"),
    }

    for name, response in pages.items():
        page = response.get_data(as_text=True)
        assert named in page, name
        assert f"#{terminal_id}" not in page, name
        assert translated(app, "kiosk") + " " + named not in page, name  # was 自助终端 （自助终端 hall-7）
    audit_page = supervisor.get("/staff/audit").get_data(as_text=True)
    assert "terminal:hall-7" in audit_page and f"terminal:{terminal_id}<" not in audit_page
    assert ">terminal_id<" not in audit_page and "</span>=hall-7</span>" in audit_page


@in_both_languages
def test_the_payment_and_refund_screens_name_the_gateway_in_words(app, supervisor):
    """A clerk reads 银行卡（沙箱）, not the adapter's code name (sandbox), where the money goes back through."""
    payment, _violation = paid_payment()
    label = translated(app, "Card (sandbox)")

    page = supervisor.get(f"/staff/payments/{payment.id}").get_data(as_text=True)
    confirm = supervisor.post(f"/staff/payments/{payment.id}/refund/review", data={
        "lines": [str(payment.items[0].id)], "reason": "checking", "form_key": form_key(page)}).get_data(as_text=True)

    with in_app_language(app):
        amount = format_money(payment.amount_received)
    assert html.escape(translated(app, "The money goes back through %(gateway)s. Up to %(amount)s can be refunded.",
                                  gateway=label, amount=amount), quote=False) in page
    assert html.escape(label, quote=False) in confirm and "through sandbox" not in confirm
