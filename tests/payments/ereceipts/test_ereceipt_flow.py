"""Official e-receipts end to end through HTTP, on SQLite and PostgreSQL: paying issues one, refunding a line
red-flushes it and issues one for what remains, and an e-receipt service that is down never holds up a payment."""
import re
from html import unescape

from flask import current_app
from flask_migrate import downgrade, upgrade
from sqlalchemy import func, select, update

from finepay.dbtypes import utcnow
from finepay.extensions import db
from payments import ereceipt_requests, services
from payments.ereceipts import EReceiptItem, IssueRequest, current_issuer
from payments.ereceipts.sandbox import SandboxEReceipt
from payments.models import EREQUEST_DONE, EREQUEST_PENDING, EReceiptRequest, IssuedEReceipt
from tests.conftest import translated
from tests.migrations import model_diffs, revision_below
from tests.payments.helpers import confirm, create_ok, fresh_violation, overdue_violation, payment_row
from tests.payments.test_race import run_together
from tests.staff.helpers import make_supervisor, sign_in_as

RETRIERS = 8


def pay(client, *violations):
    payment = create_ok(client, [v.id for v in violations])
    body = confirm(client, payment["id"]).get_json()
    assert body["status"] == "succeeded"
    return body


def receipt_json(client, number):
    response = client.get(f"/api/v1/receipts/{number}")
    assert response.status_code == 200
    return response.get_json()


def receipt_page(client, number):
    response = client.get(f"/receipts/{number}")
    assert response.status_code == 200
    return unescape(response.get_data(as_text=True))


def verify(client, ereceipt, check=None):
    url = ereceipt["verification_url"]
    path = url[url.index("/ereceipts/"):]
    if check is not None:
        path = path.replace(f"check={ereceipt['check_code']}", f"check={check}")
    response = client.get(path)
    return response.status_code, unescape(response.get_data(as_text=True))


def reconciliation(console):
    # A fresh app context: the test's own (shared by every request it makes) keeps the driver pages' anonymous
    # user in g, where Flask-Login looks first.
    with current_app.app_context():
        response = console.get("/staff/reconciliation")
    assert response.status_code == 200, response.headers.get("Location")
    return unescape(response.get_data(as_text=True))


def counts():
    db.session.expire_all()
    return (db.session.execute(select(func.count()).select_from(SandboxEReceipt)).scalar(),
            db.session.execute(select(func.count()).select_from(IssuedEReceipt)).scalar())


def make_due():
    """Let every waiting request's next try come now (instead of waiting a minute)."""
    db.session.execute(update(EReceiptRequest).values(next_try_at=utcnow()))
    db.session.commit()


def requests_of(payment_id):
    db.session.expire_all()
    return db.session.execute(select(EReceiptRequest).where(EReceiptRequest.payment_id == payment_id)
                              .order_by(EReceiptRequest.id)).scalars().all()


def test_paying_issues_the_official_ereceipt_shown_on_the_receipt_with_its_qr_code(app, client):
    fine, late = fresh_violation(fine=20000), overdue_violation(fine=5000)
    paid = pay(client, fine, late)

    receipt = receipt_json(client, paid["receipt_number"])

    ereceipt = receipt["ereceipt"]
    assert receipt["ereceipt_pending"] is False and len(receipt["ereceipts"]) == 1
    assert re.fullmatch(r"\d{8}", ereceipt["code"]) and re.fullmatch(r"\d{10}", ereceipt["number"])
    assert re.fullmatch(r"[0-9a-f]{6}", ereceipt["check_code"])
    assert ereceipt["code"][:2] == "15" and ereceipt["code"][-2:] == f"{utcnow().year % 100:02d}"
    assert ereceipt["payer"] == receipt["plate"] and ereceipt["authority"] == app.config["AUTHORITY_NAME"]
    late_fee = payment_row(paid["id"]).items[1].late_fee
    assert late_fee > 0
    assert ereceipt["items"] == [
        {"kind": "fine", "notice_number": fine.notice_number, "amount": 20000},
        {"kind": "fine", "notice_number": late.notice_number, "amount": 5000},
        {"kind": "late_fee", "notice_number": late.notice_number, "amount": late_fee},
    ]
    assert ereceipt["amount"] == 25000 + late_fee and ereceipt["kind"] == "blue" and ereceipt["sandbox"] is True
    page = receipt_page(client, paid["receipt_number"])
    assert f'id="ereceipt-code">{ereceipt["code"]}<' in page
    assert f'id="ereceipt-number">{ereceipt["number"]}<' in page
    assert f'id="ereceipt-check-code">{ereceipt["check_code"]}<' in page
    assert ereceipt["verification_url"] in page
    assert page.count("<svg") == 2  # the receipt's own QR code and the e-receipt's
    status, verified = verify(client, ereceipt)
    assert status == 200 and translated(app, "This e-receipt was issued and is in force.") in verified
    assert "SANDBOX" in verified


