"""Fixtures for the cases tests: evidence in a temporary folder, requests that start afresh."""
import pytest
from flask import g

from tests.payments.helpers import end_session_after_each_request


@pytest.fixture
def evidence_dir(tmp_path):
    """Where this test's evidence files go."""
    return tmp_path / "evidence"


@pytest.fixture(autouse=True)
def _evidence_settings(app, evidence_dir):
    """Evidence under the test's temporary folder; small limits so "too large" is quick to reach.

    Set on the app rather than through app_config, which the language parametrisation replaces; the cases
    area reads these settings on each request.
    """
    app.config.update(EVIDENCE_DIR=str(evidence_dir), EVIDENCE_PHOTO_MAX_BYTES=64 * 1024,
                      EVIDENCE_VIDEO_MAX_BYTES=256 * 1024)


@pytest.fixture(autouse=True)
def _each_request_starts_afresh(app):
    """Requests start as in production: no signed-in user or uncommitted change carried over."""
    @app.before_request
    def _forget_the_previous_user():
        g.pop("_login_user", None)

    end_session_after_each_request(app)


def stored_files(evidence_dir):
    """The names of the files in the evidence folder (none when it was never created)."""
    return sorted(p.name for p in evidence_dir.iterdir()) if evidence_dir.exists() else []
