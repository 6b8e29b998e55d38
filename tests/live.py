"""FinePay served over real HTTP on 127.0.0.1, for browser tests and localstripe's webhooks."""
import shutil
import threading
from contextlib import contextmanager

from werkzeug.serving import make_server

from finepay.extensions import db
from tests.conftest import make_app


def app_on_copy(sqlite_template, directory, **overrides):
    """An app on its own copy of the migrated SQLite database in ``directory``."""
    path = directory / "live.sqlite"
    shutil.copy(sqlite_template, path)
    return make_app(f"sqlite:///{path}", **overrides)


@contextmanager
def serving(app, wsgi=None):
    """Serve ``app`` (or ``wsgi`` wrapped around it) on a free loopback port; yields the base URL.

    On exit the server is stopped and the app's database connections closed.
    """
    server = make_server("127.0.0.1", 0, wsgi or app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="finepay-test-server", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(timeout=10)
        server.server_close()
        with app.app_context():
            db.engine.dispose()
