"""The sandbox e-receipt issuer: numbers e-receipts in FinePay's own database and serves their verification page.

Everything about it lives here: the adapter (adapter.py), its ledger table
(models.py), its public verification page (views.py) and its template.
"""
from .adapter import SandboxIssuer
from .models import SandboxEReceipt

__all__ = ["SandboxEReceipt", "SandboxIssuer"]
