"""Fixtures for the staff tests."""
import pytest
from flask import g

from tests.payments.helpers import end_session_after_each_request


@pytest.fixture(autouse=True)
def _each_request_starts_afresh(app):
    """Make every test-client request start as it does in production.

    The ``app`` fixture keeps one app context pushed, which requests reuse, so
    ``g`` (where Flask-Login keeps the signed-in user) and the database session
    would otherwise carry over from one request to the next.
    """
    @app.before_request
    def _forget_the_previous_user():
        g.pop("_login_user", None)

    end_session_after_each_request(app)
