"""Staff console: sign-in and roles, search, refunds, voiding, imports, reconciliation, the settlement feed."""


def init_app(app):
    """Plug the staff area into the app: the console (CSRF on every form), the settlement feed (API key), CLI."""
    from finepay import i18n
    from finepay.extensions import csrf, rest_api
    from staff import api, auth, case_views, commands, models, views  # noqa: F401  (auth: Flask-Login's user loader)

    app.register_blueprint(views.bp)
    rest_api.register_blueprint(api.blp)
    csrf.exempt(api.blp)
    rest_api.spec.components.security_scheme(
        "ApiKeyAuth", {"type": "apiKey", "in": "header", "name": api.API_KEY_HEADER}
    )
    app.cli.add_command(commands.staff_cli)
    app.cli.add_command(commands.audit_cli)
    i18n.start_page(app, "staff.dashboard", prefix=views.bp.url_prefix)
