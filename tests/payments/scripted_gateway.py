"""A gateway adapter with scripted faults, installed in tests through a real entry point: the sandbox that fails on cue.

The one test gateway for faults at the gateway (tests/payments/test_gateway_seam.py,
tests/reliability/test_gateway_faults.py). It is found like any third-party adapter,
through a distribution's ``finepay.gateways`` entry point, and builds on the sandbox
loaded through the registry, as another package would.
"""
import time

from payments.gateways import GatewayError, load_gateway_class

NAME = "scripted"
# What each scripted fault does; "ok" (or an empty script) passes the call through.
FAULTS = ("ok", "slow", "down", "timeout_before", "timeout_after", "error500_before", "error500_after")


class ScriptedGateway(load_gateway_class("sandbox")):
    """The sandbox, but each create or confirm takes the next fault from ``script[operation]``.

    ``script`` is class-level, set by the test and consumed as calls happen:
    ``{"create": ["down"], "confirm": ["timeout_after", "ok", "slow"]}``.
    """

    name = NAME
    script = {}
    slow_seconds = 0.3

    def _next_fault(self, operation):
        faults = type(self).script.get(operation)
        fault = faults.pop(0) if faults else "ok"
        if fault not in FAULTS:
            raise ValueError(f"unknown scripted fault {fault!r}")
        return fault

    def _call(self, operation, call):
        fault = self._next_fault(operation)
        if fault == "down":  # refused before anything was sent: nothing happened
            raise GatewayError("connection refused", code="gateway_unavailable", retryable=True, status=503)
        if fault == "timeout_before":  # sent, lost on the way: nothing happened, but we cannot know
            raise GatewayError("read timeout", code="gateway_timeout", outcome_unknown=True, status=504)
        if fault == "error500_before":  # the gateway says it failed: nothing happened
            raise GatewayError("internal error", code="gateway_unavailable", retryable=True, status=503)
        if fault == "slow":
            time.sleep(self.slow_seconds)
        result = call()
        if fault == "timeout_after":  # it happened, the answer was lost
            raise GatewayError("read timeout", code="gateway_timeout", outcome_unknown=True, status=504)
        if fault == "error500_after":  # it happened, then a 500 on the way back
            raise GatewayError("internal error", code="gateway_error", outcome_unknown=True, status=502)
        return result

    def create_intent(self, **kwargs):
        """The sandbox's create_intent, after the next scripted "create" fault."""
        return self._call("create", lambda: super(ScriptedGateway, self).create_intent(**kwargs))

    def confirm_intent(self, intent_id, **kwargs):
        """The sandbox's confirm_intent, after the next scripted "confirm" fault."""
        return self._call("confirm", lambda: super(ScriptedGateway, self).confirm_intent(intent_id, **kwargs))


def install(tmp_path, monkeypatch, names=(NAME,)):
    """Install a distribution whose entry points register the scripted adapter under ``names`` (as a pip install would).

    Several names make several gateways at once, each its own instance (sharing the sandbox's ledger).
    Returns the app settings that run on them, in that order; the script starts empty and is emptied
    again after the test.
    """
    dist = tmp_path / "site" / "finepay_scripted_gateway-1.0.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: finepay-scripted-gateway\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(
        "[finepay.gateways]\n" + "".join(f"{name} = tests.payments.scripted_gateway:ScriptedGateway\n" for name in names))
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    monkeypatch.setattr(ScriptedGateway, "script", {})
    return {"PAYMENT_GATEWAYS": ",".join(names)}
