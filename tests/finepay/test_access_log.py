"""The access log and the request id, in-process and from a real gunicorn: valid JSON, no receipt numbers.

And a development server with the built-in secret key stays on 127.0.0.1.
"""
import http.client
import importlib.util
import json
import logging
import shutil
import types
from datetime import timedelta
from pathlib import Path

import pytest
from gunicorn.config import Config

from finepay.extensions import db
from finepay.observability import SANDBOX_ENVIRON, AccessLogger
from tests.conftest import make_app
from tests.reliability.servers import Gunicorn
from tests.staff.helpers import paid_payment

ROOT = Path(__file__).resolve().parents[2]
HOSTILE_PATHS = ["/a\\b", "/receipts/x%0a{\"forged\":%201}", "/api/v1/payments/%00", "/pay/%22%5c%0d%0a",
                 '/pay/"quoted"', "/kiosk/enrol/%E8%92%99B\\%00", "/%ff%fe"]


@pytest.fixture
def sqlite_url(sqlite_template, tmp_path):
    """A migrated SQLite file of this test's own (a server process opens it too)."""
    path = tmp_path / "served.sqlite"
    shutil.copy(sqlite_template, path)
    return f"sqlite:///{path}"


@pytest.fixture
def paid(sqlite_url):
    """A paid payment in the database the server will read: (payment id, receipt number)."""
    app = make_app(sqlite_url)
    with app.app_context():
        payment, _violation = paid_payment()
        ids = payment.id, payment.receipt_number
        db.session.remove()
        db.engine.dispose()
    return ids


def get_raw(url, path, headers=None):
    """GET a path exactly as written (no client-side normalising); returns the response."""
    host, port = url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        connection.request("GET", path, headers=headers or {})
        response = connection.getresponse()
        response.read()
        return response
    finally:
        connection.close()


def access_lines(server):
    """The server's access log, one parsed JSON object per line (fails on a line that is not JSON)."""
    lines = [line for line in server.access_path.read_text(encoding="utf-8").splitlines() if line]
    return lines, [json.loads(line) for line in lines]


def test_gunicorn_writes_every_access_line_as_json_without_receipt_numbers(tmp_path, sqlite_url, paid):
    payment_id, receipt = paid
    with Gunicorn(tmp_path, sqlite_url, workers=1, threads=2) as server:
        answers = [get_raw(server.url, path) for path in [
            f"/receipts/{receipt}", f"/receipts/{receipt.lower()}", f"/api/v1/receipts/{receipt.lower()}",
            f"/pay/{payment_id}", f"/api/v1/payments/{payment_id}", *HOSTILE_PATHS]]
    lines, entries = access_lines(server)

    assert [a.status for a in answers][:3] == [200, 200, 200]  # the receipts were found, in either case
    assert len(entries) >= len(answers)
    assert all(e["type"] == "access" and isinstance(e["status"], int) for e in entries)
    for line in lines:
        assert receipt not in line.upper(), line
    assert any(e["path"] == f"/pay/{payment_id}" for e in entries)
    assert any(e["path"] == "/receipts/[redacted]" for e in entries)
    assert all(e["sandbox"] == "SANDBOX" for e in entries)  # no real money moves here, and every line says so


def test_gunicorn_keeps_a_plain_request_id_and_replaces_any_other(tmp_path, sqlite_url):
    offered = {"plain": "lb-5f2b9c1e.abc_01", "colon": "lb:5f2b9c1e:abc", "quote": 'abcdefgh"x', "short": "abc",
               "backslash": "abcdefgh\\x00", "long": "a" * 65}
    with Gunicorn(tmp_path, sqlite_url, workers=1, threads=2) as server:
        echoed = {name: get_raw(server.url, "/healthz", {"X-Request-ID": value}).getheader("X-Request-ID")
                  for name, value in offered.items()}
    _lines, entries = access_lines(server)

    assert echoed["plain"] == offered["plain"]
    for name in ("colon", "quote", "short", "backslash", "long"):
        assert echoed[name] != offered[name] and len(echoed[name]) == 32, name
    assert {e["request_id"] for e in entries} >= set(echoed.values())


class _Response:
    """What gunicorn's logger reads of a response."""

    status = "200 OK"
    status_code = 200
    sent = 12
    headers = [("X-Request-ID", "abcdefgh-1234")]


def in_process_line(path):
    """The access line AccessLogger writes for a GET of ``path`` (a WSGI path: latin-1 text)."""
    config = Config()
    config.set("accesslog", "-")
    logger = AccessLogger(config)
    records = []
    handler = logging.Handler()
    handler.emit = lambda record: records.append(record.getMessage())
    logger.access_log.handlers[:] = [handler]
    request = types.SimpleNamespace(method="GET", path=path, query="", uri=path, version=(1, 1), headers=[])
    environ = {"REMOTE_ADDR": "127.0.0.1", "PATH_INFO": path, "QUERY_STRING": "plate=B12345",
               "REQUEST_METHOD": "GET", "SERVER_PROTOCOL": "HTTP/1.1", "RAW_URI": path}
    logger.access(_Response(), request, environ, timedelta(milliseconds=3))
    assert len(records) == 1
    return records[0]


