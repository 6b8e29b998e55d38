"""The payment gateway seam: one interface, FinePay's own value types, and a registry.

Nothing outside an adapter's own subpackage (``payments/gateways/<name>/``)
knows a gateway's name or field names. An adapter turns the gateway's words
into GatewayIntent, GatewayRefund, GatewayTransaction and GatewayEvent, its
failures into GatewayError, and what the payer must do next into a
NextAction, which the driver pages and the kiosk render without knowing which
adapter is behind it. Its pages, templates, CSP sources and ledger tables are
its own, registered from its ``init_app``. Adapters are found through the
setuptools entry-point group ``finepay.gateways``; the PAYMENT_GATEWAY setting
names one. This module is the only one that loads adapter modules. See
docs/gateways.md.
"""
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from importlib.metadata import entry_points
from types import MappingProxyType

import click
from flask import current_app, url_for

from finepay import observability
from finepay.settings import check_sandbox, read_settings

ENTRY_POINT_GROUP = "finepay.gateways"
# A rail with no local sandbox ships a simulator: a click command registered under its name in this group.
SIMULATOR_GROUP = "finepay.simulators"

# FinePay's words for where a gateway intent stands.
REQUIRES_PAYMENT_METHOD = "requires_payment_method"
REQUIRES_ACTION = "requires_action"
PROCESSING = "processing"
SUCCEEDED = "succeeded"
FAILED = "failed"  # the last attempt was declined; another method may be tried
CANCELED = "canceled"

# FinePay's decline codes; the payments service words them for drivers.
DECLINE_CODES = (
    "card_declined", "insufficient_funds", "expired_card", "incorrect_cvc", "incorrect_number",
    "authentication_failed", "processing_error", "card_not_supported", "limit_exceeded",
)


@dataclass(frozen=True)
class GatewayIntent:
    """One attempt to collect an amount, as the gateway sees it."""

    id: str
    status: str
    amount: int
    currency: str
    amount_received: int = 0
    payment_id: str | None = None  # FinePay's payment id, carried in the gateway's metadata
    client_secret: str | None = None
    next_action_url: str | None = None  # where the payer completes an authentication step
    charge_id: str | None = None
    failure_code: str | None = None  # one of DECLINE_CODES
    failure_message: str | None = None  # the gateway's own words, for staff and logs only


@dataclass(frozen=True)
class GatewayRefund:
    """Money sent back for an intent."""

    id: str
    intent_id: str
    amount: int
    currency: str
    status: str  # succeeded | pending | failed


@dataclass(frozen=True)
class GatewayTransaction:
    """A settled movement of money at the gateway, for reconciliation."""

    id: str
    kind: str  # charge | refund
    intent_id: str | None
    payment_id: str | None
    amount: int
    currency: str
    created_at: datetime
    status: str = SUCCEEDED


# The longest event id, type or intent id FinePay records (payments.models.WebhookEvent).
EVENT_FIELD_MAX = 100


@dataclass(frozen=True)
class GatewayEvent:
    """A verified notification from the gateway."""

    id: str
    type: str  # the gateway's event type, for the record
    intent_id: str | None = None  # set when the event concerns an intent: FinePay re-reads it
    payment_id: str | None = None
    data: dict = field(default_factory=dict, compare=False)

    def __post_init__(self):
        # Whatever an adapter read from a (signed) body must fit FinePay's columns, or the event is malformed.
        for name in ("id", "type", "intent_id", "payment_id"):
            value = getattr(self, name)
            if value is None and name in ("intent_id", "payment_id"):
                continue
            if not isinstance(value, str) or not 0 < len(value) <= EVENT_FIELD_MAX or "\x00" in value:
                raise WebhookVerificationError(f"event {name} is not a string of 1 to {EVENT_FIELD_MAX} characters")


