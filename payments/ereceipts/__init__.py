"""The official e-receipt seam (财政电子票据): one interface, FinePay's own value types, the format rules, a registry.

After a payment settles, FinePay asks the configured issuer (ERECEIPT_ISSUER,
found through the setuptools entry-point group ``finepay.ereceipts``, as the
gateways are) for the official receipt of the fines it collected; a refund
red-flushes (冲红) it and asks for a new one for what remains. The ``sandbox``
issuer numbers them locally and serves a verification page; a provincial
finance platform plugs in behind the same interface. The queue that asks,
retries and records them is payments.ereceipt_requests. See docs/ereceipts.md.

The numbers follow the finance ministry's data standard for fiscal e-receipts:
票据代码 8 digits (region, category, kind, year, two digits each), 票据号码 10
digits in sequence within a code, 校验码 6 characters.
"""
import re
from dataclasses import dataclass
from datetime import datetime

from flask import current_app

from finepay import observability, plugins
from finepay.settings import Setting, SettingsError, read_settings

ENTRY_POINT_GROUP = "finepay.ereceipts"
REGISTRY = "finepay.ereceipts"

BLUE, RED = "blue", "red"  # an e-receipt, and the red-flush (冲红) that cancels one

CODE_PATTERN = re.compile(r"\d{8}")  # 票据代码
NUMBER_PATTERN = re.compile(r"\d{10}")  # 票据号码
CHECK_CODE_PATTERN = re.compile(r"[0-9A-Za-z]{6}")  # 校验码

# What an e-receipt's lines are for (项目): the fine itself, and the late fee (加处罚款, by law a further fine).
ITEM_FINE, ITEM_LATE_FEE = "fine", "late_fee"
ITEM_KINDS = (ITEM_FINE, ITEM_LATE_FEE)


class EReceiptError(Exception):
    """The issuer failed or refused: FinePay keeps the request queued and asks again later (with backoff)."""

    def __init__(self, message, code="ereceipt_unavailable"):
        super().__init__(message)
        self.message = message
        self.code = code


@dataclass(frozen=True)
class EReceiptItem:
    """One line of an e-receipt (项目): a violation's fine or its late fee, in minor units (negative on a red-flush)."""

    kind: str  # ITEM_FINE or ITEM_LATE_FEE
    reference: str  # the violation's notice number
    amount: int


@dataclass(frozen=True)
class IssueRequest:
    """What FinePay asks to be issued: who paid whom, for what, once (``idempotency_key``)."""

    idempotency_key: str
    payer: str  # 交款人: the vehicle's plate (FinePay knows no name)
    authority: str  # 收款单位: the collecting authority (AUTHORITY_NAME)
    currency: str
    items: tuple  # EReceiptItem, all positive
    payment_id: str
    receipt_number: str  # FinePay's own receipt number, for the issuer's records

    @property
    def amount(self):
        """The e-receipt's total."""
        return sum(item.amount for item in self.items)


@dataclass(frozen=True)
class EReceipt:
    """An e-receipt (or the red-flush of one) as the issuer made it."""

    kind: str  # BLUE or RED
    code: str  # 票据代码
    number: str  # 票据号码
    check_code: str  # 校验码
    issued_at: datetime  # 开票日期
    payer: str
    authority: str
    currency: str
    items: tuple  # EReceiptItem
    verification_url: str
    flushes: tuple | None = None  # a red-flush's (code, number) of the e-receipt it cancels

    @property
    def amount(self):
        """The e-receipt's total (negative on a red-flush)."""
        return sum(item.amount for item in self.items)


def check_ereceipt(ereceipt):
    """Refuse an e-receipt whose numbers do not follow the standard, or whose sign does not fit its kind.

    FinePay records and prints what the issuer returns: a malformed one is an
    issuer's error, and the request is asked again rather than shown.
    """
    problems = []
    if not CODE_PATTERN.fullmatch(ereceipt.code or ""):
        problems.append("code is not 8 digits")
    if not NUMBER_PATTERN.fullmatch(ereceipt.number or ""):
        problems.append("number is not 10 digits")
    if not CHECK_CODE_PATTERN.fullmatch(ereceipt.check_code or ""):
        problems.append("check code is not 6 letters or digits")
    if ereceipt.kind not in (BLUE, RED) or not ereceipt.items:
        problems.append("kind or items missing")
    elif any(item.kind not in ITEM_KINDS or (item.amount > 0) != (ereceipt.kind == BLUE) for item in ereceipt.items):
        problems.append("an item's kind or sign does not fit")
    if ereceipt.kind == RED and not ereceipt.flushes:
        problems.append("a red-flush names no e-receipt")
    if problems:
        raise EReceiptError("malformed e-receipt: " + ", ".join(problems), code="ereceipt_malformed")
    return ereceipt


