"""Hardening for every response: security headers, cookie flags, size limits, production checks.

The headers are set with ``setdefault``: an area with a stricter policy of its
own (the kiosk, the staff console) sets it in its blueprint's after_request,
which runs first, and keeps it. The default policy allows no inline script or
style anywhere; with the Stripe gateway it also allows Stripe.js and the
frames and API calls it makes, and nothing else.
"""
import logging
from urllib.parse import urlsplit

log = logging.getLogger(__name__)

PERMISSIONS_POLICY = "camera=(), microphone=(), geolocation=(), usb=(), payment=(self)"


def _origin(url):
    parts = urlsplit(url or "")
    return f"{parts.scheme}://{parts.netloc}" if parts.scheme and parts.netloc else None


def content_security_policy(config):
    """The default CSP for FinePay's pages and API answers, from the app's settings."""
    script, frame, connect = ["'self'"], ["'none'"], ["'self'"]
    if config.get("PAYMENT_GATEWAY") == "stripe":
        stripe_js = _origin(config.get("STRIPE_JS_URL"))
        script.append(stripe_js or "https://js.stripe.com")
        frame = [stripe_js or "https://js.stripe.com", "https://hooks.stripe.com"]
        connect.append(_origin(config.get("STRIPE_API_BASE")) or "https://api.stripe.com")
    directives = [
        "default-src 'self'",
        f"script-src {' '.join(script)}",
        "style-src 'self'",
        "img-src 'self' data:",
        "font-src 'self'",
        f"connect-src {' '.join(connect)}",
        f"frame-src {' '.join(frame)}",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
    return "; ".join(directives)


def security_headers(config):
    """The headers every response carries (HSTS only in production, where TLS is mandatory)."""
    headers = {
        "Content-Security-Policy": content_security_policy(config),
        "X-Content-Type-Options": "nosniff",
        # Receipt numbers are in paths: never send a path to another site.
        "Referrer-Policy": "same-origin",
        "X-Frame-Options": "DENY",
        "Cross-Origin-Opener-Policy": "same-origin",
        "Cross-Origin-Resource-Policy": "same-origin",
        "Permissions-Policy": PERMISSIONS_POLICY,
    }
    if config["FINEPAY_ENV"] == "production" and config.get("HSTS_MAX_AGE", 0) > 0:
        headers["Strict-Transport-Security"] = f"max-age={config['HSTS_MAX_AGE']}; includeSubDomains"
    return headers


def warn_about_production_settings(app):
    """Say at start-up what makes a production deployment weaker than it should be."""
    config = app.config
    if config["FINEPAY_ENV"] != "production":
        return []
    warnings = []
    storage = config.get("RATELIMIT_STORAGE_URI") or "memory://"
    if not storage.startswith(("redis://", "rediss://", "redis+sentinel://", "redis+cluster://")):
        warnings.append(
            f"RATELIMIT_STORAGE_URI is {storage.split(':', 1)[0]}:// - rate limits are counted per worker "
            "and per machine, so a client gets workers x machines times the limit; set it to redis://..."
        )
    if not config.get("SESSION_COOKIE_SECURE"):
        warnings.append("SESSION_COOKIE_SECURE is off: session cookies would travel over plain HTTP")
    if config.get("SQLALCHEMY_DATABASE_URI", "").startswith("sqlite"):
        warnings.append("DATABASE_URL is SQLite: use PostgreSQL for more than one worker or machine")
    for message in warnings:
        log.warning("production settings: %s", message, extra={"event": "startup_warning"})
    app.extensions["finepay.startup_warnings"] = warnings
    return warnings


def init_app(app):
    """Install the headers and limits on this app and check its production settings."""
    headers = security_headers(app.config)
    app.extensions["finepay.security_headers"] = headers
    # Werkzeug's form parser limits (bodies are limited by MAX_CONTENT_LENGTH).
    app.config.setdefault("MAX_FORM_MEMORY_SIZE", 512 * 1024)
    app.config.setdefault("MAX_FORM_PARTS", 1000)
    warn_about_production_settings(app)

    @app.after_request
    def add_security_headers(response):
        for name, value in headers.items():
            response.headers.setdefault(name, value)
        return response
