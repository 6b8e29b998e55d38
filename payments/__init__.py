"""Payments: paying violations through a gateway, receipts, refunds, and the card reader at a kiosk."""


def init_app(app):
    """Plug the payments area into the app: its gateway, pages, API, webhooks, metrics, CLI and demo payment."""
    from finepay import demo, errors
    from finepay.extensions import csrf, rest_api
    from payments import api, commands, gateways, metrics, models, views, webhooks  # noqa: F401  (models: tables)
    from payments import demo as demo_data

    # The sandbox's ledger tables are part of the schema whichever gateway runs.
    from payments.gateways import sandbox  # noqa: F401

    gateways.init_app(app)  # sets SANDBOX from the adapter
    metrics.init_app(app)  # instruments the gateway just built
    app.register_blueprint(views.bp)
    app.register_blueprint(webhooks.bp)
    rest_api.register_blueprint(api.blp)
    # The JSON API authenticates by what is in the body, never by cookies; webhooks by the gateway's signature.
    csrf.exempt(api.blp)
    csrf.exempt(webhooks.bp)
    errors.answer_json_under(app, "/webhooks/")
    app.cli.add_command(commands.payments_cli)
    demo.add_seeder(app, demo_data.seed_paid_violation)
