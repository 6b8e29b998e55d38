"""The payment gateway seam: one interface, FinePay's own value types, and a registry.

Nothing outside an adapter's own subpackage (``payments/gateways/<name>/``)
knows a gateway's name or field names. An adapter turns the gateway's words
into GatewayIntent, GatewayRefund, GatewayTransaction and GatewayEvent, its
failures into GatewayError, and what the payer must do next into a
NextAction, which the driver pages and the kiosk render without knowing which
adapter is behind it. Its pages, templates, CSP sources and ledger tables are
its own, registered from its ``init_app``. Adapters are found through the
setuptools entry-point group ``finepay.gateways``; the PAYMENT_GATEWAYS setting
names the ones that run, in the order the driver is offered them. Each payment
records the gateway that took it, and everything after (refunds, sync,
notifications, reconciliation) goes to that one (``gateway_for``). This module
is the only one that loads adapter modules. See docs/gateways.md.
"""
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType

import click
from flask import current_app, url_for

from finepay import errors, observability, plugins
from finepay.plugins import entry_points
from finepay.settings import SettingsError, check_sandbox, read_settings

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
    fee: int = 0  # the gateway's fee on this line, minor units (a refund line may carry a negative fee returned)


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
    #: What the notification says was paid, minor units: FinePay settles nothing when it differs from the payment.
    amount: int | None = None
    #: Set when the event concerns a refund (the id refund() returned): FinePay re-reads it with retrieve_refund.
    refund_id: str | None = None

    def __post_init__(self):
        # Whatever an adapter read from a (signed) body must fit FinePay's columns, or the event is malformed.
        for name in ("id", "type", "intent_id", "payment_id", "refund_id"):
            value = getattr(self, name)
            if value is None and name in ("intent_id", "payment_id", "refund_id"):
                continue
            if not isinstance(value, str) or not 0 < len(value) <= EVENT_FIELD_MAX or "\x00" in value:
                raise WebhookVerificationError(f"event {name} is not a string of 1 to {EVENT_FIELD_MAX} characters")
        if self.amount is not None and (isinstance(self.amount, bool) or not isinstance(self.amount, int)
                                        or self.amount < 0):
            raise WebhookVerificationError("event amount is not a whole number of minor units")


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


class BillNotReady(GatewayError):
    """The gateway's statement for a day in the window is not available yet (a daily bill comes the next morning).

    Reconciliation says so instead of showing the day's payments as ledger-only.
    """

    def __init__(self, message, gateway_message=None):
        super().__init__(message, code="bill_not_ready", gateway_message=gateway_message, retryable=True, status=503)


class PaymentGateway:
    """The interface every adapter implements. Methods raise GatewayError on failure.

    Every POST-like call takes an ``idempotency_key`` derived from FinePay's own
    ids, so that a retry after a timeout can never move money twice.
    """

    name = "base"
    #: What the driver sees for this way of paying, on the buttons that offer it (a lazy_gettext string).
    label = ""
    #: The app the payer opens on the phone to scan this gateway's codes, when it is not called as the way of
    #: paying is: WeChat Pay's codes are scanned in 微信 (WeChat), not in "微信支付". Empty: the label.
    app_label = ""
    #: True for an adapter that moves no real money (the sandbox, or a rail pointed at its local simulator):
    #: pages, receipts, the feed and logs say SANDBOX when any configured adapter is, and production refuses it
    #: unless ALLOW_SANDBOX_IN_PRODUCTION. An adapter may set it on the instance, from its own settings.
    simulated = False
    #: Whether start_reader_payment and friends work (card readers at kiosks).
    supports_card_present = False
    #: Notification event types that concern an intent (FinePay re-reads it); others are ignored.
    intent_event_types = frozenset()
    #: Notification event types that concern a refund (FinePay re-reads it with retrieve_refund).
    refund_event_types = frozenset()
    #: The settings it reads from the environment (finepay.settings.Setting), documented in docs/settings.md.
    #: The registry puts each configured adapter's into app.config before init_app; a value given to
    #: create_app wins. Those marked ``secret`` are masked in every log line.
    settings = ()

    def __init__(self, config):
        self.config = config

    @property
    def app(self):
        """The app to open on the phone to scan a code of this gateway's (微信 for WeChat Pay, 支付宝 for Alipay)."""
        return self.app_label or self.label

    @classmethod
    def init_app(cls, app):
        """Register what the adapter brings to the app: its blueprint and templates, CSP sources, settings checks.

        Called once, before the adapter is built, for configured adapters
        only. Raise finepay.settings.SettingsError for settings it cannot run with
        (in production: missing or malformed keys).
        """

    def serves(self, payer: Payer) -> bool:
        """Whether this adapter can take a payment from this payer at all; asks the gateway nothing.

        The pay pages offer every configured adapter that serves the payer,
        labelled with ``label``.
        """
        return True

    def next_action(self, payment, payer: Payer) -> NextAction | None:
        """What the payer must do to pay this open payment from where they are; None when this adapter cannot serve them.

        ``payment`` is FinePay's payments.models.Payment (its id, amount,
        currency, channel, gateway_intent_id, client_secret and next_action_url).
        """
        return None

    def accepts_posted_method(self, payment_method) -> bool:
        """Whether the pay page's form may post ``payment_method`` to confirm (an adapter whose fragment is a form)."""
        return False

    def create_intent(self, *, payment_id, amount, currency, idempotency_key, description=None,
                      expires_at=None) -> GatewayIntent:
        """Create an intent to collect ``amount`` minor units, tagged with FinePay's payment id.

        ``expires_at`` (an aware datetime) is when the quote runs out: an order
        the gateway keeps open must expire then.
        """
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
        """Send back ``amount`` minor units of a succeeded intent (pending: accepted, still being processed)."""
        raise NotImplementedError

    def retrieve_refund(self, intent_id, refund_id) -> GatewayRefund:
        """The refund (``refund_id`` as refund() returned it) as the gateway knows it now."""
        raise NotImplementedError

    def list_transactions(self, start, end) -> list[GatewayTransaction]:
        """Charges and refunds created in [start, end) (aware datetimes), for reconciliation.

        Raise BillNotReady when the gateway's statement for a day in the window is not out yet.
        """
        raise NotImplementedError

    def parse_webhook(self, payload: bytes, headers) -> GatewayEvent:
        """Verify a notification's signature, freshness and ids and return the event; raise WebhookVerificationError."""
        raise NotImplementedError

    def webhook_reply(self, outcome):
        """The answer to a notification FinePay took ("applied", "duplicate", "ignored"): (body, status, headers)."""
        return {"received": True, "outcome": outcome}, 200, {}

    def webhook_refusal(self, error):
        """The answer to a notification FinePay refused (an ApiError: bad signature, gateway unreachable, ...).

        (body, status, headers) in the shape the gateway expects; by default FinePay's JSON error.
        """
        return errors.error_response(error.status, error.code, error.message, error.errors, extra=error.extra)

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
    return plugins.names(ENTRY_POINT_GROUP)


