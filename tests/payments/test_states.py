"""The payment state machine, as a pure unit: allowed and refused transitions, OPEN set, final states."""
import itertools

import pytest

from payments import states
from payments.states import (
    CANCELED,
    CREATED,
    EXPIRED,
    FAILED,
    OPEN,
    PROCESSING,
    REFUNDED,
    REQUIRES_ACTION,
    STATUSES,
    SUCCEEDED,
    TRANSITIONS,
    InvalidTransition,
    can_transition,
    check_transition,
)

ALLOWED = [
    (CREATED, REQUIRES_ACTION), (CREATED, PROCESSING), (CREATED, SUCCEEDED), (CREATED, FAILED),
    (CREATED, CANCELED), (CREATED, EXPIRED),
    (REQUIRES_ACTION, PROCESSING), (REQUIRES_ACTION, SUCCEEDED), (REQUIRES_ACTION, FAILED),
    (REQUIRES_ACTION, CANCELED), (REQUIRES_ACTION, EXPIRED),
    (PROCESSING, REQUIRES_ACTION), (PROCESSING, SUCCEEDED), (PROCESSING, FAILED), (PROCESSING, CANCELED),
    # The gateway refused the confirm outright (nothing happened there): back to where the driver was.
    (PROCESSING, CREATED),
    (FAILED, REQUIRES_ACTION), (FAILED, PROCESSING), (FAILED, SUCCEEDED), (FAILED, FAILED),
    (FAILED, CANCELED), (FAILED, EXPIRED),
    # A late capture after we gave up is still settled (then refunded if needed).
    (CANCELED, SUCCEEDED), (EXPIRED, SUCCEEDED),
    (SUCCEEDED, REFUNDED),
]
REFUSED = sorted(set(itertools.product(STATUSES, STATUSES)) - set(ALLOWED))


def test_statuses_are_the_eight_documented_ones():
    assert set(STATUSES) == {"created", "requires_action", "processing", "succeeded", "failed", "canceled",
                             "expired", "refunded"}
    assert len(STATUSES) == len(set(STATUSES))
    assert set(TRANSITIONS) == set(STATUSES)
    for targets in TRANSITIONS.values():
        assert targets <= set(STATUSES)


@pytest.mark.parametrize(("current", "new"), ALLOWED)
def test_allowed_transition(current, new):
    assert can_transition(current, new)
    check_transition(current, new)  # does not raise


@pytest.mark.parametrize(("current", "new"), REFUSED)
def test_refused_transition(current, new):
    assert not can_transition(current, new)
    with pytest.raises(InvalidTransition, match=f"{current} to {new}"):
        check_transition(current, new)


def test_the_table_is_exactly_the_allowed_list():
    table = {(current, new) for current, targets in TRANSITIONS.items() for new in targets}
    assert table == set(ALLOWED)


def test_invalid_transition_is_a_value_error():
    assert issubclass(InvalidTransition, ValueError)


@pytest.mark.parametrize("unknown", ["", "paid", "SUCCEEDED", "pending"])
def test_unknown_current_state_is_not_silently_accepted(unknown):
    with pytest.raises(KeyError):
        can_transition(unknown, SUCCEEDED)
    assert not can_transition(CREATED, unknown)


def test_open_set_holds_the_violations_until_an_outcome():
    assert OPEN == frozenset({CREATED, REQUIRES_ACTION, PROCESSING, FAILED})
    assert isinstance(OPEN, frozenset)
    # A declined attempt keeps the violations for the next card.
    assert FAILED in OPEN
    for closed in (SUCCEEDED, CANCELED, EXPIRED, REFUNDED):
        assert closed not in OPEN


def test_charged_states_are_the_ones_where_the_gateway_took_the_money():
    assert states.CHARGED == frozenset({SUCCEEDED, REFUNDED})
    assert not states.CHARGED & OPEN


def test_refunded_is_final():
    assert TRANSITIONS[REFUNDED] == set()
    for status in STATUSES:
        assert not can_transition(REFUNDED, status)


def test_succeeded_never_goes_backwards():
    assert TRANSITIONS[SUCCEEDED] == {REFUNDED}
    for status in OPEN | {CANCELED, EXPIRED, SUCCEEDED}:
        assert not can_transition(SUCCEEDED, status)


@pytest.mark.parametrize("closed", [CANCELED, EXPIRED])
def test_closed_payments_only_move_to_succeeded_for_a_late_capture(closed):
    assert TRANSITIONS[closed] == {SUCCEEDED}
    for status in OPEN | {CANCELED, EXPIRED, REFUNDED}:
        assert not can_transition(closed, status)


def test_a_payment_being_confirmed_cannot_expire():
    # Its outcome is known only from the gateway: expiring it could lose a capture.
    assert not can_transition(PROCESSING, EXPIRED)


def test_only_a_refused_confirm_returns_to_created():
    assert [status for status in STATUSES if can_transition(status, CREATED)] == [PROCESSING]


def test_every_state_is_reachable_from_created():
    reached, frontier = {CREATED}, [CREATED]
    while frontier:
        for new in TRANSITIONS[frontier.pop()]:
            if new not in reached:
                reached.add(new)
                frontier.append(new)
    assert reached == set(STATUSES)


def test_every_open_state_can_reach_an_outcome():
    for status in OPEN:
        assert can_transition(status, SUCCEEDED)
        assert can_transition(status, CANCELED)


def test_module_constants_match_their_names():
    for status in STATUSES:
        assert getattr(states, status.upper()) == status
