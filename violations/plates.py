"""Normalising what people type for plates, VIN codes, notice numbers and payment codes."""
import re
import unicodedata

from flask import current_app

# Separators people type between the parts of a plate: spaces (NFKC turns the
# ideographic and no-break spaces into plain ones), the middle dot
# printed on Chinese plates (and its look-alikes), hyphens and full stops.
_SEPARATORS = re.compile(r"[ ·•・\-.]+")
# ASCII letters and digits, plus CJK ideographs for province and suffix
# characters (京, 蒙, 使, 领, 警, 学, 挂, ...).
_PLATE_CHARACTERS = re.compile(r"[A-Z0-9\u4e00-\u9fff]+")
# The one-character abbreviations of the provinces and regions that start every civilian plate.
PROVINCES = "京津沪渝冀豫云辽黑湘皖鲁新苏浙赣鄂桂甘晋蒙陕吉闽贵粤青藏川宁琼"
# A civilian plate (GA 36): province, the letter of the issuing city, then 5 letters and digits
# (6 on a new-energy plate), or 4 and a suffix (学 learner, 挂 trailer, 警 police, 港/澳 cross-border,
# 领 consulate, 试 test, 超 oversize); or an embassy plate, 使 and 6 digits. Military and armed-police
# vehicles are not fined through this service, so their plates are not plates here.
_CHINESE_PLATE = re.compile(rf"[{PROVINCES}][A-Z](?:[A-Z0-9]{{5,6}}|[A-Z0-9]{{4}}[学挂警港澳领试超])|使[0-9]{{6}}")

# What is wrong with the shape of something typed as a plate (plate_problem).
EMPTY, BAD_CHARACTERS, NO_PROVINCE, NO_CITY_LETTER, WRONG_LENGTH = (
    "empty", "bad_characters", "no_province", "no_city_letter", "wrong_length")
# VINs never use I, O or Q (ISO 3779), so those are typing mistakes.
_VIN6 = re.compile(r"[A-HJ-NPR-Z0-9]{6}")
_NOTICE = re.compile(r"[A-Z0-9]{6,32}")

MAX_RAW_LENGTH = 32


class InvalidIdentifier(ValueError):
    """What a driver typed cannot be a plate, VIN code or notice number; ``code`` says why (plate_problem)."""

    def __init__(self, message, code=None):
        super().__init__(message)
        self.code = code


def _clean(raw, what):
    if not isinstance(raw, str):
        raise InvalidIdentifier(f"{what} must be text.")
    if len(raw) > MAX_RAW_LENGTH:
        raise InvalidIdentifier(f"{what} is too long.")
    # NFKC folds full-width letters and digits from Chinese input methods
    # (Ｂ１２) into ASCII, so 蒙Ｂ１２３４５ and 蒙B12345 are the same plate.
    return _SEPARATORS.sub("", unicodedata.normalize("NFKC", raw)).upper()


_PLATE_PROBLEMS = {
    EMPTY: "Plate is empty.",
    BAD_CHARACTERS: "Plate has characters a plate cannot have.",
    NO_PROVINCE: "Plate must start with a province character such as 蒙 or 京.",
    NO_CITY_LETTER: "Plate must have the city's letter after the province character.",
    WRONG_LENGTH: "Plate must have 5 letters and digits after the city's letter (6 on a new-energy plate).",
}


def plate_problem(plate):
    """What keeps an already cleaned text from being a Chinese plate, or None when it can be one.

    Decided from the text's shape alone, never from which plates exist, so the
    answer tells nobody whether a vehicle is on record.
    """
    if not plate:
        return EMPTY
    if not _PLATE_CHARACTERS.fullmatch(plate):
        return BAD_CHARACTERS
    if _CHINESE_PLATE.fullmatch(plate):
        return None
    if plate[0] not in PROVINCES + "使":
        return NO_PROVINCE
    if plate[0] != "使" and not (len(plate) > 1 and "A" <= plate[1] <= "Z"):
        return NO_CITY_LETTER
    return WRONG_LENGTH


def normalize_plate(raw):
    """Return the canonical form of a Chinese plate: upper case, separators removed."""
    plate = _clean(raw, "Plate")
    problem = plate_problem(plate)
    if problem is not None:
        raise InvalidIdentifier(_PLATE_PROBLEMS[problem], code=problem)
    return plate


def normalize_vin_last6(raw):
    """Return the last six characters of a VIN as stored: six of A-Z (no I, O, Q) and 0-9."""
    vin = _clean(raw, "VIN code")
    if not _VIN6.fullmatch(vin):
        raise InvalidIdentifier(
            "VIN code must be the last 6 characters of the VIN: letters and digits, never I, O or Q."
        )
    return vin


def normalize_notice_number(raw):
    """Return a notice number as stored: 6 to 32 letters and digits."""
    notice = _clean(raw, "Notice number")
    if not _NOTICE.fullmatch(notice):
        raise InvalidIdentifier("Notice number must be 6 to 32 letters and digits.")
    return notice


# The finance bureau's payment code (非税收入缴款码) printed on a notice: 20 digits, the first 6 the
# administrative division (GB/T 2260) of the finance bureau that issued it.
PAYMENT_CODE_LENGTH = 20
_PAYMENT_CODE = re.compile(rf"[0-9]{{{PAYMENT_CODE_LENGTH}}}")


def normalize_payment_code(raw):
    """Return a payment code as stored: exactly 20 digits (spaces and hyphens between groups are dropped)."""
    code = _clean(raw, "Payment code")
    if not code:
        raise InvalidIdentifier("Payment code is empty.", code="empty")
    if not code.isascii() or not code.isdigit():
        raise InvalidIdentifier("Payment code must be digits only.", code="not_digits")
    if not _PAYMENT_CODE.fullmatch(code):
        raise InvalidIdentifier(f"Payment code must be exactly {PAYMENT_CODE_LENGTH} digits.", code="wrong_length")
    return code


def region_prefix(region):
    """What a payment code from ``region`` starts with: a city's (150200) covers its districts, a province's its cities."""
    while region.endswith("00"):
        region = region[:-2]
    return region


def in_regions(payment_code, regions):
    """Whether a (normalised) payment code was issued by a finance bureau of one of ``regions``."""
    return any(payment_code.startswith(region_prefix(region)) for region in regions)


def normalize_local_payment_code(raw):
    """normalize_payment_code, and the code must come from a region this deployment serves (PAYMENT_CODE_REGIONS).

    Decided from the text and the settings alone, never from which codes are on record.
    No check digit is verified: the finance bureaus publish none for the 20-digit code.
    """
    code = normalize_payment_code(raw)
    if not in_regions(code, current_app.config["PAYMENT_CODE_REGIONS"]):
        raise InvalidIdentifier("Payment code is not one of this region's finance bureau.", code="other_region")
    return code
