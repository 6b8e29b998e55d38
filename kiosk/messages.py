"""What a failed attempt at the reader or on the phone means, said for someone standing at the kiosk."""
from flask_babel import lazy_gettext as _l

from payments.messages import failure_message

READER_MESSAGES = {
    "card_declined": _l("Your card was declined. You can try again with another card, or ask your bank why."),
    "card_removed": _l("The card was removed before the payment finished. Nothing was charged. "
                       "Try again and leave the card in until the reader says so."),
    "reader_timeout": _l("No card was presented in time. Nothing was charged. You can try again."),
    "reader_canceled": _l("The payment was stopped on the reader. Nothing was charged. You can try again."),
}


def kiosk_failure_message(code):
    """The driver's explanation for a failed reader attempt."""
    if code in READER_MESSAGES:
        return str(READER_MESSAGES[code])
    return failure_message(code or "not_completed")


SCAN_MESSAGES = {
    "insufficient_funds": _l("There was not enough money on the phone's account for this amount. Nothing was charged. "
                             "Go back to pay another way."),
}
SCAN_MESSAGE = _l("The payment was not completed on the phone. Nothing was charged. Go back to pay another way.")


def kiosk_scan_failure_message(code):
    """The driver's explanation for a scan-to-pay order the phone did not pay."""
    return str(SCAN_MESSAGES.get(code, SCAN_MESSAGE))
