"""Hostile and malformed input to the lookup API and the lookup page, and the lookup rate limits.

Every malformed request gets a 4xx in FinePay's error shape, never a 500 or a traceback.
"""
import io
import json

import pytest

from tests.challenge import assert_challenge_required
from tests.factories import make_violation

API = "/api/v1/lookups"
PAGE = "/lookup"
PLATE, VIN, NOTICE = "蒙B12345", "A12345", "150203202611000123"
HTML = "<script>alert(1)</script>"
ATTRIBUTE_BREAKOUT = '"><img src=x onerror=alert(1)>'
SQL = "' OR 1=1 --"
TEN_KB = "A" * 10_240
CONTROL = ["\x00", "蒙B\x0012345", "A1234\x00", "\x1b[31m", "\r\n", "\x7f", "\u202e12345"]
FIELDS = ("plate", "vin_last6", "notice_number")
UPLOAD = object()  # stands for a file upload in a form field (a fresh one per request)


@pytest.fixture
def app_config():
    """Generous limits, so that only the rate-limit tests below ever meet them."""
    return {"LOOKUP_RATE_LIMIT": "1000/minute", "PLATE_FAILURE_RATE_LIMIT": "1000/hour"}


@pytest.fixture
def vehicle(app):
    """A violation that a lookup which wrongly accepted (e.g. truncated) input would find."""
    return make_violation(notice_number=NOTICE, plate=PLATE, vin_last6=VIN)


def assert_api_error(response, *statuses):
    """A 4xx with FinePay's JSON error shape and nothing of a traceback."""
    statuses = statuses or (400, 415, 422)
    text = response.get_data(as_text=True)
    assert response.status_code in statuses, text
    assert response.mimetype == "application/json", text
    body = response.get_json()
    assert set(body) == {"code", "message", "errors"}, body
    assert isinstance(body["code"], str) and body["code"]
    assert isinstance(body["message"], str) and body["message"]
    assert isinstance(body["errors"], dict)
    assert "Traceback" not in text and 'File "' not in text
    return body


def assert_page_error(response, *statuses):
    """A 4xx HTML page (the form with its errors, or the error page), never a traceback."""
    statuses = statuses or (400, 422)
    text = response.get_data(as_text=True)
    assert response.status_code in statuses, f"{response.status_code}: {text[-600:]}"
    assert response.mimetype == "text/html"
    assert "Traceback" not in text and 'File "' not in text
    return text


def post_json(client, body, **kwargs):
    return client.post(API, data=json.dumps(body), content_type="application/json", **kwargs)


# --- API: malformed JSON bodies --------------------------------------------------------------------

VALID_VIN_BODY = {"plate": PLATE, "vin_last6": VIN}
VALID_NOTICE_BODY = {"plate": PLATE, "notice_number": NOTICE}

MISSING_OR_EMPTY = {
    "empty_object": {},
    "plate_only": {"plate": PLATE},
    "vin_only": {"vin_last6": VIN},
    "notice_only": {"notice_number": NOTICE},
    "empty_plate": {"plate": "", "vin_last6": VIN},
    "blank_plate": {"plate": "   ", "vin_last6": VIN},
    "separators_only_plate": {"plate": "·-. ", "vin_last6": VIN},
    "empty_vin": {"plate": PLATE, "vin_last6": ""},
    "empty_notice": {"plate": PLATE, "notice_number": ""},
    "both_proofs": {"plate": PLATE, "vin_last6": VIN, "notice_number": NOTICE},
    "both_proofs_one_null": {"plate": PLATE, "vin_last6": VIN, "notice_number": None},
    "unknown_extra_field": {"plate": PLATE, "vin_last6": VIN, "is_admin": True},
    "unknown_field_named_like_html": {"plate": PLATE, "vin_last6": VIN, HTML: 1},
}


