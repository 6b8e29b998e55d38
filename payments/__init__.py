"""Payments: paying violations through a gateway (see the payments issue)."""
