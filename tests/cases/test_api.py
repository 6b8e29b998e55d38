"""The cases API through HTTP: filing (multipart, with evidence) and checking, with no oracle."""
import pytest

from cases.models import Case
from finepay.extensions import db
from tests.cases.conftest import stored_files
from tests.cases.helpers import STATEMENT, form_file, jpeg_bytes, mp4_bytes, png_bytes
from tests.payments.helpers import OTHER_PLATE, OTHER_VIN, PLATE, VIN, create, overdue_violation


def file_case(client, violation, files=(), **overrides):
    data = {"plate": PLATE, "vin_last6": VIN, "violation_id": str(violation.id), "kind": "contest",
            "reason": "signs_unclear", "statement": STATEMENT}
    data.update(overrides)
    if files:
        data["evidence"] = list(files)
    return client.post("/api/v1/cases", data=data, content_type="multipart/form-data")


def check(client, number, plate=PLATE, vin=VIN):
    return client.post("/api/v1/cases/check", json={"plate": plate, "vin_last6": vin, "case_number": number})


def test_file_and_check_a_contest(client, evidence_dir):
    violation = overdue_violation()
    filed = file_case(client, violation, [form_file(png_bytes(), "a.png", "image/png"), form_file(jpeg_bytes())])
    assert filed.status_code == 201, filed.get_json()
    body = filed.get_json()
    assert body["kind"] == "contest" and body["status"] == "open" and body["files"] == 2
    assert len(stored_files(evidence_dir)) == 2
    status = check(client, body["case_number"])
    assert status.status_code == 200
    assert status.get_json()["status"] == "open" and status.get_json()["notice_number"] == violation.notice_number
    paying = create(client, [violation.id])
    assert paying.status_code == 409 and paying.get_json()["code"] == "under_contest"


def test_every_failed_check_gets_the_same_answer(client):
    violation = overdue_violation()
    other = overdue_violation(plate=OTHER_PLATE, vin_last6=OTHER_VIN)
    number = file_case(client, violation).get_json()["case_number"]
    others = file_case(client, other, plate=OTHER_PLATE, vin_last6=OTHER_VIN).get_json()["case_number"]
    answers = [check(client, number, vin="Z99999"), check(client, others), check(client, "ABCDEFGHJK12"),
               check(client, number, plate="京A99999")]
    assert {a.status_code for a in answers} == {404}
    assert len({a.get_data() for a in answers}) == 1


def test_filing_needs_the_vehicle_proven(client):
    violation = overdue_violation()
    wrong = file_case(client, violation, vin_last6="Z99999")
    foreign = file_case(client, overdue_violation(plate=OTHER_PLATE, vin_last6=OTHER_VIN))
    assert wrong.status_code == foreign.status_code == 404
    assert wrong.get_data() == foreign.get_data()
    assert db.session.query(Case).count() == 0


@pytest.mark.parametrize(("files", "message_part"), [
    (lambda: [form_file(b"MZ\x90\x00" + b"\x00" * 200, "photo.jpg")], "not a JPEG or PNG"),
    (lambda: [form_file(png_bytes(pad=70 * 1024), "big.png", "image/png")], "too large"),
    (lambda: [form_file(jpeg_bytes(), f"{i}.jpg") for i in range(6)], "at most 5"),
    (lambda: [form_file(jpeg_bytes()), form_file(mp4_bytes(), "v.mp4", "video/mp4")], "not both"),
], ids=["exe-named-jpg", "too-large", "six-photos", "photo-and-video"])
def test_bad_evidence_gets_a_clear_422_and_nothing_is_kept(client, evidence_dir, files, message_part):
    response = file_case(client, overdue_violation(), files())
    assert response.status_code == 422
    assert message_part in response.get_json()["errors"]["evidence"][0]
    assert stored_files(evidence_dir) == [] and db.session.query(Case).count() == 0


def test_an_upload_over_the_request_limit_is_refused_before_it_is_read(client, evidence_dir):
    response = file_case(client, overdue_violation(), [form_file(mp4_bytes(700 * 1024), "v.mp4", "video/mp4")])
    assert response.status_code == 413
    assert "5 photos" in response.get_json()["message"]
    assert stored_files(evidence_dir) == []


def test_a_short_statement_is_a_422_naming_it(client):
    response = file_case(client, overdue_violation(), statement="too short")
    assert response.status_code == 422 and "statement" in response.get_json()["errors"]


def test_openapi_documents_filing_as_one_multipart_body_and_checking(client):
    spec = client.get("/api/openapi.json").get_json()
    body = spec["paths"]["/api/v1/cases"]["post"]["requestBody"]["content"]
    assert list(body) == ["multipart/form-data"]
    schema = spec["components"]["schemas"][body["multipart/form-data"]["schema"]["$ref"].rsplit("/", 1)[1]]
    assert {"plate", "vin_last6", "violation_id", "kind", "reason", "statement", "evidence"} <= set(schema["properties"])
    assert "/api/v1/cases/check" in spec["paths"]


def test_checking_spends_the_plates_failure_budget_then_asks_for_the_challenge(app, client):
    app.config["PLATE_FAILURE_RATE_LIMIT"] = "2/hour"
    number = file_case(client, overdue_violation()).get_json()["case_number"]
    for _i in range(2):
        assert check(client, "ABCDEFGHJK12").status_code == 404  # the vehicle is proven, the number is not its own
    asked = check(client, number)
    assert asked.status_code == 429 and asked.get_json()["code"] == "challenge_required"


def test_filing_and_checking_count_against_the_clients_lookup_limit(app, client):
    app.config["LOOKUP_RATE_LIMIT"] = "3/minute"
    violation = overdue_violation()
    answers = [file_case(client, violation, statement="short").status_code,
               check(client, "ABCDEFGHJK12").status_code,
               client.post("/api/v1/lookups", json={"plate": PLATE, "vin_last6": VIN}).status_code,
               check(client, "ABCDEFGHJK12").status_code]
    assert answers == [422, 404, 200, 429]