def test_a_wrong_check_code_verifies_nothing(app, client):
    paid = pay(client, fresh_violation(fine=20000))
    ereceipt = receipt_json(client, paid["receipt_number"])["ereceipt"]
    wrong = "000000" if ereceipt["check_code"] != "000000" else "111111"

    status, page = verify(client, ereceipt, check=wrong)

    assert status == 404
    assert translated(app, "No e-receipt has this code, number and check code. Check the three against the "
                           "e-receipt.") in page
    assert ereceipt["payer"] not in page


def test_refunding_one_line_red_flushes_the_ereceipt_and_issues_one_for_what_remains(app, client):
    kept, returned = fresh_violation(fine=20000), fresh_violation(fine=5000)
    paid = pay(client, kept, returned)
    console = sign_in_as(app.test_client(), make_supervisor("boss"))
    line = next(item.id for item in payment_row(paid["id"]).items if item.violation_id == returned.id)

    response = console.post(f"/staff/payments/{paid['id']}/refund", data={
        "reason": "Appeal upheld in part", "form_key": "a" * 32, "lines": [str(line)]})
    assert response.status_code in (302, 303)

    first, red, second = receipt_json(client, paid["receipt_number"])["ereceipts"]
    assert first["kind"] == "blue" and first["red_flushed"] is True and first["amount"] == 25000
    assert red["kind"] == "red" and red["amount"] == -25000
    assert red["flushes"] == {"code": first["code"], "number": first["number"]}
    assert [i["amount"] for i in red["items"]] == [-20000, -5000]
    assert second["kind"] == "blue" and second["red_flushed"] is False
    assert second["items"] == [{"kind": "fine", "notice_number": kept.notice_number, "amount": 20000}]
    assert int(second["number"]) > int(red["number"]) > int(first["number"])
    assert receipt_json(client, paid["receipt_number"])["ereceipt"]["number"] == second["number"]
    page = receipt_page(client, paid["receipt_number"])
    assert 'id="ereceipt-history"' in page
    assert translated(app, "Cancels %(code)s %(number)s", code=first["code"], number=first["number"]) in page
    assert f'id="ereceipt-number">{second["number"]}<' in page
    status, verified = verify(client, first)
    assert status == 200
    assert translated(app, "This e-receipt was issued, then cancelled by a red-flush.") in verified
    staff_page = unescape(console.get(f"/staff/payments/{paid['id']}").get_data(as_text=True))
    assert f'id="ereceipt-number">{second["number"]}<' in staff_page and 'id="ereceipt-history"' in staff_page


def test_refunding_the_whole_payment_red_flushes_it_and_issues_nothing_new(app, client):
    paid = pay(client, fresh_violation(fine=20000))
    services.refund_payment(paid["id"], amount=20000, reason="appeal upheld", actor="staff:x")

    receipt = receipt_json(client, paid["receipt_number"])
    assert [e["kind"] for e in receipt["ereceipts"]] == ["blue", "red"]
    assert receipt["ereceipt"] is None and receipt["ereceipt_pending"] is False
    assert translated(app, "No e-receipt is in force: the refund cancelled it with a red-flush.") in \
        receipt_page(client, paid["receipt_number"])


