"""The gateway registry and the seam's additions for several gateways: settings, SANDBOX, events and answers."""
import pytest

from finepay.errors import ApiError
from finepay.settings import SettingsError
from payments.gateways import (
    BillNotReady,
    GatewayEvent,
    GatewayTransaction,
    Payer,
    PaymentGateway,
    WebhookVerificationError,
    configured_gateways,
    gateway_names,
)
from tests.conftest import make_app
from tests.payments import scripted_gateway
from tests.payments.scripted_gateway import ScriptedGateway


class RailGateway(ScriptedGateway):
    """A rail that moves real money unless pointed at its simulator (its own setting), as WeChat Pay and Alipay do."""

    simulated = False

    def __init__(self, config):
        super().__init__(config)
        self.simulated = bool(config.get("RAIL_SIMULATED"))


def install_rail(tmp_path, monkeypatch):
    """Install RailGateway as "rail" through an entry point."""
    dist = tmp_path / "rail" / "finepay_rail-1.0.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: finepay-rail\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(
        "[finepay.gateways]\nrail = tests.payments.test_gateway_registry:RailGateway\n")
    monkeypatch.syspath_prepend(str(tmp_path / "rail"))


@pytest.mark.parametrize(("config", "names"), [
    ({"PAYMENT_GATEWAYS": "wechatpay, alipay,sandbox"}, ("wechatpay", "alipay", "sandbox")),
    ({"PAYMENT_GATEWAYS": ["stripe"]}, ("stripe",)),
    ({"PAYMENT_GATEWAYS": "", "PAYMENT_GATEWAY": "stripe"}, ("stripe",)),
    ({"PAYMENT_GATEWAYS": "alipay", "PAYMENT_GATEWAY": "stripe"}, ("alipay",)),
])
def test_payment_gateways_is_an_ordered_list_and_payment_gateway_a_list_of_one(config, names):
    assert gateway_names(config) == names


@pytest.mark.parametrize("config", [{"PAYMENT_GATEWAYS": " , "}, {"PAYMENT_GATEWAYS": "sandbox,stripe,sandbox"}])
def test_no_gateway_or_one_named_twice_is_a_settings_error(config):
    with pytest.raises(SettingsError, match="PAYMENT_GATEWAYS"):
        gateway_names(config)


def test_an_unknown_gateway_stops_the_app_with_its_name(database_url):
    with pytest.raises(ValueError, match="'nosuchpay'"):
        make_app(database_url, PAYMENT_GATEWAYS="sandbox,nosuchpay")


def test_sandbox_is_said_when_any_configured_gateway_is_simulated(database_url, tmp_path, monkeypatch):
    install_rail(tmp_path, monkeypatch)

    real = make_app(database_url, PAYMENT_GATEWAYS="rail")
    simulated = make_app(database_url, PAYMENT_GATEWAYS="rail", RAIL_SIMULATED=True)
    beside_the_sandbox = make_app(database_url, PAYMENT_GATEWAYS="rail,sandbox")

    assert real.config["SANDBOX"] is False
    assert simulated.config["SANDBOX"] is True
    assert beside_the_sandbox.config["SANDBOX"] is True


def test_production_refuses_a_rail_pointed_at_its_simulator(database_url, tmp_path, monkeypatch):
    install_rail(tmp_path, monkeypatch)

    with pytest.raises(SettingsError, match="including rail"):
        make_app(database_url, PAYMENT_GATEWAYS="rail", RAIL_SIMULATED=True, FINEPAY_ENV="production",
                 SECRET_KEY="k" * 40)


def test_two_names_of_one_adapter_are_two_gateways_whose_pages_register_once(database_url, tmp_path, monkeypatch):
    app = make_app(database_url, **scripted_gateway.install(tmp_path, monkeypatch, names=("first", "second")))

    with app.app_context():
        first, second = configured_gateways()
    assert (first.name, second.name) == ("first", "second")
    assert first is not second
    assert "sandbox" in app.blueprints


def test_the_base_adapter_serves_everyone_and_answers_notifications_in_json(app):
    gateway = PaymentGateway({})

    with app.test_request_context("/webhooks/x"):
        reply = gateway.webhook_reply("applied")
        refusal = gateway.webhook_refusal(ApiError("Invalid webhook signature.", code="bad_signature", status=400))

    assert gateway.serves(Payer())
    assert reply == ({"received": True, "outcome": "applied"}, 200, {})
    assert refusal[1] == 400 and refusal[0]["code"] == "bad_signature"


@pytest.mark.parametrize("amount", [-1, 1.5, "100", True])
def test_an_event_amount_must_be_whole_minor_units(amount):
    with pytest.raises(WebhookVerificationError, match="amount"):
        GatewayEvent(id="evt_1", type="TRANSACTION.SUCCESS", amount=amount)


def test_an_event_may_name_a_refund_and_an_amount():
    event = GatewayEvent(id="evt_1", type="REFUND.SUCCESS", refund_id="re_1", amount=1234)

    assert (event.refund_id, event.amount) == ("re_1", 1234)
    with pytest.raises(WebhookVerificationError, match="refund_id"):
        GatewayEvent(id="evt_2", type="REFUND.SUCCESS", refund_id="r" * 101)


def test_a_bill_not_out_yet_is_its_own_gateway_error_and_a_line_may_carry_a_fee():
    error = BillNotReady("the bill for 2026-11-29 is not out yet")

    assert error.code == "bill_not_ready" and not error.refused
    assert GatewayTransaction("t1", "charge", "i1", "p1", 10000, "CNY", None, fee=60).fee == 60
    assert GatewayTransaction("t2", "charge", "i2", "p2", 10000, "CNY", None).fee == 0
