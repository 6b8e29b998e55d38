"""Kiosk terminals: enrolment, and a driver's visit at a kiosk, paid by card at its reader."""


def init_app(app):
    """Plug the kiosk area into the app: its pages and JSON endpoints, its language rule, its CLI."""
    from finepay import errors, i18n
    from finepay.extensions import csrf
    from kiosk import api, commands, models, screens, views
    from payments.reconciliation.lines import name_terminals

    # The kiosk's JSON endpoints are authenticated by the terminal credential (SameSite=Strict).
    app.register_blueprint(views.bp)
    app.register_blueprint(api.bp)
    # A cross-site page cannot send the kiosk's SameSite=Strict cookie, nor a JSON
    # body without a preflight; enrolment needs its one-time code and same origin.
    csrf.exempt(views.bp)
    csrf.exempt(api.bp)
    errors.answer_json_under(app, screens.API_PREFIX)
    i18n.locale_rule(app, views.bp.url_prefix, screens.select_locale)
    app.cli.add_command(commands.kiosk_cli)
    # The daily reconciliation names the kiosk that took each card-present payment.
    name_terminals(app, models.Terminal.__table__)
