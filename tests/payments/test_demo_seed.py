"""`flask demo seed` pays the demo's paid (and refunded) notices with a test card, whichever gateway comes first."""
import pytest
from sqlalchemy import select

from finepay.extensions import db
from payments.models import Payment
from tests.kiosk import scan_gateway
from violations.demo import PAID_NOTICE
from violations.models import PAID, Violation


class PhoneOnlyRail(scan_gateway.ScanGateway):
    """A rail paid on the payer's phone, as WeChat Pay and Alipay are: its pages post no card token."""

    def accepts_posted_method(self, payment_method):
        return False

    def confirm_intent(self, intent_id, **kwargs):
        raise NotImplementedError("paid on a phone, never confirmed with a card")


@pytest.fixture
def app_config(tmp_path, monkeypatch):
    """The phone rail first, the card sandbox after it, as in `make run`."""
    scan_gateway.install(tmp_path, monkeypatch)
    monkeypatch.setattr(scan_gateway, "ScanGateway", PhoneOnlyRail)
    return {"PAYMENT_GATEWAYS": f"{scan_gateway.NAME},sandbox"}


def paid_notice():
    return db.session.execute(select(Violation).where(Violation.notice_number == PAID_NOTICE)).scalar_one()


def test_the_paid_notice_is_paid_by_card_at_the_sandbox_when_a_phone_rail_comes_first(runner):
    result = runner.invoke(args=["demo", "seed"])
    assert result.exit_code == 0, result.output
    assert paid_notice().status == PAID
    assert db.session.execute(select(Payment.gateway)).scalars().all() == ["sandbox", "sandbox"]  # paid, refunded


def test_without_a_card_gateway_the_notice_stays_unpaid_and_the_seed_says_why(runner, app):
    app.extensions["finepay.gateways"].pop("sandbox")
    result = runner.invoke(args=["demo", "seed"])
    assert result.exit_code == 0, result.output
    assert f"Notice {PAID_NOTICE} left unpaid: no configured gateway takes a test card." in result.output
    assert paid_notice().status != PAID