def load_gateway_class(name):
    """The adapter class registered under ``name`` in the finepay.gateways group."""
    return plugins.load_class(ENTRY_POINT_GROUP, name, PaymentGateway, "PAYMENT_GATEWAYS")


def _load_builtin_adapters():
    """The classes of every adapter shipped in this package, loaded so that all their ledger tables are in the schema."""
    return [ep.load() for ep in plugins.shipped(ENTRY_POINT_GROUP, __name__)]


class _Simulators(click.Group):
    """``flask --app wsgi simulate NAME``: each installed simulator, loaded only when it is run."""

    def list_commands(self, ctx):
        return plugins.names(SIMULATOR_GROUP)

    def get_command(self, ctx, name):
        matches = entry_points(group=SIMULATOR_GROUP, name=name)
        return next(iter(matches)).load() if matches else None


simulate_cli = _Simulators("simulate", help="Run a payment rail's local simulator (for development and tests).")


REGISTRY = "finepay.gateways"


def init_app(app):
    """Read each configured adapter's settings, let it register itself, then build each once per app.

    The instances are kept in app.extensions, in PAYMENT_GATEWAYS order.
    SANDBOX is set when any of them is simulated, and production refuses that
    unless allowed.
    """
    builtin = _load_builtin_adapters()
    names = gateway_names(app.config)
    app.config["PAYMENT_GATEWAYS"] = names
    classes = [load_gateway_class(name) for name in names]
    for cls in classes:
        read_settings(app.config, cls.settings)
    # Every shipped adapter's credentials are masked, configured or not: a key set for another one is a key all the same.
    for adapter in (*builtin, *classes):
        for setting in adapter.settings:
            if setting.secret:
                observability.add_secret_setting(app, setting.name)
    registered = set()
    for cls in classes:
        # Two configured names may share one adapter's pages (a subclass): they are registered once.
        if cls.init_app.__func__ not in registered:
            registered.add(cls.init_app.__func__)
            cls.init_app(app)
    gateways = {name: cls(app.config) for name, cls in zip(names, classes, strict=True)}
    for name, gateway in gateways.items():
        gateway.name = name
    simulated = [name for name, gateway in gateways.items() if gateway.simulated]
    app.config["SANDBOX"] = bool(simulated)
    check_sandbox(app.config, simulated)
    app.extensions[REGISTRY] = gateways
    app.cli.add_command(simulate_cli)


def gateway_names(config):
    """The configured adapters' names, in order: PAYMENT_GATEWAYS ("a,b,c" or a list), else PAYMENT_GATEWAY alone."""
    raw = config.get("PAYMENT_GATEWAYS") or config.get("PAYMENT_GATEWAY") or ""
    names = [name.strip() for name in (raw.split(",") if isinstance(raw, str) else raw) if name.strip()]
    if not names:
        raise SettingsError("PAYMENT_GATEWAYS names no gateway (e.g. PAYMENT_GATEWAYS=wechatpay,alipay,sandbox)")
    if len(set(names)) != len(names):
        raise SettingsError(f"PAYMENT_GATEWAYS names a gateway twice: {','.join(names)}")
    return tuple(names)


def configured_gateways() -> list[PaymentGateway]:
    """The running app's gateway adapters, in PAYMENT_GATEWAYS order (the order the driver is offered them)."""
    return list(current_app.extensions[REGISTRY].values())


def gateway_named(name) -> PaymentGateway:
    """The configured adapter called ``name``; GatewayError "unknown_gateway" when none is."""
    gateway = current_app.extensions[REGISTRY].get(name) if isinstance(name, str) else None
    if gateway is None:
        raise GatewayError(f"no configured gateway is called {name!r}", code="unknown_gateway", status=404)
    return gateway


def gateway_for(payment) -> PaymentGateway:
    """The adapter that took this payment (payments.gateway): its refunds, sync and notifications go there."""
    return gateway_named(payment.gateway)


def gateways_serving(payer) -> list[PaymentGateway]:
    """The configured adapters that can take a payment from this payer, in order (no gateway is called)."""
    return [gateway for gateway in configured_gateways() if gateway.serves(payer)]
