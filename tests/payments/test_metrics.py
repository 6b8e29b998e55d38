"""The payment metrics: every gateway call timed, its failures counted by operation and code."""
import pytest
from prometheus_client import CollectorRegistry

from payments.gateways import GatewayError
from payments.metrics import PaymentMetrics, instrument_gateway


def test_gateway_errors_are_counted_by_operation_and_code():
    class Broken:
        name = "broken"

        def confirm_intent(self, intent_id, **kwargs):
            raise GatewayError("read timeout", code="gateway_timeout", outcome_unknown=True)

    metrics = PaymentMetrics(CollectorRegistry())
    gateway = instrument_gateway(Broken(), metrics)

    with pytest.raises(GatewayError):
        gateway.confirm_intent("pi_1", payment_method="pm_card_visa", idempotency_key="k")

    assert metrics.registry.get_sample_value(
        "finepay_gateway_errors_total", {"gateway": "broken", "operation": "confirm_intent", "code": "gateway_timeout"}
    ) == 1.0
