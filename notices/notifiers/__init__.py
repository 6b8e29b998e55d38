"""The sender seam: one interface for whatever carries a text to a mobile number, and a registry.

Senders are found through the setuptools entry-point group ``finepay.notifiers``,
as payment gateways are through ``finepay.gateways``; the NOTICE_SENDER setting
names the one that runs (``outbox`` by default). Nothing outside a sender's own
subpackage (``notices/notifiers/<name>/``) knows a provider's name, fields or
signature scheme: a sender turns FinePay's OutgoingText into the provider's
request, its answer into a SendReceipt or a NotifierError, and the provider's
inbound-reply callback into an InboundReply. This module is the only one that
loads sender modules. See docs/notices.md.
"""
from dataclasses import dataclass

from flask import current_app

from finepay import observability, plugins
from finepay.settings import SettingsError, read_settings

ENTRY_POINT_GROUP = "finepay.notifiers"
REGISTRY = "finepay.notifiers"


@dataclass(frozen=True)
class OutgoingText:
    """One text for one number, in FinePay's words."""

    key: str  # FinePay's own id for it ("notice-42"): the provider's session context, to find it again
    phone: str  # 11 digits (notices.rules.normalize_mobile)
    locale: str  # the subscriber's language: zh_CN or en
    kind: str  # notices.models.KINDS: picks the provider's approved template
    body: str  # the whole text, as the outbox shows it
    params: tuple = ()  # the values a provider's approved template is filled with, in order


@dataclass(frozen=True)
class SendReceipt:
    """The provider took the text: its own id for it (recorded, so nothing is sent twice)."""

    provider_message_id: str


@dataclass(frozen=True)
class InboundReply:
    """A text a subscriber sent back (through the provider's reply callback)."""

    phone: str
    text: str


class NotifierError(Exception):
    """The provider failed or refused a text.

    ``retryable``: it did not take the text and may take it later (busy, down,
    our credentials refused); ``outcome_unknown``: it may have taken it (a
    timeout after sending): FinePay asks ``find_sent`` before sending again.
    Neither: a refusal (a number it will not text): never tried again.
    """

    def __init__(self, message, code="notifier_error", *, retryable=False, outcome_unknown=False):
        super().__init__(message)
        self.message = message
        self.code = code
        self.retryable = retryable
        self.outcome_unknown = outcome_unknown


class ReplyRejected(Exception):
    """An inbound-reply callback that does not check out (wrong token, malformed body)."""


class Notifier:
    """The interface every sender implements."""

    name = "base"
    #: What staff see for this sender in the console (a lazy_gettext string); ``name`` is the setting's identifier.
    label = ""
    #: True for a sender that reaches no phone (the outbox): staff read the texts in the console instead.
    simulated = False
    #: Whether the stored text of a one-time code keeps the code (only where the store is the delivery: the outbox).
    keeps_codes = False
    #: The settings it reads from the environment (finepay.settings.Setting), documented in docs/settings.md.
    settings = ()

    def __init__(self, config):
        self.config = config

    @classmethod
    def init_app(cls, app):
        """Register what the sender brings (settings checks); raise SettingsError for settings it cannot run with."""

    def send(self, text: OutgoingText) -> SendReceipt:
        """Hand the text to the provider; raise NotifierError when it did not (or may not have) taken it."""
        raise NotImplementedError

    def find_sent(self, text: OutgoingText, since) -> SendReceipt | None:
        """After an unknown outcome: the receipt when the provider has the text, None when it has no record of it.

        Raise NotifierError when it cannot tell yet. The default cannot ever tell:
        such a message stays ``unknown`` for staff to decide.
        """
        raise NotifierError("this sender cannot look a text up", code="cannot_look_up", retryable=True)

    def parse_reply(self, request) -> InboundReply:
        """The reply in a provider's inbound-reply callback (a Flask request); raise ReplyRejected."""
        raise ReplyRejected("this sender takes no replies")

    def reply_answer(self, accepted):
        """The body and status the provider expects in answer to its callback."""
        return ({"ok": accepted}, 200 if accepted else 400)


def available_notifiers():
    """Names of the installed senders."""
    return plugins.names(ENTRY_POINT_GROUP)


def load_notifier_class(name):
    """The sender class registered under ``name`` in the finepay.notifiers group."""
    return plugins.load_class(ENTRY_POINT_GROUP, name, Notifier, "NOTICE_SENDER", SettingsError)


def init_app(app):
    """Read the configured sender's settings, let it register itself, then build it once for this app."""
    name = (app.config.get("NOTICE_SENDER") or "outbox").strip()
    cls = load_notifier_class(name)
    read_settings(app.config, cls.settings)
    # Every shipped sender's credentials are masked in the logs, configured or not.
    for ep in plugins.shipped(ENTRY_POINT_GROUP, __name__):
        for setting in ep.load().settings:
            if setting.secret:
                observability.add_secret_setting(app, setting.name)
    cls.init_app(app)
    notifier = cls(app.config)
    notifier.name = name
    app.extensions[REGISTRY] = notifier


def current_notifier() -> Notifier:
    """The running app's sender."""
    return current_app.extensions[REGISTRY]
