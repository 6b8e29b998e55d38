"""Payments: paying violations through a gateway, receipts, refunds, and the card reader at a kiosk."""


def init_app(app):
    """Plug the payments area into the app: its gateway, e-receipt issuer, pages, API, webhooks, metrics, CLI and demo payment."""
    from finepay import demo, errors
    from finepay.extensions import csrf, rest_api
    from payments import api, commands, ereceipts, gateways, metrics, models, receipts, services, views, webhooks  # noqa: F401
    from payments import demo as demo_data
    from violations.importer import register_hold_keeper

    # Every installed adapter's tables (the sandbox's ledger) are part of the schema, whichever one runs.
    for name in gateways.available_gateways():
        gateways.load_gateway_class(name)
    gateways.init_app(app)  # sets SANDBOX from the adapter
    ereceipts.init_app(app)  # the official e-receipt issuer (ERECEIPT_ISSUER)
    register_hold_keeper(app, services)  # an import cancels the open payments it changes
    # An adapter's own page (the sandbox's security check) changed an intent: settle or fail its payment.
    gateways.listen_for_intents(app, lambda intent: services.apply_intent(intent.payment_id, intent))
    metrics.init_app(app)  # instruments the gateway just built
    app.register_blueprint(views.bp)
    app.register_blueprint(webhooks.bp)
    rest_api.register_blueprint(api.blp)
    # The JSON API authenticates by what is in the body, never by cookies; webhooks by the gateway's signature.
    csrf.exempt(api.blp)
    csrf.exempt(webhooks.bp)
    errors.answer_json_under(app, "/webhooks/")
    app.cli.add_command(commands.payments_cli)
    app.cli.add_command(commands.ereceipts_cli)
    demo.add_seeder(app, demo_data.seed_paid_violation)
    # A gateway in words (银行卡（沙箱）, 微信支付), for every page that names one (the console's too).
    app.add_template_global(receipts.payment_method, "gateway_label")
