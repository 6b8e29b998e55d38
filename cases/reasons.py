"""The preset reasons a driver chooses from: the one list, translated (a city may change it here)."""
from flask_babel import lazy_gettext as _l

from cases.models import CONTEST, DEFERRAL, INSTALMENTS

CONTEST_REASONS = {
    "not_driving": _l("The vehicle was not there, or someone else was driving"),
    "plate_cloned": _l("The plate was copied onto another vehicle (套牌)"),
    "signs_unclear": _l("Road signs or markings were missing or unclear"),
    "emergency": _l("Avoiding danger or giving way to an emergency vehicle"),
    "facts_wrong": _l("The time, place or offense recorded is wrong"),
    "other": _l("Another reason (explain in the statement)"),
}
HARDSHIP_REASONS = {
    "income_loss": _l("Loss of work or income"),
    "illness": _l("Serious illness or injury in the family"),
    "disaster": _l("A natural disaster or accident"),
    "other": _l("Other financial hardship (explain in the statement)"),
}
REASONS = {CONTEST: CONTEST_REASONS, DEFERRAL: HARDSHIP_REASONS, INSTALMENTS: HARDSHIP_REASONS}


def reason_label(kind, code):
    """A reason code as the driver chose it, in the current language."""
    label = REASONS.get(kind, {}).get(code)
    return str(label) if label is not None else code
