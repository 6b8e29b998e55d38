"""A gateway adapter with scripted faults at confirm time, installed through a real entry point."""
import time

from payments.gateways import GatewayError
from payments.gateways.sandbox import SandboxGateway


class FaultyGateway(SandboxGateway):
    """The sandbox, but each confirm takes the next fault from ``script`` (class-level, set by the test)."""

    name = "faulty"
    script = []
    slow_seconds = 0.3

    def confirm_intent(self, intent_id, **kwargs):
        """ok | slow | timeout_before | timeout_after | error500_before | error500_after."""
        fault = type(self).script.pop(0) if type(self).script else "ok"
        if fault == "timeout_before":  # sent, lost on the way: nothing charged, but we cannot know
            raise GatewayError("read timeout", code="gateway_timeout", outcome_unknown=True, status=504)
        if fault == "error500_before":  # the gateway says it failed: nothing charged
            raise GatewayError("internal error", code="gateway_unavailable", retryable=True, status=503)
        if fault == "slow":
            time.sleep(self.slow_seconds)
        result = super().confirm_intent(intent_id, **kwargs)
        if fault == "timeout_after":  # charged, the answer lost
            raise GatewayError("read timeout", code="gateway_timeout", outcome_unknown=True, status=504)
        if fault == "error500_after":  # charged, then a 500 on the way back
            raise GatewayError("internal error", code="gateway_error", outcome_unknown=True, status=502)
        return result