@pytest.mark.parametrize("body", MISSING_OR_EMPTY.values(), ids=MISSING_OR_EMPTY.keys())
def test_api_rejects_missing_empty_or_surplus_fields_with_422(client, vehicle, body):
    assert_api_error(post_json(client, body), 422)


WRONG_TYPES = [12345, 1.5, -1, [PLATE], [], {"value": PLATE}, {}, None, True, False]


@pytest.mark.parametrize("field", FIELDS)
@pytest.mark.parametrize("value", WRONG_TYPES, ids=repr)
def test_api_rejects_wrong_json_types_in_every_field_with_422(client, vehicle, field, value):
    body = dict(VALID_NOTICE_BODY if field == "notice_number" else VALID_VIN_BODY)
    body[field] = value

    body = assert_api_error(post_json(client, body), 422)

    assert field in body["errors"]


NOT_AN_OBJECT = {
    "array": "[1, 2]",
    "array_of_the_right_object": json.dumps([VALID_VIN_BODY]),
    "string": '"蒙B12345"',
    "number": "42",
    "null": "null",
    "true": "true",
}


@pytest.mark.parametrize("raw", NOT_AN_OBJECT.values(), ids=NOT_AN_OBJECT.keys())
def test_api_rejects_json_that_is_not_an_object(client, vehicle, raw):
    assert_api_error(client.post(API, data=raw, content_type="application/json"), 400, 422)


NOT_JSON = {
    "empty": b"",
    "plain_words": b"plate please",
    "form_encoded": "plate=蒙B12345&vin_last6=A12345".encode(),
    "truncated": b'{"plate": "\xe8\x92\x99B12345", "vin_last6": "A12',
    "single_quotes": b"{'plate': 'x'}",
    "trailing_comma": b'{"plate": "x",}',
    "not_utf8": b'{"plate": "\xff\xfe"}',
    "nul_bytes": b"\x00\x00\x00",
    "xml": b"<lookup><plate>x</plate></lookup>",
}


@pytest.mark.parametrize("raw", NOT_JSON.values(), ids=NOT_JSON.keys())
def test_api_rejects_a_non_json_body_sent_as_json_with_400(client, vehicle, raw):
    body = assert_api_error(client.post(API, data=raw, content_type="application/json"), 400, 422)

    assert body["code"] in ("invalid_json", "invalid_input")


@pytest.mark.parametrize("content_type", [None, "text/plain", "application/x-www-form-urlencoded",
                                          "multipart/form-data; boundary=x", "application/xml"])
def test_api_rejects_a_body_without_json_content_type(client, vehicle, content_type):
    # A valid JSON document, but not declared as JSON: never looked up.
    response = client.post(API, data=json.dumps(VALID_VIN_BODY), content_type=content_type)

    assert_api_error(response, 400, 415, 422)


def test_api_rejects_form_fields_instead_of_json(client, vehicle):
    assert_api_error(client.post(API, data=VALID_VIN_BODY), 400, 415, 422)


def test_api_rejects_deeply_nested_json_without_a_500(client, vehicle):
    nested = "[" * 100_000 + "]" * 100_000  # 200 kB, below MAX_CONTENT_LENGTH

    assert_api_error(client.post(API, data=nested, content_type="application/json"), 400, 422)


def test_api_rejects_a_number_too_long_to_convert_without_a_500(client, vehicle):
    raw = '{"plate": ' + "9" * 5000 + ', "vin_last6": "A12345"}'

    assert_api_error(client.post(API, data=raw, content_type="application/json"), 400, 422)


# --- API: hostile strings --------------------------------------------------------------------------

HOSTILE_STRINGS = {
    "ten_kb": TEN_KB,
    "sql": SQL,
    "sql_union": "A12345' UNION SELECT * FROM violations --",
    "html": HTML,
    "attribute_breakout": ATTRIBUTE_BREAKOUT,
    **{f"control_{i}": value for i, value in enumerate(CONTROL)},
    "emoji": "蒙B1234😀",
    "latin_letter_with_accent": "ÄB12345",
}


