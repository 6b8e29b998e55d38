"""Violations: the data model, import, late fees and lookup."""


def init_app(app):
    """Plug the violations area into the app: late-fee policy, lookup pages and API, import CLI, demo vehicles."""
    from finepay import demo, i18n
    from finepay.extensions import csrf, rest_api
    from violations import api, commands, fees, models, views  # noqa: F401  (models: tables of the schema)
    from violations import demo as demo_data

    fees.init_app(app)
    app.register_blueprint(views.bp)
    rest_api.register_blueprint(api.blp)
    csrf.exempt(api.blp)  # the JSON API authenticates by what is in the body, never by cookies
    app.cli.add_command(commands.violations_cli)
    i18n.start_page(app, "violations.home")
    demo.add_seeder(app, demo_data.seed_violations)
