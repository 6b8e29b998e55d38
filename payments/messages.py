"""What a failed payment means, in words a driver understands."""
from flask_babel import lazy_gettext as _l

DECLINE_MESSAGES = {
    "card_declined": _l("Your card was declined. Try another card, or ask your bank why."),
    "insufficient_funds": _l("The card does not have enough funds for this amount. Try another card."),
    "expired_card": _l("This card has expired. Try another card."),
    "incorrect_cvc": _l("The card's security code is wrong. Check it and try again."),
    "incorrect_number": _l("The card number is wrong. Check it and try again."),
    "authentication_failed": _l("Your bank's security check was not completed. Try again, or use another card."),
    "processing_error": _l("The card could not be processed just now. Please try again in a moment."),
    "card_not_supported": _l("This card cannot be used here. Try another card."),
    "limit_exceeded": _l("This payment is over the card's limit. Try another card."),
    "not_completed": _l("The payment was not completed. Nothing was charged; you can try again."),
}


def failure_message(code):
    """The driver's explanation for a failure code (None for no failure)."""
    if not code:
        return None
    return str(DECLINE_MESSAGES.get(code, DECLINE_MESSAGES["card_declined"]))