@pytest.mark.parametrize("field", FIELDS)
@pytest.mark.parametrize("value", HOSTILE_STRINGS.values(), ids=HOSTILE_STRINGS.keys())
def test_api_rejects_hostile_strings_in_every_field_with_422(client, vehicle, field, value):
    body = dict(VALID_NOTICE_BODY if field == "notice_number" else VALID_VIN_BODY)
    body[field] = value

    body = assert_api_error(post_json(client, body), 422)

    assert field in body["errors"]


def test_api_rejects_ten_kb_strings_in_all_fields_at_once(client, vehicle):
    body = {"plate": TEN_KB, "vin_last6": TEN_KB, "notice_number": TEN_KB}

    assert_api_error(post_json(client, body), 422)


def test_api_error_for_hostile_input_does_not_echo_it_back(client, vehicle):
    response = post_json(client, {"plate": HTML, "vin_last6": SQL})

    text = response.get_data(as_text=True)
    assert "<script>" not in text
    assert "OR 1=1" not in text


TOO_LONG_OR_IMPOSSIBLE = {
    # Each would match the stored vehicle if it were truncated or loosely cleaned.
    "plate_too_long": {"plate": PLATE + "6789012", "vin_last6": VIN},
    "plate_raw_longer_than_32": {"plate": PLATE + " " * 30, "vin_last6": VIN},
    "vin_seven_characters": {"plate": PLATE, "vin_last6": VIN + "6"},
    "vin_full_seventeen": {"plate": PLATE, "vin_last6": "LSVAU2180N2" + VIN},
    "vin_five_characters": {"plate": PLATE, "vin_last6": VIN[:5]},
    "vin_with_letter_o": {"plate": PLATE, "vin_last6": "A1234O"},
    "vin_with_letter_i": {"plate": PLATE, "vin_last6": "I12345"},
    "vin_with_letter_q": {"plate": PLATE, "vin_last6": "Q12345"},
    "vin_with_punctuation": {"plate": PLATE, "vin_last6": "A1234%"},
    "notice_too_long": {"plate": PLATE, "notice_number": NOTICE + "0" * 15},
    "notice_too_short": {"plate": PLATE, "notice_number": "12345"},
    "notice_with_wildcard": {"plate": PLATE, "notice_number": "1502032026%"},
    "plate_with_wildcard": {"plate": "蒙B%", "vin_last6": VIN},
    "plate_with_underscore": {"plate": "蒙B1234_", "vin_last6": VIN},
}


@pytest.mark.parametrize("body", TOO_LONG_OR_IMPOSSIBLE.values(), ids=TOO_LONG_OR_IMPOSSIBLE.keys())
def test_api_rejects_too_long_or_impossible_identifiers_not_truncating_them(client, vehicle, body):
    assert_api_error(post_json(client, body), 422)


# --- API: size, methods, paths ---------------------------------------------------------------------


def test_api_body_above_max_content_length_is_413(app, client):
    size = app.config["MAX_CONTENT_LENGTH"] + 1024
    raw = json.dumps({"plate": "A" * size, "vin_last6": VIN})

    body = assert_api_error(client.post(API, data=raw, content_type="application/json"), 413)

    assert body["code"] == "payload_too_large"


@pytest.mark.parametrize("method", ["GET", "PUT", "PATCH", "DELETE"])
def test_api_wrong_method_is_405_json(client, method):
    response = client.open(API, method=method, json=VALID_VIN_BODY)

    body = assert_api_error(response, 405)
    assert body["code"] == "method_not_allowed"


@pytest.mark.parametrize("path", [API, PAGE])
def test_405_names_the_allowed_method_in_an_allow_header(client, path):
    # RFC 9110 15.5.6: a 405 response MUST carry Allow.
    response = client.get(path)

    assert response.status_code == 405
    assert "POST" in response.headers.get("Allow", "")