# Where a card-present collection on a kiosk's reader stands (see ReaderPayment).
READER_WAITING = "waiting"  # the reader shows the amount and waits for a card
READER_SUCCEEDED = "succeeded"
READER_FAILED = "failed"  # declined, card removed or timed out: failure_code says which
READER_CANCELED = "canceled"
READER_STATUSES = (READER_WAITING, READER_SUCCEEDED, READER_FAILED, READER_CANCELED)
# Card-present failures that are not a bank's decline (a decline uses DECLINE_CODES).
READER_FAILURE_CODES = ("card_removed", "reader_timeout", "reader_canceled")


@dataclass(frozen=True)
class CardTerminal:
    """A kiosk as a card-present adapter sees it: FinePay's terminal and the reader it is paired with."""

    id: int
    name: str
    reader_id: str | None = None  # the gateway's own id of the reader, set at enrolment


@dataclass(frozen=True)
class ReaderPayment:
    """One attempt to collect an intent on a terminal's card reader, as the gateway sees it.

    The money itself is always judged from the intent (retrieve_intent); this
    only says what the reader is doing, so the kiosk can tell the driver.
    """

    id: str
    intent_id: str
    reader_id: str
    status: str  # one of READER_STATUSES
    failure_code: str | None = None  # one of DECLINE_CODES or READER_FAILURE_CODES
    failure_message: str | None = None  # the gateway's own words, for staff and logs only


# What a simulated card holder does at a simulated reader (PaymentGateway.simulate_reader): approve,
# decline, pull the card out too early, or let the reader time out.
READER_SIMULATIONS = ("approve", "decline", "card_removed", "timeout")

# Where the payer is, so that the adapter can offer what fits (Payer.surface).
SURFACE_BROWSER = "browser"  # FinePay's web pages, on any device
SURFACE_KIOSK = "kiosk"  # a kiosk in a service hall, with a card reader beside the screen

# What the payer must do next (NextAction.kind).
ENTER_CARD = "enter_card"  # fill in or pick a card in the adapter's own fragment of the pay page
REDIRECT = "redirect"  # go to the gateway's page (or app) at ``url``; it sends the payer back to return_url()
SCAN_QR = "scan_qr"  # scan ``qr_payload`` with a phone; the page polls until the payment moves on
IN_APP = "in_app"  # the page runs in the gateway's app: the adapter's fragment hands ``params`` to the app's JS bridge
PRESENT_CARD = "present_card"  # present a card at the kiosk's reader; the kiosk polls
NEXT_ACTION_KINDS = (ENTER_CARD, REDIRECT, SCAN_QR, IN_APP, PRESENT_CARD)

@dataclass(frozen=True)
class Payer:
    """Where the payer stands when a page asks what to do next."""

    surface: str = SURFACE_BROWSER  # SURFACE_BROWSER or SURFACE_KIOSK
    user_agent: str = ""  # the browser's User-Agent: an adapter may tell a phone, or an app's own browser, by it


