"""The driver's case pages and the staff console's cases, through HTTP, in Chinese and English."""
import html
import re

import pytest

from cases import services
from cases.models import Case
from finepay.extensions import db
from tests.cases.conftest import stored_files
from tests.cases.helpers import STATEMENT, form_file, jpeg_bytes, mp4_bytes, png_bytes, upload
from tests.conftest import in_both_languages, translated
from tests.payments.helpers import PLATE, VIN, overdue_violation
from tests.staff.helpers import make_supervisor, make_user, sign_in_as


def results_page(client):
    response = client.post("/lookup", data={"proof": "vin", "plate": PLATE, "vin_last6": VIN})
    assert response.status_code == 200
    return response.get_data(as_text=True)


def vehicle_token(page):
    return html.unescape(re.search(r'name="vehicle" value="([^"]+)"', page).group(1))


def file_from_results(client, violation, files=(), **fields):
    token = vehicle_token(results_page(client))
    form = client.post("/cases/new", data={"vehicle": token, "case_for": f"contest:{violation.id}"})
    assert form.status_code == 200
    data = {"vehicle": token, "violation_id": str(violation.id), "kind": "contest", "reason": "facts_wrong",
            "statement": STATEMENT, **fields}
    if files:
        data["evidence"] = list(files)
    return client.post("/cases/", data=data, content_type="multipart/form-data")


def case_number(page):
    return re.search(r'id="case-number">([0-9A-Z]{12})<', page).group(1)


@in_both_languages
def test_contest_from_the_results_page_then_check_it(app, client, evidence_dir):
    violation = overdue_violation()
    page = results_page(client)
    assert translated(app, "Contest this violation") in page
    filed = file_from_results(client, violation, [form_file(png_bytes(), "me.png", "image/png")])
    assert filed.status_code == 201
    number = case_number(filed.get_data(as_text=True))
    assert len(stored_files(evidence_dir)) == 1
    page = results_page(client)
    assert number in page and f'id="select-{violation.id}"' not in page  # no longer offered for payment
    checked = client.post("/cases/check", data={"plate": PLATE, "vin_last6": VIN, "case_number": number})
    assert checked.status_code == 200
    assert translated(app, "The traffic police have not decided yet. Check again later.") in checked.get_data(
        as_text=True)


@in_both_languages
def test_a_wrong_file_is_refused_on_the_form_with_a_clear_message(app, client, evidence_dir):
    refused = file_from_results(client, overdue_violation(), [form_file(b"%PDF-1.7" + b"\x00" * 100, "scan.jpg")])
    assert refused.status_code == 422
    text = html.unescape(refused.get_data(as_text=True))
    assert translated(app, "“%(name)s” is not a JPEG or PNG photo or an MP4 video. Send photos as JPEG or PNG, "
                           "or one video as MP4.", name="scan.jpg") in text
    assert stored_files(evidence_dir) == [] and db.session.query(Case).count() == 0


@in_both_languages
def test_a_body_over_the_limit_gets_the_too_large_page(app, client, evidence_dir):
    refused = file_from_results(client, overdue_violation(), [form_file(mp4_bytes(700 * 1024), "v.mp4", "video/mp4")])
    assert refused.status_code == 413
    assert translated(app, "The upload is too large") in refused.get_data(as_text=True)
    assert stored_files(evidence_dir) == []


def test_the_case_form_needs_the_results_pages_proof(client):
    violation = overdue_violation()
    forged = client.post("/cases/new", data={"vehicle": "forged", "case_for": f"contest:{violation.id}"})
    filed = client.post("/cases/", data={"vehicle": "forged", "violation_id": str(violation.id), "kind": "contest",
                                         "reason": "other", "statement": STATEMENT})
    assert forged.status_code == filed.status_code == 400
    assert db.session.query(Case).count() == 0


def test_checking_gives_one_answer_for_every_mismatch(client):
    number = services.file_case(violation_id=overdue_violation().id, kind="contest", reason="other",
                                statement=STATEMENT, actor="driver").number
    bodies = set()
    for data in ({"plate": PLATE, "vin_last6": "Z99999", "case_number": number},
                 {"plate": PLATE, "vin_last6": VIN, "case_number": "ABCDEFGHJK12"},
                 {"plate": "京A99999", "vin_last6": VIN, "case_number": number}):
        response = client.post("/cases/check", data=data)
        assert response.status_code == 404
        page = response.get_data(as_text=True)
        for value in data.values():  # the form is shown again with what was typed: that is all that differs
            page = page.replace(f'value="{value}"', 'value=""')
        bodies.add(page)
    assert len(bodies) == 1


@in_both_languages
def test_staff_queue_case_page_and_a_supervisors_decision(app, client):
    violation = overdue_violation()
    case = services.file_case(violation_id=violation.id, kind="contest", reason="other", statement=STATEMENT,
                              uploads=[], actor="driver")
    sign_in_as(client, make_user("clerk"))
    queue = client.get("/staff/cases").get_data(as_text=True)
    assert case.number in queue and violation.notice_number in queue
    page = client.get(f"/staff/cases/{case.number}").get_data(as_text=True)
    assert STATEMENT in page and 'id="decide"' not in page  # clerks prepare, supervisors decide
    prepared = client.post(f"/staff/cases/{case.number}/prepare",
                           data={"recommendation": "upheld", "note": "The photo shows the car."})
    assert prepared.status_code == 303
    assert client.post(f"/staff/cases/{case.number}/decide",
                       data={"outcome": "upheld", "reason": "Clear photo."}).status_code == 403
    sign_in_as(client, make_supervisor())
    decided = client.post(f"/staff/cases/{case.number}/decide", data={"outcome": "upheld", "reason": "Clear photo."})
    assert decided.status_code == 303
    assert db.session.get(Case, case.id).status == "upheld"
    assert case.number not in client.get("/staff/cases").get_data(as_text=True)


def test_instalment_application_offers_refuse_and_set_up_the_plan(client):
    violation = overdue_violation()
    case = services.file_case(violation_id=violation.id, kind="instalments", reason="illness", statement=STATEMENT,
                              actor="driver")
    sign_in_as(client, make_supervisor())
    page = client.get(f"/staff/cases/{case.number}").get_data(as_text=True)
    assert f'href="/staff/violations/{violation.id}" id="set-up-plan"' in page
    assert f'href="/staff/cases/{case.number}"' in client.get(f"/staff/violations/{violation.id}").get_data(
        as_text=True)  # where the plan is set up, the application is in sight


def test_evidence_is_served_to_signed_in_staff_only_and_never_cached(client):
    case = services.file_case(violation_id=overdue_violation().id, kind="contest", reason="other",
                              statement=STATEMENT, actor="driver",
                              uploads=[upload(jpeg_bytes())])
    url = f"/staff/cases/{case.number}/files/{case.files[0].id}"
    anonymous = client.get(url)
    assert anonymous.status_code in (302, 303) and "/staff/login" in anonymous.headers["Location"]
    sign_in_as(client, make_user("clerk"))
    served = client.get(url)
    assert served.status_code == 200 and served.data == jpeg_bytes()
    assert served.headers["Cache-Control"] == "no-store"
    assert served.headers["Content-Type"] == "image/jpeg"
    assert served.headers["Content-Disposition"].startswith("inline; filename=")
    assert served.headers["X-Content-Type-Options"] == "nosniff"
    assert client.get(f"/staff/cases/{case.number}/files/999999").status_code == 404


@pytest.mark.parametrize("path", ["/evidence/x.jpg", "/static/../instance/evidence/x.jpg"])
def test_evidence_has_no_public_path(client, path):
    assert client.get(path).status_code == 404
