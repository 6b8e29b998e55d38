"""Observability: JSON logs carrying a request id, and Prometheus metrics for operators only.

Every request gets an id (the load balancer's ``X-Request-ID`` when it sends a
sane one, else a fresh one). It is returned in the response header, stamped
on every log line, stored on every audit entry and sent with every gateway
call, so one id finds everything a request did. CLI runs (``payments sync``)
get an id of their own.

Metrics live in a registry per app (``app.extensions["finepay.metrics"]``);
the areas add their own to it (``metrics_registry``), and collectors that read
the database at scrape time (``add_collector``), so that such figures agree
across workers and machines. Under gunicorn set ``PROMETHEUS_MULTIPROC_DIR``
(gunicorn.conf.py does the rest) so that ``/metrics`` adds up every worker.
``/metrics`` answers only loopback callers that did not come through
a proxy, or a caller presenting ``Authorization: Bearer $METRICS_TOKEN``;
everyone else gets a plain 404.
"""
import contextvars
import hmac
import ipaddress
import json
import logging
import os
import re
import sys
import time
import traceback
import uuid
from datetime import UTC, datetime

from flask import Blueprint, Response, abort, current_app, g, request
from gunicorn.glogging import Logger as GunicornLogger
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Histogram, generate_latest

REQUEST_ID_HEADER = "X-Request-ID"
# A client's id is kept only when it is plainly an id: it lands in logs, audit rows and gateway calls.
_VALID_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{8,64}")
_request_id = contextvars.ContextVar("finepay_request_id", default=None)

# Anything that looks like a credential or a card token is masked in every log line,
# whatever logged it: configured secrets by value, well-known token shapes by pattern.
_SECRET_PATTERNS = re.compile(
    r"\b(?:sk|rk|pk)_(?:test|live)_[A-Za-z0-9]+|\bwhsec_[A-Za-z0-9]+|\bpm_[A-Za-z0-9_]+"
    r"|(?i:bearer)\s+[A-Za-z0-9._~+/=-]{8,}"
)
# The base's own credentials; an area or a gateway adapter adds its own with add_secret_setting.
SECRET_SETTINGS = ("SECRET_KEY", "METRICS_TOKEN")
SECRETS = "finepay.secret_settings"
REDACTED = "[redacted]"
METRICS = "finepay.metrics"
COLLECTORS = "finepay.metrics.collectors"


# --- request ids ---------------------------------------------------------------

def current_request_id():
    """The id of the request (or CLI run) being handled, or None outside of one."""
    return _request_id.get()


def new_request_id():
    """A fresh, unguessable request id."""
    return uuid.uuid4().hex


def bind_request_id(value=None):
    """Make ``value`` (or a fresh id) the current request id; returns the token to reset it."""
    return _request_id.set(value or new_request_id())


# --- logging -----------------------------------------------------------------

class Redactor:
    """Masks configured secrets and token-shaped strings in text."""

    def __init__(self, secrets=()):
        self.secrets = sorted({s for s in secrets if s and len(s) >= 6}, key=len, reverse=True)

    def __call__(self, text):
        """``text`` with every secret replaced by [redacted]."""
        for secret in self.secrets:
            text = text.replace(secret, REDACTED)
        return _SECRET_PATTERNS.sub(REDACTED, text)


class JSONFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, request id, pid, and any exception.

    On a sandbox server (no real money moves) every line also carries ``"sandbox": "SANDBOX"``.
    """

    def __init__(self, redactor=None, sandbox=False):
        super().__init__()
        self.redactor = redactor or Redactor()
        self.sandbox = sandbox

    def format(self, record):
        """The record as a single line of JSON, secrets masked."""
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", None) or current_request_id(),
            "pid": record.process,
        }
        if self.sandbox:
            entry["sandbox"] = "SANDBOX"
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        for key in ("event", "operation", "gateway", "duration_ms", "outcome", "code", "status", "path"):
            if hasattr(record, key):
                entry[key] = getattr(record, key)
        return self.redactor(json.dumps(entry, ensure_ascii=False, default=str))


class TextFormatter(logging.Formatter):
    """Human-readable lines for a developer's terminal, secrets masked all the same."""

    def __init__(self, redactor=None, sandbox=False):
        prefix = "SANDBOX " if sandbox else ""
        super().__init__(prefix + "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s")
        self.redactor = redactor or Redactor()

    def format(self, record):
        """The record as text, secrets masked."""
        record.request_id = getattr(record, "request_id", None) or current_request_id() or "-"
        return self.redactor(super().format(record))


