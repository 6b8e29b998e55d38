"""Shared pieces of the REST (JSON) API: a hardened body parser, the JSON provider and the Blueprint to use."""
import json

import flask_smorest
from flask import current_app
from flask.json.provider import DefaultJSONProvider
from marshmallow import fields
from webargs.flaskparser import FlaskParser


class JSONProvider(DefaultJSONProvider):
    """Flask's JSON, keeping Chinese readable and turning hostile nesting into a plain parse error."""

    ensure_ascii = False

    def loads(self, s, **kwargs):
        try:
            return super().loads(s, **kwargs)
        except RecursionError:
            raise ValueError("JSON nested too deeply") from None


class BodyParser(FlaskParser):
    """webargs' parser, answering 400 (not 500) for JSON that json.loads cannot take.

    Deep nesting raises RecursionError and a 5,000-digit number ValueError;
    webargs only expects JSONDecodeError.
    """

    def _raw_load_json(self, req):
        try:
            return super()._raw_load_json(req)
        except json.JSONDecodeError:
            raise
        except (ValueError, RecursionError):
            raise json.JSONDecodeError("Invalid JSON body", "", 0) from None


class Blueprint(flask_smorest.Blueprint):
    """flask-smorest's Blueprint with FinePay's body parser."""

    ARGUMENTS_PARSER = BodyParser()


class SandboxFlag(fields.Boolean):
    """``sandbox`` in every payment, receipt and feed entry: true when the server's gateway moves no real money.

    Read from the SANDBOX flag set when the app starts, whatever the dumped object holds.
    """

    def __init__(self, **kwargs):
        kwargs.setdefault("metadata", {"description": "true on a sandbox server: no real money moved"})
        super().__init__(dump_only=True, **kwargs)

    def serialize(self, attr, obj, accessor=None, **kwargs):
        return bool(current_app.config.get("SANDBOX"))
