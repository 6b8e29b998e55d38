"""The sandbox issuer: e-receipts numbered as the standard says, with a check code and a verification page.

It keeps its ledger in FinePay's database, in its own session and
transactions, so that it behaves like an outside platform: a rollback in
FinePay does not undo an e-receipt here. Setting ERECEIPT_SANDBOX_DOWN makes
every call fail, to see FinePay queue and retry (docs/ereceipts.md).
"""
import hashlib
import hmac
from urllib.parse import urlencode

from flask import current_app, has_request_context, request
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from finepay.dbtypes import utcnow
from finepay.extensions import db
from finepay.settings import Setting, SettingsError, env_bool
from payments.ereceipts import BLUE, RED, EReceipt, EReceiptError, EReceiptIssuer, EReceiptItem

from .models import SandboxEReceipt
from .views import VERIFY_PATH, bp

# 票据代码: region (2) + category (2) + kind (2) + year (2). The region is the deployment's province; the
# category and kind are the sandbox's own (a province's platform assigns real ones with the e-receipt stock).
SANDBOX_CATEGORY_KIND = "0601"
NUMBER_RETRIES = 5


def code_for(region, year):
    """The sandbox's 票据代码 for a year: region, category, kind, the year's last two digits."""
    return f"{region}{SANDBOX_CATEGORY_KIND}{year % 100:02d}"


def check_code_for(secret, code, number, amount, issued_at):
    """The 校验码: six hex digits that only the issuer can compute, so that a made-up e-receipt does not verify."""
    message = f"{code}|{number}|{amount}|{issued_at:%Y%m%d}".encode()
    return hmac.new(("sandbox-ereceipt:" + secret).encode(), message, hashlib.sha256).hexdigest()[:6]


def next_number(session, code):
    """The next 票据号码 within a code: ten digits, in sequence from 0000000001."""
    last = session.execute(select(func.max(SandboxEReceipt.number)).where(SandboxEReceipt.code == code)).scalar()
    return f"{int(last or 0) + 1:010d}"


def _ereceipt(row):
    return EReceipt(
        kind=row.kind, code=row.code, number=row.number, check_code=row.check_code, issued_at=row.issued_at,
        payer=row.payer, authority=row.authority, currency=row.currency,
        items=tuple(EReceiptItem(kind, reference, amount) for kind, reference, amount in row.items),
        verification_url=verification_url(row.code, row.number, row.check_code),
        flushes=(row.flushes_code, row.flushes_number) if row.flushes_code else None,
    )


def verification_url(code, number, check_code):
    """The address of the sandbox's verification page for an e-receipt.

    Absolute with PUBLIC_BASE_URL, or in a request; a path when asked from
    the command line without PUBLIC_BASE_URL (pages make it absolute).
    """
    path = VERIFY_PATH + "?" + urlencode({"code": code, "number": number, "check": check_code})
    base = current_app.config.get("PUBLIC_BASE_URL") or (request.host_url if has_request_context() else "")
    return base.rstrip("/") + path


class SandboxIssuer(EReceiptIssuer):
    """A stand-in for a provincial fiscal e-receipt platform, for development, demos and tests."""

    name = "sandbox"
    simulated = True
    settings = (
        # The province's two-digit region code, the first two digits of every 票据代码 (15: Inner Mongolia).
        Setting("ERECEIPT_SANDBOX_REGION", "15"),
        # Simulate an outage: every call fails, and FinePay queues the requests.
        Setting("ERECEIPT_SANDBOX_DOWN", False, env_bool),
    )

    @classmethod
    def init_app(cls, app):
        """Register the verification page; refuse a region that is not two digits."""
        region = app.config["ERECEIPT_SANDBOX_REGION"]
        if not (isinstance(region, str) and len(region) == 2 and region.isdigit()):
            raise SettingsError(f"ERECEIPT_SANDBOX_REGION must be two digits, got {region!r}")
        app.register_blueprint(bp)

    def _session(self):
        return Session(db.engine, expire_on_commit=False)

    def _check_up(self):
        if self.config.get("ERECEIPT_SANDBOX_DOWN"):
            raise EReceiptError("The sandbox e-receipt service is down (ERECEIPT_SANDBOX_DOWN).")

    def issue(self, request):
        """Issue the e-receipt for the request, or return the one already issued under its key."""
        self._check_up()
        items = [[item.kind, item.reference, item.amount] for item in request.items]
        return self._make(request.idempotency_key, BLUE, request.payer, request.authority, request.currency, items,
                          payment_id=request.payment_id)

    def red_flush(self, ereceipt, lines, *, idempotency_key, reason):
        """Cancel the e-receipt in full: a red e-receipt with every item negated, naming the one it cancels."""
        self._check_up()
        with self._session() as session:
            original = session.execute(select(SandboxEReceipt).where(
                SandboxEReceipt.code == ereceipt.code, SandboxEReceipt.number == ereceipt.number,
                SandboxEReceipt.kind == BLUE)).scalar_one_or_none()
            if original is None:
                raise EReceiptError("No such sandbox e-receipt.", code="ereceipt_unknown")
            payment_id = original.payment_id
        items = [[item.kind, item.reference, -item.amount] for item in ereceipt.items]
        return self._make(idempotency_key, RED, ereceipt.payer, ereceipt.authority, ereceipt.currency, items,
                          payment_id=payment_id, flushes=(ereceipt.code, ereceipt.number))

    def _make(self, key, kind, payer, authority, currency, items, *, payment_id, flushes=None):
        for _attempt in range(NUMBER_RETRIES):
            with self._session() as session:
                seen = session.execute(
                    select(SandboxEReceipt).where(SandboxEReceipt.idempotency_key == key)).scalar_one_or_none()
                if seen is not None:
                    return _ereceipt(seen)
                now = utcnow()
                code = code_for(self.config["ERECEIPT_SANDBOX_REGION"], now.year)
                number = next_number(session, code)
                row = SandboxEReceipt(
                    idempotency_key=key, kind=kind, code=code, number=number, payer=payer, authority=authority,
                    currency=currency, items=items, payment_id=payment_id, issued_at=now,
                    check_code=check_code_for(self.config["SECRET_KEY"], code, number,
                                              sum(amount for _k, _r, amount in items), now),
                    flushes_code=flushes[0] if flushes else None, flushes_number=flushes[1] if flushes else None,
                )
                session.add(row)
                if flushes:
                    session.execute(
                        SandboxEReceipt.__table__.update()
                        .where(SandboxEReceipt.code == flushes[0], SandboxEReceipt.number == flushes[1])
                        .values(red_flushed_at=now)
                    )
                try:
                    session.commit()
                except IntegrityError:  # the same key, or the same number, taken at the same moment: look again
                    session.rollback()
                    continue
                return _ereceipt(row)
        raise EReceiptError("The sandbox could not number the e-receipt.", code="ereceipt_busy")

    def find(self, code, number, check_code):
        """The e-receipt with these three numbers (all must match), and when it was red-flushed; None if none."""
        with self._session() as session:
            row = session.execute(select(SandboxEReceipt).where(
                SandboxEReceipt.code == code, SandboxEReceipt.number == number)).scalar_one_or_none()
            if row is None or not hmac.compare_digest(row.check_code, check_code.lower()):
                return None
            return _ereceipt(row), row.red_flushed_at
