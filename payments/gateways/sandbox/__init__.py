"""The sandbox gateway: a card gateway simulated in FinePay's own database, for development, demos and tests.

Everything about it lives here: the adapter (adapter.py), its ledger tables
(models.py), its pages (views.py: the stand-in for a bank's security check)
and its templates (the test cards on the pay page, the kiosk's simulated
reader controls).
"""
from .adapter import SandboxGateway
from .models import SandboxIntent, SandboxOperation, SandboxReaderAction, SandboxRefund

__all__ = ["SandboxGateway", "SandboxIntent", "SandboxOperation", "SandboxReaderAction", "SandboxRefund"]