def test_when_the_ereceipt_service_is_down_the_payment_succeeds_and_sync_issues_it_later(app, client, runner):
    console = sign_in_as(app.test_client(), make_supervisor("boss"))
    app.config["ERECEIPT_SANDBOX_DOWN"] = True
    paid = pay(client, fresh_violation(fine=20000))

    (request,) = requests_of(paid["id"])
    assert request.status == EREQUEST_PENDING and request.attempts == 1
    assert request.last_error == "ereceipt_unavailable" and request.next_try_at > utcnow()
    receipt = receipt_json(client, paid["receipt_number"])
    assert receipt["status"] == "succeeded" and receipt["ereceipt"] is None and receipt["ereceipt_pending"] is True
    assert translated(app, "Your payment is complete. The official e-receipt is on its way: it appears here as soon "
                           "as the e-receipt service issues it.") in receipt_page(client, paid["receipt_number"])
    report = reconciliation(console)
    assert f'<tr data-payment="{paid["id"]}">' in report.split('id="without-ereceipt"')[1].split("</section>")[0]

    assert "0 ereceipts issued" in runner.invoke(args=["payments", "sync"]).output  # not due yet
    make_due()
    assert "1 ereceipts failed" in runner.invoke(args=["payments", "sync"]).output  # still down: tried again
    assert requests_of(paid["id"])[0].attempts == 2
    app.config["ERECEIPT_SANDBOX_DOWN"] = False
    make_due()
    output = runner.invoke(args=["payments", "sync"]).output
    assert "1 ereceipts issued" in output, output

    assert requests_of(paid["id"])[0].status == EREQUEST_DONE
    assert receipt_json(client, paid["receipt_number"])["ereceipt"]["amount"] == 20000
    make_due()
    runner.invoke(args=["payments", "sync"])
    assert runner.invoke(args=["ereceipts", "issue"]).output.startswith("0 done")
    assert counts() == (1, 1)  # one e-receipt at the issuer, one recorded: no duplicate
    report = reconciliation(console)
    assert 'id="all-ereceipts-issued"' in report


def test_an_issuer_that_breaks_unexpectedly_never_fails_the_payment(app, client, monkeypatch):
    def broken(request):
        raise RuntimeError("the platform answered garbage")

    monkeypatch.setattr(current_issuer(), "issue", broken)
    paid = pay(client, fresh_violation(fine=20000))

    (request,) = requests_of(paid["id"])
    assert request.status == EREQUEST_PENDING and request.last_error == "RuntimeError"
    assert payment_row(paid["id"]).status == "succeeded"


def test_a_refund_waits_behind_an_ereceipt_not_yet_issued_and_then_one_ereceipt_covers_what_remains(app, client):
    app.config["ERECEIPT_SANDBOX_DOWN"] = True
    kept, returned = fresh_violation(fine=20000), fresh_violation(fine=5000)
    paid = pay(client, kept, returned)
    line = next(item.id for item in payment_row(paid["id"]).items if item.violation_id == returned.id)
    services.refund_payment(paid["id"], item_ids=[line], reason="appeal upheld", actor="staff:x")
    app.config["ERECEIPT_SANDBOX_DOWN"] = False
    make_due()

    assert ereceipt_requests.issue_pending() == {"done": 2, "failed": 0, "skipped": 0}

    receipt = receipt_json(client, paid["receipt_number"])
    assert [e["kind"] for e in receipt["ereceipts"]] == ["blue"]  # nothing to red-flush: issued as it stands now
    assert receipt["ereceipt"]["amount"] == 20000


def test_two_retriers_at_once_make_exactly_one_ereceipt(app, client, database_url):
    app.config["ERECEIPT_SANDBOX_DOWN"] = True
    paid = pay(client, fresh_violation(fine=20000))
    make_due()
    db.session.remove()

    def retry(_client):
        return ereceipt_requests.issue_pending()

    results = run_together(database_url, RETRIERS, retry)

    assert not [r for r in results if "exception" in r], results
    assert sum(r["done"] for r in results) == 1
    assert sum(r["failed"] for r in results) == 0
    assert counts() == (1, 1)
    assert requests_of(paid["id"])[0].status == EREQUEST_DONE


def test_a_worker_that_lost_its_lease_gets_the_issuers_first_answer_not_a_second_ereceipt(app, client):
    app.config["ERECEIPT_SANDBOX_DOWN"] = True
    paid = pay(client, fresh_violation(fine=20000))
    app.config["ERECEIPT_SANDBOX_DOWN"] = False
    (request,) = requests_of(paid["id"])
    # A worker asked the issuer and died before recording the answer: the issuer has it under the request's key.
    first = current_issuer().issue(IssueRequest(
        idempotency_key=f"{request.idempotency_key}:blue", payer="蒙B12345", authority="x", currency="CNY",
        items=(EReceiptItem("fine", "N", 20000),), payment_id=paid["id"], receipt_number="R"))
    make_due()

    assert ereceipt_requests.issue_pending()["done"] == 1

    assert receipt_json(client, paid["receipt_number"])["ereceipt"]["number"] == first.number
    assert counts() == (1, 1)


def test_the_migration_matches_the_models_and_downgrades(app):
    for table in ("ereceipt_requests", "ereceipts", "sandbox_ereceipts"):
        assert model_diffs(table) == []
    db.session.remove()
    downgrade(revision=revision_below("0014_ereceipts"))
    upgrade()  # back to the head, for the tests that share this database
    assert model_diffs("ereceipt") == []