@dataclass(frozen=True)
class NextAction:
    """What the payer must do next, in FinePay's words; the pages render it whatever the adapter.

    ``fragment`` names a template the adapter owns (in its own templates
    folder, e.g. ``"sandbox/pay.html"``); the page includes it with
    ``payment`` and ``action`` in scope. It is required for ENTER_CARD and
    IN_APP (only the adapter knows its card field or its app's bridge) and
    optional for the other kinds, which FinePay draws itself (a link, a QR
    code with polling, the kiosk's reader screen). Build one with the class
    methods, which check each kind's fields.
    """

    kind: str
    fragment: str | None = None
    url: str | None = None  # REDIRECT: where the payer goes
    qr_payload: str | None = None  # SCAN_QR: the text to draw as a QR code (usually the gateway's code URL)
    params: Mapping = field(default_factory=dict, compare=False)  # IN_APP: what the app's bridge is handed, as is
    context: Mapping = field(default_factory=dict, compare=False)  # extra names for the adapter's fragment
    poll_seconds: int | None = None  # how often the page asks again while the payer acts elsewhere

    def __post_init__(self):
        if self.kind not in NEXT_ACTION_KINDS:
            raise ValueError(f"unknown next action {self.kind!r}")
        required = {ENTER_CARD: "fragment", REDIRECT: "url", SCAN_QR: "qr_payload", IN_APP: "fragment"}.get(self.kind)
        if required and not getattr(self, required):
            raise ValueError(f"a {self.kind} action needs {required}")
        object.__setattr__(self, "params", MappingProxyType(dict(self.params)))
        object.__setattr__(self, "context", MappingProxyType(dict(self.context)))

    @classmethod
    def enter_card(cls, fragment, **context):
        """The payer enters or picks a card in the adapter's fragment of the pay page."""
        return cls(ENTER_CARD, fragment=fragment, context=context)

    @classmethod
    def redirect(cls, url, *, fragment=None, **context):
        """The payer continues at the gateway's page and comes back to return_url()."""
        return cls(REDIRECT, url=url, fragment=fragment, context=context)

    @classmethod
    def scan_qr(cls, payload, *, poll_seconds=3, fragment=None, **context):
        """The payer scans a QR code of ``payload`` with a phone while the page waits."""
        return cls(SCAN_QR, qr_payload=payload, poll_seconds=poll_seconds, fragment=fragment, context=context)

    @classmethod
    def in_app(cls, fragment, params, *, poll_seconds=3, **context):
        """The page runs inside the gateway's app: the adapter's fragment hands ``params`` to the app's bridge."""
        return cls(IN_APP, fragment=fragment, params=params, poll_seconds=poll_seconds, context=context)

    @classmethod
    def present_card(cls, *, fragment=None, **context):
        """The payer presents a card at the kiosk's reader; ``fragment`` may add controls (a simulated reader)."""
        return cls(PRESENT_CARD, fragment=fragment, context=context)


INTENT_LISTENER = "finepay.gateways.intent_listener"


def listen_for_intents(app, listener):
    """Who brings a payment in line with its intent when an adapter's own page changes one (the payments area)."""
    app.extensions[INTENT_LISTENER] = listener


def intent_changed(intent):
    """An adapter's own page changed this intent (as its webhook would say): the payment follows, now.

    Returns what the listener returns (the payment brought up to date).
    """
    return current_app.extensions[INTENT_LISTENER](intent)


def return_url(payment_id, *, external=True):
    """Where a gateway's page sends the payer back to: the payment's own page, which shows where it stands.

    Absolute (PUBLIC_BASE_URL when set, as behind a proxy) for a gateway on
    another site; ``external=False`` for a page of FinePay's own.
    """
    path = url_for("pay.show", payment_id=payment_id)
    if not external:
        return path
    base = current_app.config.get("PUBLIC_BASE_URL")
    return base.rstrip("/") + path if base else url_for("pay.show", payment_id=payment_id, _external=True)


# Errors that say nothing about the request itself (FinePay's credentials were refused): worth sending again.
TRANSIENT_CODES = frozenset({"gateway_auth", "gateway_unavailable", "gateway_timeout"})


class GatewayError(Exception):
    """The gateway failed or refused a request.

    ``outcome_unknown`` is true when the request may have taken effect (a
    timeout after sending): the caller must not assume either way, and
    ``payments sync`` finds out later. An error that is neither retryable nor
    of unknown outcome is a refusal (see ``refused``).
    """

    def __init__(self, message, code="gateway_error", gateway_message=None, *, retryable=False,
                 outcome_unknown=False, status=502):
        super().__init__(message)
        self.message = message
        self.code = code
        self.gateway_message = gateway_message
        self.retryable = retryable
        self.outcome_unknown = outcome_unknown
        self.status = status

    @property
    def refused(self):
        """Whether the gateway heard the request and said no: the same request can never succeed.

        Unreachable, timed out, busy or misconfigured (our credentials refused)
        is not a refusal: the request may succeed when sent again.
        """
        return not (self.retryable or self.outcome_unknown) and self.code not in TRANSIENT_CODES


class WebhookVerificationError(GatewayError):
    """A webhook whose signature, timestamp or body does not check out."""

    def __init__(self, message):
        super().__init__(message, code="bad_signature", status=400)