@pytest.mark.parametrize("method, path", [
    ("GET", "/api/v1/nothing-here"),
    ("POST", "/api/v1/lookups/1"),
    ("POST", "/api/v1/lookup"),
    ("POST", "/api/v2/lookups"),
    ("GET", "/api/"),
    ("GET", "/api/v1/%3Cscript%3E"),
    ("DELETE", "/api/v1/violations"),
])
def test_unknown_api_path_is_404_json(client, method, path):
    response = client.open(path, method=method, json=VALID_VIN_BODY)

    body = assert_api_error(response, 404)
    assert body["code"] == "not_found"
    assert "<script>" not in response.get_data(as_text=True)


# --- API: no oracle --------------------------------------------------------------------------------


def assert_same_answer(first, second):
    """Byte-identical bodies, identical headers except Date (and the rate-limit reset clock)."""
    assert first.status_code == second.status_code == 404
    assert first.data == second.data
    ignored = {"Date", "X-RateLimit-Reset", "X-Request-ID"}  # a fresh id per response reveals nothing
    assert {k: v for k, v in first.headers.items() if k not in ignored} == {
        k: v for k, v in second.headers.items() if k not in ignored
    }
    # The reset time is the window's end: the same window, give or take the second the requests straddle.
    if "X-RateLimit-Reset" in first.headers or "X-RateLimit-Reset" in second.headers:
        assert abs(int(first.headers["X-RateLimit-Reset"]) - int(second.headers["X-RateLimit-Reset"])) <= 1


def test_wrong_vin_and_unknown_plate_get_identical_404s(client, vehicle):
    # Each from a fresh address, so that per-client counters cannot differ either.
    wrong_vin = post_json(client, {"plate": PLATE, "vin_last6": "B12345"},
                          environ_base={"REMOTE_ADDR": "10.0.0.1"})
    unknown_plate = post_json(client, {"plate": "蒙B99999", "vin_last6": VIN},
                              environ_base={"REMOTE_ADDR": "10.0.0.2"})

    assert_same_answer(wrong_vin, unknown_plate)
    assert_api_error(wrong_vin, 404)


def test_notice_path_gives_identical_404s_whatever_exists(client, vehicle):
    make_violation(notice_number="150203202611000999", plate="京A00001", vin_last6="B22222")
    attempts = {
        "known plate, unknown notice": {"plate": PLATE, "notice_number": "150203202611000555"},
        "known plate, another plate's notice": {"plate": PLATE, "notice_number": "150203202611000999"},
        "unknown plate, unknown notice": {"plate": "蒙B99999", "notice_number": "150203202611000555"},
        "unknown plate, existing notice": {"plate": "蒙B99999", "notice_number": NOTICE},
    }
    responses = [
        post_json(client, body, environ_base={"REMOTE_ADDR": f"10.0.1.{i}"})
        for i, body in enumerate(attempts.values())
    ]

    for response in responses[1:]:
        assert_same_answer(responses[0], response)
    assert_api_error(responses[0], 404)


# --- the HTML form ---------------------------------------------------------------------------------

