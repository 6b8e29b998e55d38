"""Hardening for every response: security headers, cookie flags, size limits, production checks.

The headers are set with ``setdefault``: an area with a stricter policy of its
own (the kiosk, the staff console) sets it in its blueprint's after_request,
which runs first, and keeps it. The default policy allows no inline script or
style anywhere, and loads, frames or calls nothing from other origins but the
sources an area or a gateway adapter registers with ``allow_sources`` (for
example a card gateway's script and the frames and API calls it makes).
"""
import logging
from urllib.parse import urlsplit

log = logging.getLogger(__name__)

PERMISSIONS_POLICY = "camera=(), microphone=(), geolocation=(), usb=(), payment=(self)"


# The default policy, directive by directive; allow_sources adds to the fetch directives.
DEFAULT_POLICY = {
    "default-src": ("'self'",),
    "script-src": ("'self'",),
    "style-src": ("'self'",),
    "img-src": ("'self'", "data:"),
    "font-src": ("'self'",),
    "connect-src": ("'self'",),
    "frame-src": ("'none'",),
    "object-src": ("'none'",),
    "base-uri": ("'none'",),
    "form-action": ("'self'",),
    "frame-ancestors": ("'none'",),
}
# What an area or adapter may widen: where scripts, frames, images and calls may come from.
EXTENSIBLE_DIRECTIVES = ("script-src", "img-src", "connect-src", "frame-src")
_SOURCES = "finepay.csp_sources"
_HEADERS = "finepay.security_headers"


def origin(url):
    """The scheme://host[:port] of a URL, or None when it has none: a CSP source for a configured address."""
    parts = urlsplit(url or "")
    return f"{parts.scheme}://{parts.netloc}" if parts.scheme and parts.netloc else None


def allow_sources(app, directive, *sources):
    """Let FinePay's default policy load ``sources`` for ``directive`` (e.g. a gateway's script origin).

    Areas and gateway adapters call this from their ``init_app``; the policy is
    built from everything registered when the app answers its first request.
    """
    if directive not in EXTENSIBLE_DIRECTIVES:
        raise ValueError(f"{directive} cannot be widened; only {', '.join(EXTENSIBLE_DIRECTIVES)}")
    for source in sources:
        if not source or any(c in source for c in " ;,'\"\r\n") or source == "*":
            raise ValueError(f"{source!r} is not a single source for {directive}")
    registered = app.extensions.setdefault(_SOURCES, {}).setdefault(directive, [])
    registered.extend(s for s in sources if s not in registered)
    app.extensions.pop(_HEADERS, None)  # built again with the new sources


def content_security_policy(sources=None):
    """The default CSP for FinePay's pages and API answers, widened by the registered ``sources``."""
    parts = []
    for directive, default in DEFAULT_POLICY.items():
        extra = list((sources or {}).get(directive, ()))
        values = [v for v in default if not (extra and v == "'none'")] + extra
        parts.append(f"{directive} {' '.join(values)}")
    return "; ".join(parts)


def security_headers(config, sources=None):
    """The headers every response carries (HSTS only in production, where TLS is mandatory)."""
    headers = {
        "Content-Security-Policy": content_security_policy(sources),
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


def app_security_headers(app):
    """This app's headers, built once from its settings and the sources registered so far."""
    headers = app.extensions.get(_HEADERS)
    if headers is None:
        headers = app.extensions[_HEADERS] = security_headers(app.config, app.extensions.get(_SOURCES))
    return headers


def init_app(app):
    """Install the headers and limits on this app and check its production settings."""
    # Werkzeug's form parser limits (bodies are limited by MAX_CONTENT_LENGTH).
    app.config.setdefault("MAX_FORM_MEMORY_SIZE", 512 * 1024)
    app.config.setdefault("MAX_FORM_PARTS", 1000)
    warn_about_production_settings(app)

    @app.after_request
    def add_security_headers(response):
        for name, value in app_security_headers(app).items():
            response.headers.setdefault(name, value)
        return response
