"""The Stripe gateway: card PaymentIntents over Stripe's REST API (or localstripe), paid with Stripe.js.

Everything about it lives here: the adapter (adapter.py), its part of the pay
page (templates/stripe/pay.html with static/pay-stripe.js), and the origins
its script, frames and API calls need in the CSP.
"""
from .adapter import StripeGateway

__all__ = ["StripeGateway"]