class _FinePayHandler(logging.StreamHandler):
    """The one handler FinePay installs on the root logger (replaced, never stacked, per app)."""


def add_secret_setting(app, name):
    """Mask the value of setting ``name`` (a credential an area or a gateway adapter reads) in every log line.

    Call it from an init_app: create_app configures logging last, after every area.
    """
    names = app.extensions.setdefault(SECRETS, [])
    if name not in names:
        names.append(name)


def configure_logging(app):
    """Send every log line to stderr as JSON (or text), with the request id, secrets masked."""
    config = app.config
    secret_settings = (*SECRET_SETTINGS, *app.extensions.get(SECRETS, ()))
    redactor = Redactor(config.get(name) or "" for name in secret_settings)
    sandbox = bool(config.get("SANDBOX"))
    formatter = (JSONFormatter(redactor, sandbox) if config["LOG_FORMAT"] == "json"
                 else TextFormatter(redactor, sandbox))
    root = logging.getLogger()
    for handler in [h for h in root.handlers if isinstance(h, _FinePayHandler)]:
        root.removeHandler(handler)
    handler = _FinePayHandler(sys.stderr)
    handler.setFormatter(formatter)
    root.addHandler(handler)
    root.setLevel(config["LOG_LEVEL"])
    app.extensions["finepay.redactor"] = redactor
    # Flask's own handler would print every app.logger line a second time, unformatted.
    app.logger.handlers.clear()
    app.logger.propagate = True


# Set in the WSGI environ by a sandbox app: gunicorn's logger cannot see the app's config, only the request.
SANDBOX_ENVIRON = "finepay.sandbox"


class AccessLogger(GunicornLogger):
    """gunicorn's access log as one JSON object per line, without secrets in paths.

    The line is built with json.dumps (never by pasting the path into a format
    string), so a path holding quotes, backslashes, newlines or NUL still
    gives one valid JSON object. Only the path is logged (never the query
    string or a body); receipt numbers, in any case, and kiosk enrolment codes
    are masked, so no line ties a payment id to its receipt. A request a
    sandbox app answered carries ``"sandbox": "SANDBOX"`` like the app's own lines.
    """

    _RECEIPT = re.compile(r"FP-[0-9A-Z]{4}-[0-9A-Z]{4}-[0-9A-Z]{4}-[0-9A-Z]{4}", re.IGNORECASE)
    # Whatever follows these prefixes works like a password, even when it is not well formed.
    _SECRET_SEGMENT = re.compile(r"(/receipts/|/kiosk/enrol/)[^/]+", re.IGNORECASE)

    def access(self, resp, req, environ, request_time):
        """Write the request's access line (see access_entry)."""
        if not self.access_log_enabled:
            return
        try:
            entry = self.access_entry(resp, req, environ, request_time)
            self.access_log.info("%s", json.dumps(entry, ensure_ascii=False))
        except Exception:  # noqa: BLE001  (gunicorn's own access() never lets a log line fail a request)
            self.error(traceback.format_exc())

    def access_entry(self, resp, req, environ, request_time):
        """The access line's fields: who, what (path masked), status, size, time, worker, request id."""
        atoms = self.atoms(resp, req, environ, request_time)
        return {
            "type": "access",
            "remote": atoms.get("h", "-"),
            "method": atoms.get("m", "-"),
            "path": self.mask(self.readable(atoms.get("U", ""))),
            "status": resp.status_code if isinstance(getattr(resp, "status_code", None), int) else atoms.get("s"),
            "bytes": atoms.get("B", "-"),
            "duration_ms": atoms.get("M"),
            "pid": atoms.get("p", "-"),
            "request_id": atoms.get("{x-request-id}o", "-"),
            **({"sandbox": "SANDBOX"} if environ.get(SANDBOX_ENVIRON) else {}),
        }

    @staticmethod
    def readable(path):
        """WSGI hands the path over as latin-1: give back the UTF-8 the client sent (plates are Chinese)."""
        try:
            return path.encode("latin-1").decode("utf-8", errors="replace")
        except UnicodeEncodeError:
            return path

    @classmethod
    def mask(cls, path):
        """The path with receipt numbers and enrolment codes replaced by [redacted], query string dropped."""
        path = path.split("?", 1)[0] if " " not in path else re.sub(r"\?\S*", "", path)
        path = cls._SECRET_SEGMENT.sub(lambda m: m.group(1) + REDACTED, path)
        return cls._RECEIPT.sub(REDACTED, path)


