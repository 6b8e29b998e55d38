"""Payments: paying violations through a gateway, receipts, refunds, and keeping in step with the gateway."""
