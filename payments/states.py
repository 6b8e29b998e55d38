"""The payment state machine: which transitions are allowed, and which states are final."""

CREATED = "created"
REQUIRES_ACTION = "requires_action"
PROCESSING = "processing"
SUCCEEDED = "succeeded"
FAILED = "failed"  # the last attempt was declined; the driver may try another card
CANCELED = "canceled"
EXPIRED = "expired"
REFUNDED = "refunded"
STATUSES = (CREATED, REQUIRES_ACTION, PROCESSING, SUCCEEDED, FAILED, CANCELED, EXPIRED, REFUNDED)

TRANSITIONS = {
    CREATED: {REQUIRES_ACTION, PROCESSING, SUCCEEDED, FAILED, CANCELED, EXPIRED},
    REQUIRES_ACTION: {PROCESSING, SUCCEEDED, FAILED, CANCELED, EXPIRED},
    # Back to CREATED (or the previous open state) when the gateway refused the confirm outright.
    PROCESSING: {CREATED, REQUIRES_ACTION, SUCCEEDED, FAILED, CANCELED},
    FAILED: {REQUIRES_ACTION, PROCESSING, SUCCEEDED, FAILED, CANCELED, EXPIRED},
    # Money taken after we gave up (a late capture) is still settled, then
    # refunded if the violations were paid meanwhile.
    CANCELED: {SUCCEEDED},
    EXPIRED: {SUCCEEDED},
    SUCCEEDED: {REFUNDED},
    REFUNDED: set(),
}

#: States with no outcome yet: the payment holds its violations, and the gateway can still change it
#: on its own (polled by sync and GET).
OPEN = frozenset({CREATED, REQUIRES_ACTION, PROCESSING, FAILED})
#: States in which the gateway charged the payer (and a refund may have followed).
CHARGED = frozenset({SUCCEEDED, REFUNDED})


class InvalidTransition(ValueError):
    """A state change the machine does not allow."""


def can_transition(current, new):
    """Whether a payment in ``current`` may move to ``new``."""
    return new in TRANSITIONS[current]


def check_transition(current, new):
    """Raise InvalidTransition unless current -> new is allowed."""
    if not can_transition(current, new):
        raise InvalidTransition(f"payment cannot go from {current} to {new}")
