"""Reminders: a driver subscribes a mobile number to a proven vehicle and is told of new fines and late fees."""

REPLIES_PREFIX = "/notices/replies/"


def init_app(app):
    """Plug the reminders in: their settings, the configured sender, the driver pages and reply callback, the CLI."""
    from finepay import errors
    from finepay.extensions import csrf
    from finepay.settings import read_settings
    from notices import commands, models, notifiers, rules, views  # noqa: F401  (models: tables of the schema)
    from notices.settings import SETTINGS

    read_settings(app.config, SETTINGS)
    rules.parse_quiet_hours(app.config["NOTICE_QUIET_HOURS"])  # a malformed value stops the app, not a run
    notifiers.init_app(app)
    app.register_blueprint(views.bp)
    app.add_template_filter(rules.mask_mobile, "masked_mobile")
    csrf.exempt(views.reply)  # the provider's callback carries no form token; its URL's token proves it
    app.cli.add_command(commands.notices_cli)
    errors.answer_json_under(app, REPLIES_PREFIX)  # the provider's callback speaks JSON