@pytest.mark.parametrize("path", ["/a\\b", "/x\n{\"forged\": true}", "/api/v1/payments/\x00", '/pay/"\\"',
                                  "/receipts/fp-ab12-cd34-ef56-gh78", "/r/\x1b[31m\x7f"])
def test_the_in_process_access_logger_writes_valid_json_whatever_the_path_holds(path):
    line = in_process_line(path)

    entry = json.loads(line)
    assert "\n" not in line
    assert entry["method"] == "GET" and entry["status"] == 200 and entry["request_id"] == "abcdefgh-1234"
    assert "plate" not in line and "B12345" not in line


@pytest.mark.parametrize("path, masked", [
    ("/receipts/FP-AB12-CD34-EF56-GH78", "/receipts/[redacted]"),
    ("/receipts/fp-ab12-cd34-ef56-gh78", "/receipts/[redacted]"),
    ("/api/v1/receipts/Fp-Ab12-cD34-EF56-gh78", "/api/v1/receipts/[redacted]"),
    ("/receipts/fpab12cd34ef56gh78", "/receipts/[redacted]"),
    ("/pay/abc/fp-ab12-cd34-ef56-gh78", "/pay/abc/[redacted]"),
    ("/kiosk/enrol/s3cr3t-code", "/kiosk/enrol/[redacted]"),
])
def test_receipt_numbers_are_masked_whatever_their_case(path, masked):
    assert AccessLogger.mask(path) == masked


def listening_addresses(port):
    """The IPv4 addresses with a socket listening on ``port`` (from /proc/net/tcp)."""
    addresses = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        local, state = line.split()[1], line.split()[3]
        host, local_port = local.split(":")
        if state == "0A" and int(local_port, 16) == port:  # 0A: LISTEN
            addresses.add(".".join(str(int(host[i:i + 2], 16)) for i in (6, 4, 2, 0)))
    return addresses


def load_gunicorn_conf():
    """The repository's gunicorn.conf.py as a module (it reads the environment when loaded)."""
    spec = importlib.util.spec_from_file_location("finepay_gunicorn_conf", ROOT / "gunicorn.conf.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def fake_server(binds):
    """What gunicorn's on_starting hook receives, reduced to the bind setting and a logger."""
    warnings = []
    config = types.SimpleNamespace(bind=list(binds))
    config.set = lambda name, value: setattr(config, name, value)
    log = types.SimpleNamespace(warning=lambda message, *args: warnings.append(message % args))
    return types.SimpleNamespace(cfg=config, log=log), warnings


@pytest.mark.parametrize("env, binds, expected, warned", [
    ({}, ["0.0.0.0:8000"], ["127.0.0.1:8000"], True),
    ({"SECRET_KEY": "dev-only-not-secret"}, ["[::]:9000", "unix:/tmp/f.sock"], ["127.0.0.1:9000", "unix:/tmp/f.sock"],
     True),
    ({}, ["127.0.0.1:8000", "localhost:8001", "[::1]:8002"], ["127.0.0.1:8000", "localhost:8001", "[::1]:8002"], True),
    ({"SECRET_KEY": "x" * 40}, ["0.0.0.0:8000"], ["0.0.0.0:8000"], False),
    ({"FINEPAY_ENV": "production", "SECRET_KEY": "x" * 40}, ["0.0.0.0:8000"], ["0.0.0.0:8000"], False),
])
def test_development_with_the_builtin_key_serves_loopback_only(monkeypatch, env, binds, expected, warned):
    monkeypatch.delenv("SECRET_KEY", raising=False)
    monkeypatch.delenv("FINEPAY_ENV", raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    server, warnings = fake_server(binds)

    load_gunicorn_conf().keep_development_local(server)

    assert server.cfg.bind == expected
    assert bool(warnings) == warned
    if warned:
        assert len(warnings) == 1 and "for local use only" in warnings[0]


def test_a_real_gunicorn_asked_to_bind_every_interface_in_development_listens_on_loopback(tmp_path, sqlite_url):
    server = Gunicorn(tmp_path, sqlite_url, workers=1, threads=1)
    port = server.port
    server.env.pop("SECRET_KEY", None)
    server.env.update(FINEPAY_BIND=f"0.0.0.0:{port}", LOG_LEVEL="INFO")
    with server:
        assert get_raw(server.url, "/healthz").status == 200
        listening = listening_addresses(port)
        log = server.log()

    assert listening == {"127.0.0.1"}
    assert f"Listening at: http://127.0.0.1:{port}" in log
    assert log.count("for local use only") == 1  # once, from the master


def test_only_a_request_a_sandbox_app_answered_is_marked_sandbox_in_the_access_log():
    config = Config()
    config.set("accesslog", "-")
    logger = AccessLogger(config)
    request = types.SimpleNamespace(method="GET", path="/", query="", uri="/", version=(1, 1), headers=[])
    environ = {"REMOTE_ADDR": "127.0.0.1", "PATH_INFO": "/", "QUERY_STRING": "", "REQUEST_METHOD": "GET",
               "SERVER_PROTOCOL": "HTTP/1.1", "RAW_URI": "/"}

    real = logger.access_entry(_Response(), request, environ, timedelta(milliseconds=3))
    sandbox = logger.access_entry(_Response(), request, {**environ, SANDBOX_ENVIRON: True}, timedelta(milliseconds=3))

    assert "sandbox" not in real
    assert sandbox["sandbox"] == "SANDBOX"
