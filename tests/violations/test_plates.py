"""Normalising plates, VIN codes and notice numbers as people type them."""
import pytest

from violations import plates
from violations.plates import (
    InvalidIdentifier,
    normalize_notice_number,
    normalize_plate,
    normalize_vin_last6,
)


@pytest.mark.parametrize("raw, expected", [
    ("蒙b·12345", "蒙B12345"),
    ("蒙B 12345", "蒙B12345"),
    ("  蒙B-123.45 ", "蒙B12345"),
    ("蒙Ｂ１２３４５", "蒙B12345"),      # full-width letters from a Chinese input method
    ("京A・D8888", "京AD8888"),          # katakana middle dot, a common look-alike
    ("京a\u3000d8888", "京AD8888"),      # ideographic space
    ("粤B12345D", "粤B12345D"),          # new-energy plates have 6 characters after the letter
    ("使014578", "使014578"),
    ("蒙B1234学", "蒙B1234学"),         # learner plates end in 学
])
def test_plate_is_upper_cased_and_separators_removed(raw, expected):
    assert normalize_plate(raw) == expected


def test_same_plate_typed_differently_normalises_equal():
    assert len({normalize_plate(p) for p in ["蒙B·12345", "蒙b12345", "蒙 B 1 2 3 4 5", "蒙B-12345"]}) == 1


@pytest.mark.parametrize("raw", [
    "", "   ", "·-.", "蒙", "蒙B12345678901",   # empty, one character, too long
    "蒙B1234<script>", "蒙B'; DROP TABLE", "蒙B\x0012345", "蒙B\n12345",
    "蒙B12345😀", "ÄB12345", "x" * 33, "x" * 10_000, None, 12345,
])
def test_impossible_plates_are_rejected_not_truncated(raw):
    with pytest.raises(InvalidIdentifier):
        normalize_plate(raw)


@pytest.mark.parametrize("raw, problem", [
    ("AB12CD", plates.NO_PROVINCE),      # no province character
    ("12345", plates.NO_PROVINCE),
    ("B12345", plates.NO_PROVINCE),
    ("蒙112345", plates.NO_CITY_LETTER),   # no city letter (region code)
    ("蒙B1234", plates.WRONG_LENGTH),
    ("蒙B1234567", plates.WRONG_LENGTH),
    ("使01457", plates.WRONG_LENGTH),
    ("蒙B1234😀", plates.BAD_CHARACTERS),
])
def test_what_cannot_be_a_chinese_plate_says_why_from_its_shape(raw, problem):
    with pytest.raises(InvalidIdentifier) as invalid:
        normalize_plate(raw)
    assert invalid.value.code == problem


@pytest.mark.parametrize("raw, expected", [("a12345", "A12345"), (" 4f2c91 ", "4F2C91"), ("Ａ１２３４５", "A12345")])
def test_vin_code_is_upper_cased(raw, expected):
    assert normalize_vin_last6(raw) == expected


@pytest.mark.parametrize("raw", ["A1234", "A123456", "A1234O", "I12345", "Q12345", "A1234!", "", "蒙12345"])
def test_vin_code_must_be_six_vin_characters(raw):
    with pytest.raises(InvalidIdentifier):
        normalize_vin_last6(raw)


def test_notice_number_is_normalised():
    assert normalize_notice_number(" 1502 0320 2611 000123 ") == "150203202611000123"


@pytest.mark.parametrize("raw", ["12345", "1" * 33, "1502<>", "150203202611000123\x00"])
def test_bad_notice_numbers_are_rejected(raw):
    with pytest.raises(InvalidIdentifier):
        normalize_notice_number(raw)
