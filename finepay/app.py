"""The composition root: create_app builds the base and plugs in each area (the one module that knows them all)."""
import os

from flask import Flask, has_request_context, request
from werkzeug.middleware.proxy_fix import ProxyFix

import cases
import kiosk
import notices
import payments
import staff
import violations
from finepay import (
    authority,
    database,
    demo,
    errors,
    formatting,
    health,
    i18n,
    inputs,
    observability,
    security,
    settings,
)
from finepay.extensions import babel, csrf, db, limiter, login_manager, migrate, rest_api
from finepay.restapi import JSONProvider

# The checkout: templates/, static/ and migrations/ sit beside the packages.
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# In the order they register: an area may build on the ones before it (payments' demo pays a violation's).
AREAS = (violations, notices, payments, cases, kiosk, staff)


def create_app(test_config=None):
    """Application factory: settings from the environment, overridden by test_config."""
    app = Flask(
        "finepay",  # the app's name (and its logger's), as when create_app lived in the package itself
        instance_path=os.environ.get("FINEPAY_INSTANCE_PATH") or os.path.join(ROOT, "instance"),
        template_folder=os.path.join(ROOT, "templates"),
        static_folder=os.path.join(ROOT, "static"),
    )
    app.config.from_mapping(settings.from_env(app.instance_path))
    if test_config:
        app.config.update(test_config)
    settings.check_production(app.config)
    app.config.update(api_settings(app.config))
    app.json = JSONProvider(app)
    os.makedirs(app.instance_path, exist_ok=True)

    if app.config["PROXY_COUNT"] > 0:
        # Behind nginx every client would otherwise be 127.0.0.1 to the rate limits and the audit log.
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=app.config["PROXY_COUNT"], x_proto=app.config["PROXY_COUNT"])
    inputs.init_app(app)  # before any rule is added: the converters are bound when a rule is
    register_extensions(app)
    errors.init_app(app)  # after the REST API's own handlers, which it replaces
    observability.init_app(app)  # request ids and metrics first: everything after is measured
    security.init_app(app)
    app.register_blueprint(health.bp)
    authority.init_app(app)
    demo.init_app(app)
    for area in AREAS:
        area.init_app(app)
    register_hooks(app)
    # Last: log lines say SANDBOX once the payments area has said whether money is real.
    observability.configure_logging(app)
    return app


def api_settings(config):
    """flask-smorest and Flask-Babel settings derived from FinePay's own."""
    return {
        "API_TITLE": "FinePay",
        "API_VERSION": "v1",
        "OPENAPI_VERSION": "3.0.3",
        "OPENAPI_URL_PREFIX": "/api",
        "OPENAPI_JSON_PATH": "openapi.json",
        "BABEL_DEFAULT_LOCALE": config["DEFAULT_LOCALE"],
        "BABEL_DEFAULT_TIMEZONE": config["BUSINESS_TIMEZONE"],
        # The catalogues sit at the checkout's root, beside templates/ (make i18n builds them).
        "BABEL_TRANSLATION_DIRECTORIES": os.path.join(ROOT, "translations"),
    }


def select_locale():
    """The visitor's explicit choice, then the browser's languages, then the default."""
    if not has_request_context():
        return None  # CLI commands: the default locale
    return i18n.select_locale()


def register_extensions(app):
    """Bind the extension objects to this app."""
    db.init_app(app)
    database.init_app(app, db)
    migrate.init_app(app, db, directory=os.path.join(ROOT, "migrations"), render_as_batch=True, compare_type=True)
    csrf.init_app(app)
    babel.init_app(app, locale_selector=select_locale)
    limiter.init_app(app)
    login_manager.init_app(app)
    rest_api.init_app(app)
    formatting.init_app(app)
    i18n.init_app(app)


def register_hooks(app):
    """Per-response rules."""

    @app.context_processor
    def inject_globals():
        return {
            "sandbox": app.config["SANDBOX"],
            "html_lang": i18n.html_lang(),
        }

    @app.after_request
    def no_store(response):
        # Lookup results and receipts are personal: no shared or browser cache.
        if not request.path.startswith("/static/"):
            response.headers.setdefault("Cache-Control", "no-store")
        return response