MALFORMED_FORMS = {
    "nothing": {},
    "proof_only": {"proof": "vin"},
    "all_empty": {"proof": "vin", "plate": "", "vin_last6": ""},
    "missing_vin": {"proof": "vin", "plate": PLATE},
    "missing_notice": {"proof": "notice", "plate": PLATE, "vin_last6": VIN},
    "missing_plate_by_notice": {"proof": "notice", "notice_number": NOTICE},
    "ten_kb_everywhere": {"proof": "vin", "plate": TEN_KB, "vin_last6": TEN_KB, "notice_number": TEN_KB},
    "ten_kb_notice": {"proof": "notice", "plate": PLATE, "notice_number": TEN_KB},
    "nul_plate": {"proof": "vin", "plate": "蒙B\x0012345", "vin_last6": VIN},
    "nul_vin": {"proof": "vin", "plate": PLATE, "vin_last6": "A1234\x00"},
    "nul_notice": {"proof": "notice", "plate": PLATE, "notice_number": NOTICE + "\x00"},
    "escape_sequence": {"proof": "vin", "plate": "\x1b[2J" + PLATE, "vin_last6": VIN},
    "sql_plate": {"proof": "vin", "plate": SQL, "vin_last6": VIN},
    "sql_vin": {"proof": "vin", "plate": PLATE, "vin_last6": SQL},
    "sql_notice": {"proof": "notice", "plate": PLATE, "notice_number": SQL},
    "html_plate": {"proof": "vin", "plate": HTML, "vin_last6": VIN},
    "html_vin": {"proof": "vin", "plate": PLATE, "vin_last6": HTML},
    "vin_too_long": {"proof": "vin", "plate": PLATE, "vin_last6": VIN + "6"},
    "vin_with_letter_o": {"proof": "vin", "plate": PLATE, "vin_last6": "A1234O"},
    "plate_too_long": {"proof": "vin", "plate": PLATE + "6789012", "vin_last6": VIN},
    "plate_impossible_characters": {"proof": "vin", "plate": "蒙B1234😀", "vin_last6": VIN},
    "both_proofs": {"proof": "vin", "plate": PLATE, "vin_last6": VIN, "notice_number": NOTICE},
    "unknown_proof_kind": {"proof": "<b>guess</b>", "plate": PLATE, "vin_last6": VIN},
    "repeated_plate_first_invalid": {"proof": "vin", "plate": [HTML, PLATE], "vin_last6": VIN},
    "file_instead_of_plate": {"proof": "vin", "plate": UPLOAD, "vin_last6": VIN},
    "file_instead_of_vin": {"proof": "vin", "plate": PLATE, "vin_last6": UPLOAD},
    "file_instead_of_proof": {"proof": UPLOAD, "plate": PLATE, "vin_last6": VIN},
}


@pytest.mark.parametrize("form", MALFORMED_FORMS.values(), ids=MALFORMED_FORMS.keys())
def test_form_rejects_malformed_input_with_a_4xx_page(client, vehicle, form):
    data = {name: (io.BytesIO(b"x"), "upload.txt") if value is UPLOAD else value for name, value in form.items()}

    assert_page_error(client.post(PAGE, data=data), 400, 422)


NOT_FORM_FIELDS = {
    # JSON is the API's business; the page takes form fields only.
    "json_object": (json.dumps({"proof": "vin", **VALID_VIN_BODY}), "application/json"),
    "json_object_of_numbers": (json.dumps({"proof": "vin", "plate": 12345, "vin_last6": 123456}), "application/json"),
    "json_array": (json.dumps([{"proof": "vin", **VALID_VIN_BODY}]), "application/json"),
    "json_string": ('"蒙B12345"', "application/json"),
    "json_number": ("42", "application/json"),
    "json_null": ("null", "application/json"),
    "json_deeply_nested": ("[" * 100_000 + "]" * 100_000, "application/json"),
    "broken_json": ("{", "application/json"),
    "not_utf8_form": (b"\xff\xfe\x00\x00garbage", "application/x-www-form-urlencoded"),
    "percent_soup_form": (b"%%%%=%%%&&&", "application/x-www-form-urlencoded"),
    "plain_text": (b"plate", "text/plain"),
    "broken_multipart": (b"--x\r\nbroken multipart", "multipart/form-data; boundary=x"),
    "empty_without_content_type": (b"", None),
}


@pytest.mark.parametrize("raw, content_type", NOT_FORM_FIELDS.values(), ids=NOT_FORM_FIELDS.keys())
def test_form_rejects_bodies_that_are_not_form_fields(client, vehicle, raw, content_type):
    assert_page_error(client.post(PAGE, data=raw, content_type=content_type), 400, 422)


