"""Normalising what people type for plates, VIN codes and notice numbers."""
import re
import unicodedata

# Separators people type between the parts of a plate: spaces (NFKC turns the
# ideographic and no-break spaces into plain ones), the middle dot
# printed on Chinese plates (and its look-alikes), hyphens and full stops.
_SEPARATORS = re.compile(r"[ ·•・\-.]+")
# ASCII letters and digits, plus CJK ideographs for province and suffix
# characters (京, 蒙, 使, 领, 警, 学, 挂, ...).
_PLATE = re.compile(r"[A-Z0-9\u4e00-\u9fff]{2,12}")
# VINs never use I, O or Q (ISO 3779), so those are typing mistakes.
_VIN6 = re.compile(r"[A-HJ-NPR-Z0-9]{6}")
_NOTICE = re.compile(r"[A-Z0-9]{6,32}")

MAX_RAW_LENGTH = 32


class InvalidIdentifier(ValueError):
    """What a driver typed cannot be a plate, VIN code or notice number."""


def _clean(raw, what):
    if not isinstance(raw, str):
        raise InvalidIdentifier(f"{what} must be text.")
    if len(raw) > MAX_RAW_LENGTH:
        raise InvalidIdentifier(f"{what} is too long.")
    # NFKC folds full-width letters and digits from Chinese input methods
    # (Ｂ１２) into ASCII, so 蒙Ｂ１２３４５ and 蒙B12345 are the same plate.
    return _SEPARATORS.sub("", unicodedata.normalize("NFKC", raw)).upper()


def normalize_plate(raw):
    """Return the canonical form of a plate: upper case, separators removed."""
    plate = _clean(raw, "Plate")
    if not plate:
        raise InvalidIdentifier("Plate is empty.")
    if not _PLATE.fullmatch(plate):
        raise InvalidIdentifier("Plate has characters a plate cannot have, or the wrong length.")
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
