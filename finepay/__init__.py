"""FinePay: pay traffic fines online or at a kiosk, reconciled every day."""
import os

from flask import Flask, has_request_context, request
from werkzeug.middleware.proxy_fix import ProxyFix

from finepay import database, errors, formatting, i18n, inputs, observability, security, settings
from finepay.api import JSONProvider
from finepay.extensions import api, babel, csrf, db, limiter, login_manager, migrate

SUPPORTED_LOCALES = i18n.SUPPORTED_LOCALES
# The checkout: templates/, static/ and migrations/ sit beside the packages.
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def create_app(test_config=None):
    """Application factory: settings from the environment, overridden by test_config."""
    app = Flask(
        __name__,
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
    observability.init_app(app)  # request ids and metrics first: everything after is measured
    security.init_app(app)
    register_blueprints(app)
    errors.register_error_handlers(app)
    register_commands(app)
    register_hooks(app)
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
    from kiosk import models as kiosk_models  # noqa: F401  (tables of the schema)
    from payments import gateways
    from staff import models as staff_models  # noqa: F401
    from violations import fees

    db.init_app(app)
    database.init_app(app, db)
    migrate.init_app(app, db, directory=os.path.join(ROOT, "migrations"), render_as_batch=True, compare_type=True)
    csrf.init_app(app)
    babel.init_app(app, locale_selector=select_locale)
    limiter.init_app(app)
    login_manager.init_app(app)
    api.init_app(app)
    formatting.init_app(app)
    i18n.init_app(app)
    fees.init_app(app)
    gateways.init_app(app)


def register_blueprints(app):
    """Attach the pages and the API."""
    from finepay import health
    from payments import api as payments_api
    from payments import views as payments_views
    from payments import webhooks
    from violations import api as violations_api
    from violations import views as violations_views

    app.register_blueprint(health.bp)
    app.register_blueprint(violations_views.bp)
    app.register_blueprint(payments_views.bp)
    app.register_blueprint(webhooks.bp)
    api.register_blueprint(violations_api.blp)
    api.register_blueprint(payments_api.blp)
    # The JSON API authenticates by what is in the body, never by cookies;
    # webhooks by the gateway's signature.
    csrf.exempt(violations_api.blp)
    csrf.exempt(payments_api.blp)
    csrf.exempt(webhooks.bp)
    register_kiosk(app)
    register_staff(app)


def register_kiosk(app):
    """The kiosk's pages and its JSON endpoints (authenticated by the terminal credential, SameSite=Strict)."""
    from kiosk import api as kiosk_api
    from kiosk import views as kiosk_views

    app.register_blueprint(kiosk_views.bp)
    app.register_blueprint(kiosk_api.bp)
    # A cross-site page cannot send the kiosk's SameSite=Strict cookie, nor a JSON
    # body without a preflight; enrolment needs its one-time code and same origin.
    csrf.exempt(kiosk_views.bp)
    csrf.exempt(kiosk_api.bp)


def register_staff(app):
    """The staff console (signed-in staff, CSRF on every form) and the settlement feed (API key)."""
    from staff import api as staff_api
    from staff import auth  # noqa: F401  (Flask-Login's user loader)
    from staff import views as staff_views

    app.register_blueprint(staff_views.bp)
    api.register_blueprint(staff_api.blp)
    csrf.exempt(staff_api.blp)
    api.spec.components.security_scheme(
        "ApiKeyAuth", {"type": "apiKey", "in": "header", "name": staff_api.API_KEY_HEADER}
    )


def register_commands(app):
    """Add the CLI groups (flask --app wsgi violations|demo ...)."""
    from finepay.demo import demo_cli
    from kiosk.commands import kiosk_cli
    from payments.commands import payments_cli
    from staff.commands import audit_cli, staff_cli
    from violations.commands import violations_cli

    app.cli.add_command(violations_cli)
    app.cli.add_command(demo_cli)
    app.cli.add_command(payments_cli)
    app.cli.add_command(kiosk_cli)
    app.cli.add_command(staff_cli)
    app.cli.add_command(audit_cli)


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