def test_form_body_above_max_content_length_is_413_page(app, client):
    size = app.config["MAX_CONTENT_LENGTH"] + 1024

    assert_page_error(client.post(PAGE, data={"proof": "vin", "plate": "A" * size, "vin_last6": VIN}), 413)


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE"])
def test_form_wrong_method_is_405_page(client, method):
    response = client.open(PAGE, method=method)

    assert_page_error(response, 405)


@pytest.mark.parametrize("fragment", [HTML, ATTRIBUTE_BREAKOUT, "' onfocus='alert(1)", "</textarea><svg onload=alert(1)>"])
def test_html_in_form_fields_is_never_reflected_unescaped(client, vehicle, fragment):
    for form in (
        {"proof": "vin", "plate": fragment, "vin_last6": fragment, "notice_number": fragment},
        {"proof": "notice", "plate": fragment, "vin_last6": fragment, "notice_number": fragment},
        {"proof": "notice", "plate": PLATE, "notice_number": fragment},
        {"proof": fragment, "plate": fragment, "vin_last6": VIN},
    ):
        response = client.post(PAGE, data=form)
        # The same form with harmless text: the page's own markup (the authority's emblem is an <img>).
        harmless = client.post(PAGE, data={name: "x" if value == fragment else value for name, value in form.items()})

        page, own = response.get_data(as_text=True), harmless.get_data(as_text=True)
        assert response.status_code < 500
        assert fragment not in page
        for raw in ("<script", "<img", "<svg", "onfocus='", "</textarea>"):
            assert page.count(raw) == own.count(raw), raw


def test_html_in_a_no_match_page_is_escaped(client, vehicle):
    # Valid identifiers that match nothing: the page echoes the plate back, escaped.
    response = client.post(PAGE, data={"proof": "vin", "plate": "蒙B99999", "vin_last6": VIN,
                                       "notice_number": HTML})

    page = response.get_data(as_text=True)
    assert response.status_code in (404, 422)
    assert HTML not in page


# --- rate limits -----------------------------------------------------------------------------------


def api_lookup(client, addr="10.0.0.1", **body):
    return post_json(client, body or VALID_VIN_BODY, environ_base={"REMOTE_ADDR": addr})


def page_lookup(client, addr="10.0.0.1", **form):
    return client.post(PAGE, data={"proof": "vin", **(form or VALID_VIN_BODY)}, environ_base={"REMOTE_ADDR": addr})


def assert_rate_limited(response, max_retry_after):
    assert response.status_code == 429
    retry_after = response.headers.get("Retry-After")
    assert retry_after is not None and retry_after.isdigit(), response.headers
    assert 0 < int(retry_after) <= max_retry_after


class TestPerClientLimit:
    """LOOKUP_RATE_LIMIT: lookups per client address, the API and the page together."""

    @pytest.fixture
    def app_config(self):
        return {"LOOKUP_RATE_LIMIT": "3/minute", "PLATE_FAILURE_RATE_LIMIT": "1000/hour"}

    def test_fourth_api_lookup_is_429_json_with_retry_after(self, client, vehicle):
        assert api_lookup(client).status_code == 200
        assert api_lookup(client, plate=PLATE, vin_last6="B12345").status_code == 404
        assert api_lookup(client).status_code == 200

        response = api_lookup(client)

        assert_rate_limited(response, 60)
        body = assert_api_error(response, 429)
        assert body["code"] == "rate_limited"

    def test_malformed_lookups_count_too(self, client, vehicle):
        for _ in range(3):
            assert api_lookup(client, plate=HTML).status_code == 422

        assert api_lookup(client).status_code == 429

    def test_page_and_api_share_one_budget(self, client, vehicle):
        assert page_lookup(client).status_code == 200
        assert api_lookup(client).status_code == 200
        assert page_lookup(client).status_code == 200

        api_response = api_lookup(client)
        page_response = page_lookup(client)

        assert_rate_limited(api_response, 60)
        assert assert_api_error(api_response, 429)["code"] == "rate_limited"
        assert_rate_limited(page_response, 60)
        assert_page_error(page_response, 429)

    def test_api_lookups_use_up_the_page_budget(self, client, vehicle):
        for _ in range(3):
            assert api_lookup(client).status_code == 200

        assert_rate_limited(page_lookup(client), 60)

    def test_another_client_address_is_not_limited(self, client, vehicle):
        for _ in range(4):
            api_lookup(client, addr="10.0.0.1")

        assert api_lookup(client, addr="10.0.0.2").status_code == 200
        assert page_lookup(client, addr="10.0.0.3").status_code == 200


