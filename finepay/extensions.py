"""Extension objects, bound to an app in create_app()."""
from flask_babel import Babel
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_login import LoginManager
from flask_migrate import Migrate
from flask_smorest import Api
from flask_sqlalchemy import SQLAlchemy
from flask_wtf import CSRFProtect
from marshmallow import Schema, fields
from sqlalchemy import MetaData

# Named constraints so that Alembic migrations are the same on every database.
naming_convention = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

db = SQLAlchemy(metadata=MetaData(naming_convention=naming_convention))
migrate = Migrate()
csrf = CSRFProtect()
babel = Babel()
limiter = Limiter(key_func=get_remote_address)
login_manager = LoginManager()  # staff sign-in; configured in staff.auth


class ErrorSchema(Schema):
    """FinePay's error body, as documented in the OpenAPI document for every error status."""

    code = fields.String(metadata={"description": "stable machine-readable code, e.g. invalid_input"})
    message = fields.String()
    errors = fields.Dict()


class FinePayApi(Api):
    """flask-smorest's Api documenting FinePay's error shape (finepay.errors.init_app installs the handler)."""

    ERROR_SCHEMA = ErrorSchema


rest_api = FinePayApi()  # the REST API (flask-smorest): its blueprints, OpenAPI document and error shape