class EReceiptIssuer:
    """The interface every e-receipt adapter implements. Methods raise EReceiptError on failure.

    Both calls carry an idempotency key derived from FinePay's request: asked
    twice (a retry after a timeout, two retriers at once), the issuer answers
    with the e-receipt it made the first time.
    """

    name = "base"
    #: True for an issuer whose e-receipts are not official (the sandbox): pages say SANDBOX beside them.
    simulated = False
    #: The settings it reads from the environment (finepay.settings.Setting), documented in docs/settings.md.
    settings = ()

    def __init__(self, config):
        self.config = config

    @classmethod
    def init_app(cls, app):
        """Register what the issuer brings to the app (its verification page); raise SettingsError for bad settings."""

    def issue(self, request: IssueRequest) -> EReceipt:
        """Issue the e-receipt for ``request`` (idempotent by its key)."""
        raise NotImplementedError

    def red_flush(self, ereceipt: EReceipt, lines, *, idempotency_key, reason) -> EReceipt:
        """Cancel ``ereceipt`` in full with a red-flush (冲红); ``lines`` are the notice numbers refunded (the reason)."""
        raise NotImplementedError


def available_issuers():
    """Names of the installed e-receipt adapters."""
    return plugins.names(ENTRY_POINT_GROUP)


def load_issuer_class(name):
    """The adapter class registered under ``name`` in the finepay.ereceipts group."""
    return plugins.load_class(ENTRY_POINT_GROUP, name, EReceiptIssuer, "ERECEIPT_ISSUER", SettingsError)


NO_ISSUER = "none"


def issuer_setting(config):
    """ERECEIPT_ISSUER: ``sandbox`` by default in development; in production no default (``none``: no e-receipts)."""
    return Setting("ERECEIPT_ISSUER", "sandbox" if config["FINEPAY_ENV"] == "development" else NO_ISSUER)


def init_app(app):
    """Load every shipped adapter (their tables are in the schema), read the configured one's settings, build it once.

    ``ERECEIPT_ISSUER=none`` (production's default until the province's
    platform is configured) runs without an issuer: no e-receipt is asked
    for, and the pages show none. Production refuses the sandbox issuer
    unless ALLOW_SANDBOX_IN_PRODUCTION, as it refuses the sandbox gateway.
    """
    for ep in plugins.shipped(ENTRY_POINT_GROUP, __name__):
        ep.load()
    read_settings(app.config, (issuer_setting(app.config),))
    name = (app.config["ERECEIPT_ISSUER"] or "").strip() or NO_ISSUER
    app.config["ERECEIPT_ISSUER"] = name
    if name == NO_ISSUER:
        app.extensions[REGISTRY] = None
        if app.config["FINEPAY_ENV"] == "production":
            app.logger.warning("ERECEIPT_ISSUER is not set: no official e-receipts are issued (docs/ereceipts.md)")
        return
    cls = load_issuer_class(name)
    read_settings(app.config, cls.settings)
    for setting in cls.settings:
        if setting.secret:
            observability.add_secret_setting(app, setting.name)
    if cls.simulated and app.config["FINEPAY_ENV"] == "production" and not app.config["ALLOW_SANDBOX_IN_PRODUCTION"]:
        raise SettingsError(f"FINEPAY_ENV=production with ERECEIPT_ISSUER={name}, whose e-receipts are not official: "
                            "configure the province's platform, or ALLOW_SANDBOX_IN_PRODUCTION=1 for a staging copy")
    cls.init_app(app)
    issuer = cls(app.config)
    issuer.name = name
    app.extensions[REGISTRY] = issuer


def current_issuer() -> EReceiptIssuer | None:
    """The running app's e-receipt adapter; None when ERECEIPT_ISSUER is ``none``."""
    return current_app.extensions[REGISTRY]