# --- metrics -----------------------------------------------------------------

class Metrics:
    """FinePay's Prometheus metrics for one app: the shared ones (areas add theirs to the same registry)."""

    def __init__(self, registry):
        self.registry = registry
        self.request_latency = Histogram(
            "finepay_http_request_duration_seconds", "Time to answer a request, by endpoint and status.",
            ["method", "endpoint", "status"], registry=registry,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
        )


def metrics_registry(app):
    """The app's Prometheus registry, for an area's own metrics."""
    return app.extensions[METRICS].registry


def add_collector(app, collector):
    """A collector an area reads at scrape time (e.g. from the database): the same answer from every worker."""
    app.extensions[COLLECTORS].append(collector)
    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        metrics_registry(app).register(collector)


# --- the app hooks ----------------------------------------------------------------

bp = Blueprint("observability", __name__)


def _is_loopback(address):
    try:
        return ipaddress.ip_address(address or "").is_loopback
    except ValueError:
        return False


def metrics_allowed():
    """Whether this caller may read /metrics: a bearer METRICS_TOKEN, or loopback not via a proxy."""
    token = current_app.config.get("METRICS_TOKEN") or ""
    presented = request.headers.get("Authorization", "")
    if token and hmac.compare_digest(presented.encode(), f"Bearer {token}".encode()):
        return True
    proxied = any(h in request.headers for h in ("X-Forwarded-For", "X-Real-IP", "Forwarded"))
    return _is_loopback(request.remote_addr) and not proxied


@bp.get("/metrics")
def metrics():
    """Prometheus text format: request latency, and what the areas add (payments by outcome, gateway calls...)."""
    if not metrics_allowed():
        abort(404)  # the same as a path that does not exist: nothing to probe
    registry = current_app.extensions[METRICS].registry
    multiproc_dir = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if multiproc_dir:
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry, path=multiproc_dir)
        for collector in current_app.extensions[COLLECTORS]:
            registry.register(collector)
    return Response(generate_latest(registry), mimetype=CONTENT_TYPE_LATEST)


def init_app(app):
    """Request ids, the metrics registry and /metrics for this app (logging: configure_logging, once it is built)."""
    registry = CollectorRegistry(auto_describe=True)
    metrics_ = Metrics(registry)
    app.extensions[METRICS] = metrics_
    app.extensions[COLLECTORS] = []
    app.register_blueprint(bp)
    access_log = logging.getLogger("finepay.request")

    @app.before_request
    def start_request():
        if app.config.get("SANDBOX"):
            request.environ[SANDBOX_ENVIRON] = True  # for gunicorn's access line, written after the app answered
        offered = request.headers.get(REQUEST_ID_HEADER, "")
        g.request_id = offered if _VALID_REQUEST_ID.fullmatch(offered) else new_request_id()
        g.request_id_token = _request_id.set(g.request_id)
        g.request_started = time.perf_counter()

    @app.after_request
    def finish_request(response):
        request_id = g.get("request_id")
        if request_id:
            response.headers[REQUEST_ID_HEADER] = request_id
        started = g.get("request_started")
        if started is not None:
            elapsed = time.perf_counter() - started
            endpoint = request.url_rule.endpoint if request.url_rule else "unmatched"
            metrics_.request_latency.labels(request.method, endpoint, str(response.status_code)).observe(elapsed)
            if response.status_code >= 500:
                access_log.warning("%s %s answered %s", request.method, endpoint, response.status_code, extra={
                    "event": "request", "status": response.status_code, "duration_ms": round(elapsed * 1000, 1),
                })
        return response

    @app.teardown_request
    def end_request(_exc):
        token = g.pop("request_id_token", None)
        if token is not None:
            try:
                _request_id.reset(token)
            except ValueError:  # reset from another context (a streamed response): just clear it
                _request_id.set(None)