class PaymentGateway:
    """The interface every adapter implements. Methods raise GatewayError on failure.

    Every POST-like call takes an ``idempotency_key`` derived from FinePay's own
    ids, so that a retry after a timeout can never move money twice.
    """

    name = "base"
    #: True for an adapter that moves no real money (the sandbox): pages, receipts, the feed and logs say SANDBOX,
    #: and production refuses it unless ALLOW_SANDBOX_IN_PRODUCTION. The one way to ask "is this a sandbox?".
    simulated = False
    #: Whether start_reader_payment and friends work (card readers at kiosks).
    supports_card_present = False
    #: Webhook event types that concern an intent (FinePay re-reads it); others are ignored.
    intent_event_types = frozenset()
    #: The settings it reads from the environment (finepay.settings.Setting), documented in docs/settings.md.
    #: The registry puts the configured adapter's into app.config before init_app; a value given to
    #: create_app wins. Those marked ``secret`` are masked in every log line.
    settings = ()

    def __init__(self, config):
        self.config = config

    @classmethod
    def init_app(cls, app):
        """Register what the adapter brings to the app: its blueprint and templates, CSP sources, settings checks.

        Called once, before the adapter is built, for the configured adapter
        only. Raise finepay.settings.SettingsError for settings it cannot run with.
        """

    def serves(self, payer: Payer) -> bool:
        """Whether this adapter can take a payment from this payer at all (no gateway call).

        Stand-in until branch multi brings the seam's own: a kiosk's driver only
        through the card reader beside its screen, unless the adapter says otherwise.
        """
        return payer.surface != SURFACE_KIOSK or self.supports_card_present

    def next_action(self, payment, payer: Payer) -> NextAction | None:
        """What the payer must do to pay this open payment from where they are; None when this adapter cannot serve them.

        ``payment`` is FinePay's payments.models.Payment (its id, amount,
        currency, channel, gateway_intent_id, client_secret and next_action_url).
        """
        return None

    def accepts_posted_method(self, payment_method) -> bool:
        """Whether the pay page's form may post ``payment_method`` to confirm (an adapter whose fragment is a form)."""
        return False

    def create_intent(self, *, payment_id, amount, currency, idempotency_key, description=None) -> GatewayIntent:
        """Create an intent to collect ``amount`` minor units, tagged with FinePay's payment id."""
        raise NotImplementedError

    def confirm_intent(self, intent_id, *, payment_method, idempotency_key) -> GatewayIntent:
        """Attach a payment method (a gateway token such as pm_card_visa) and confirm."""
        raise NotImplementedError

    def retrieve_intent(self, intent_id) -> GatewayIntent:
        """The intent as the gateway knows it now."""
        raise NotImplementedError

    def cancel_intent(self, intent_id, *, idempotency_key) -> GatewayIntent:
        """Cancel an intent that has not succeeded; returns the intent (which may have succeeded meanwhile)."""
        raise NotImplementedError

    def refund(self, intent_id, *, amount, idempotency_key, reason=None) -> GatewayRefund:
        """Send back ``amount`` minor units of a succeeded intent."""
        raise NotImplementedError

    def list_transactions(self, start, end) -> list[GatewayTransaction]:
        """Charges and refunds created in [start, end) (aware datetimes), for reconciliation."""
        raise NotImplementedError

    def parse_webhook(self, payload: bytes, headers) -> GatewayEvent:
        """Verify a webhook's signature and freshness and return the event; raise WebhookVerificationError."""
        raise NotImplementedError

    def client_fields(self, intent) -> dict:
        """Extra fields the payer's page needs (e.g. client_secret, publishable key)."""
        return {}

    # Card-present payments at kiosks: only when supports_card_present is True.
    # The server drives the reader (as in Stripe Terminal's server-driven flow);
    # the outcome is read back with reader_status and, for the money, retrieve_intent.
    def start_reader_payment(self, intent_id, *, terminal: CardTerminal, idempotency_key) -> ReaderPayment:
        """Ask the terminal's reader to collect the intent: it shows the amount and waits for a card.

        While the reader waits, retrieve_intent should report PROCESSING, so that
        nothing else supersedes the payment; a reader that is off or busy raises
        GatewayError(code="reader_unavailable").
        """
        raise NotImplementedError

    def reader_status(self, intent_id, *, terminal: CardTerminal) -> ReaderPayment:
        """The latest reader attempt for the intent (poll it; a webhook may also say "look again")."""
        raise NotImplementedError

    def cancel_reader_payment(self, intent_id, *, terminal: CardTerminal, idempotency_key) -> ReaderPayment:
        """Stop the reader's attempt if it still waits; returns it (it may have succeeded meanwhile)."""
        raise NotImplementedError

    def simulate_reader(self, terminal: CardTerminal, outcome) -> ReaderPayment:
        """A simulated adapter's reader: do what a card holder would (one of READER_SIMULATIONS) at the terminal.

        Only for adapters that are ``simulated`` and ``supports_card_present``;
        raise GatewayError(code="reader_idle") when the reader waits for no card.
        """
        raise NotImplementedError


