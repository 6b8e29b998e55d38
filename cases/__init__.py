"""Cases: a driver's contest of a violation, or application to defer it or pay it in instalments."""


def init_app(app):
    """Plug the cases area into the app: the driver's pages and the API (the staff console shows the queue)."""
    from cases import api, models, views  # noqa: F401  (models: tables of the schema)
    from finepay.extensions import csrf, rest_api

    app.register_blueprint(views.bp)
    rest_api.register_blueprint(api.blp)
    csrf.exempt(api.blp)  # the JSON API authenticates by what is in the body, never by cookies