class TestPerPlateFailureLimit:
    """PLATE_FAILURE_RATE_LIMIT: failed lookups per plate, from any address; then a challenge, not a refusal."""

    @pytest.fixture
    def app_config(self):
        return {"LOOKUP_RATE_LIMIT": "1000/minute", "PLATE_FAILURE_RATE_LIMIT": "2/hour"}

    def test_guesses_for_a_plate_need_a_challenge_from_any_address(self, client, vehicle):
        assert api_lookup(client, "10.0.0.1", plate=PLATE, notice_number="150203202611000001").status_code == 404
        assert api_lookup(client, "10.0.0.2", plate=PLATE, vin_last6="B12345").status_code == 404

        response = api_lookup(client, "10.0.0.3", plate=PLATE, notice_number="150203202611000002")

        assert_challenge_required(response)

    def test_typing_the_plate_differently_does_not_reset_the_budget(self, client, vehicle):
        assert api_lookup(client, "10.0.0.1", plate="蒙b·12345", vin_last6="B12345").status_code == 404
        assert api_lookup(client, "10.0.0.2", plate="蒙B 123-45", vin_last6="C12345").status_code == 404

        assert_challenge_required(api_lookup(client, "10.0.0.3", plate="蒙Ｂ１２３４５", vin_last6="D12345"))

    def test_page_guesses_count_for_the_api_and_back(self, client, vehicle):
        assert page_lookup(client, "10.0.0.1", proof="notice", plate=PLATE,
                           notice_number="150203202611000001").status_code == 404
        assert api_lookup(client, "10.0.0.2", plate=PLATE, vin_last6="B12345").status_code == 404

        assert_challenge_required(api_lookup(client, "10.0.0.3", plate=PLATE, vin_last6="C12345"))
        page = assert_page_error(page_lookup(client, "10.0.0.4", plate=PLATE, vin_last6="C12345"), 429)
        assert "data-challenge=" in page

    def test_other_plates_still_work_when_one_is_blocked(self, client, vehicle):
        make_violation(notice_number="150203202611000999", plate="京A00001", vin_last6="B22222")
        for addr in ("10.0.0.1", "10.0.0.2", "10.0.0.3"):
            api_lookup(client, addr, plate=PLATE, vin_last6="B12345")

        assert api_lookup(client, "10.0.0.4", plate="京A00001", vin_last6="B22222").status_code == 200
        assert api_lookup(client, "10.0.0.4", plate="京A00002", vin_last6="B22222").status_code == 404

    def test_successful_lookups_do_not_count(self, client, vehicle):
        for i in range(5):
            assert api_lookup(client, f"10.0.0.{i}").status_code == 200
            assert page_lookup(client, f"10.0.1.{i}").status_code == 200

        assert api_lookup(client, "10.0.2.1", plate=PLATE, vin_last6="B12345").status_code == 404
        assert api_lookup(client, "10.0.2.2", plate=PLATE, vin_last6="B12345").status_code == 404
        assert_challenge_required(api_lookup(client, "10.0.2.3", plate=PLATE, vin_last6="B12345"))

    def test_malformed_lookups_do_not_use_up_a_plates_budget(self, client, vehicle):
        for addr in ("10.0.0.1", "10.0.0.2", "10.0.0.3"):
            assert api_lookup(client, addr, plate=PLATE, vin_last6="OOOOOO").status_code == 422

        assert api_lookup(client, "10.0.0.4").status_code == 200