def available_gateways():
    """Names of the installed adapters."""
    return sorted(ep.name for ep in entry_points(group=ENTRY_POINT_GROUP))


def load_gateway_class(name):
    """The adapter class registered under ``name`` in the finepay.gateways group."""
    matches = entry_points(group=ENTRY_POINT_GROUP, name=name)
    if not matches:
        raise ValueError(f"PAYMENT_GATEWAY {name!r} is not installed; available: {available_gateways()}")
    cls = next(iter(matches)).load()
    if not (isinstance(cls, type) and issubclass(cls, PaymentGateway)):
        raise ValueError(f"entry point {name!r} is not a PaymentGateway subclass")
    return cls


def _load_builtin_adapters():
    """The classes of every adapter shipped in this package, loaded so that all their ledger tables are in the schema."""
    return [ep.load() for ep in entry_points(group=ENTRY_POINT_GROUP) if ep.module.startswith(__name__ + ".")]


class _Simulators(click.Group):
    """``flask --app wsgi simulate NAME``: each installed simulator, loaded only when it is run."""

    def list_commands(self, ctx):
        return sorted(ep.name for ep in entry_points(group=SIMULATOR_GROUP))

    def get_command(self, ctx, name):
        matches = entry_points(group=SIMULATOR_GROUP, name=name)
        return next(iter(matches)).load() if matches else None


simulate_cli = _Simulators("simulate", help="Run a payment rail's local simulator (for development and tests).")


def init_app(app):
    """Read the configured adapter's settings, let it register itself, then build it once per app (app.extensions)."""
    builtin = _load_builtin_adapters()
    cls = load_gateway_class(app.config["PAYMENT_GATEWAY"])
    read_settings(app.config, cls.settings)
    # Every shipped adapter's credentials are masked, configured or not: a key set for another one is a key all the same.
    for adapter in (*builtin, cls):
        for setting in adapter.settings:
            if setting.secret:
                observability.add_secret_setting(app, setting.name)
    app.config["SANDBOX"] = cls.simulated
    check_sandbox(app.config)
    cls.init_app(app)
    app.extensions["finepay.gateway"] = cls(app.config)
    app.cli.add_command(simulate_cli)


def current_gateway() -> PaymentGateway:
    """The running app's gateway adapter."""
    return current_app.extensions["finepay.gateway"]


# Stand-in for the seam's registry of several gateways (SEAM.md item 1), which branch `multi` brings;
# only so that the kiosk's scan to pay can be built and tested on one configured gateway meanwhile.
# At the merge of `multi`, its registry replaces these three functions.
def configured_gateways() -> list[PaymentGateway]:
    """The configured adapters, in order (here: the one configured gateway)."""
    return [current_gateway()]


def gateway_named(name) -> PaymentGateway:
    """The configured adapter called ``name``; GatewayError "unknown_gateway" when none is."""
    for gateway in configured_gateways():
        if gateway.name == name:
            return gateway
    raise GatewayError(f"no configured gateway {name!r}", code="unknown_gateway", status=404)


def gateway_for(payment) -> PaymentGateway:
    """The adapter that took this payment."""
    return gateway_named(payment.gateway)
