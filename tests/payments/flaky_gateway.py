"""A third gateway adapter, installed in tests through a real entry point: the sandbox with scripted faults."""
from payments.gateways import GatewayError
from payments.gateways.sandbox import SandboxGateway


class FlakyGateway(SandboxGateway):
    """The sandbox, but each call named in ``faults`` fails once, the way a real network does."""

    name = "flaky"
    faults = {}  # operation -> "down" | "timeout_after" ; set by tests, consumed once

    def _fault(self, operation):
        return type(self).faults.pop(operation, None)

    def create_intent(self, **kwargs):
        """Fail before anything happens when scripted "down"."""
        if self._fault("create") == "down":
            raise GatewayError("connection refused", code="gateway_unavailable", retryable=True, status=503)
        return super().create_intent(**kwargs)

    def confirm_intent(self, intent_id, **kwargs):
        """When scripted "timeout_after", the charge happens but the answer is lost."""
        fault = self._fault("confirm")
        if fault == "down":
            raise GatewayError("connection refused", code="gateway_unavailable", retryable=True, status=503)
        result = super().confirm_intent(intent_id, **kwargs)
        if fault == "timeout_after":
            raise GatewayError("read timeout", code="gateway_timeout", outcome_unknown=True, status=504)
        return result
