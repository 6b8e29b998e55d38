"""gunicorn settings for FinePay: gunicorn -c gunicorn.conf.py wsgi:app

Sized from the CPU count and overridable from the environment. The access
log is one JSON object per line with the path only (never the query string),
receipt numbers and kiosk enrolment codes masked
(finepay.observability.AccessLogger); plates, VIN codes and card tokens only
ever travel in request bodies, which are never logged.

Development mode with the built-in SECRET_KEY (anyone can forge its session
cookies) serves on 127.0.0.1 only, whatever --bind or FINEPAY_BIND says, and
says so at start.

Graceful reload: ``kill -HUP <master>`` starts new workers on the new code and
lets the old ones finish their requests (up to graceful_timeout); the app is
not preloaded, so every reload re-imports it.
"""
import ipaddress
import multiprocessing
import os

from finepay.settings import uses_builtin_secret_key

cpus = multiprocessing.cpu_count()
bind = os.environ.get("FINEPAY_BIND", "127.0.0.1:8000")
# gthread: a worker waiting on the gateway (up to ~20 s) still serves other requests
# on its other threads. 2 x CPUs workers x 4 threads keeps 2 cores busy without thrashing.
worker_class = "gthread"
workers = int(os.environ.get("WEB_CONCURRENCY", max(2, cpus * 2)))
threads = int(os.environ.get("FINEPAY_THREADS", 4))
# With gthread this is the worker's heartbeat, not a request deadline: a slow gateway
# call does not get its worker killed. It must stay above STRIPE_READ_TIMEOUT anyway.
timeout = int(os.environ.get("FINEPAY_WORKER_TIMEOUT", 60))
graceful_timeout = int(os.environ.get("FINEPAY_GRACEFUL_TIMEOUT", 30))
keepalive = 5
# Heartbeat files on tmpfs: a slow disk must not make the master kill healthy workers.
worker_tmp_dir = "/dev/shm" if os.path.isdir("/dev/shm") else None
# Recycle workers now and then so a slow leak can never take the service down. Not too often:
# a new worker imports the app (about a second of CPU), and at 20,000 requests make bench saw
# 18 restarts in six minutes, each a p99 spike of 100+ ms; no worker memory grows (docs/benchmarks.md).
max_requests = int(os.environ.get("FINEPAY_MAX_REQUESTS", 200000))
max_requests_jitter = max_requests // 10
# Hostile input is refused before it reaches Flask (bodies: MAX_CONTENT_LENGTH).
limit_request_line = 4094
limit_request_fields = 60
limit_request_field_size = 8190

accesslog = os.environ.get("FINEPAY_ACCESS_LOG", "-") or None
# One JSON object per line (type, remote, method, path, status, bytes, duration_ms, pid, request_id),
# built by the logger class itself: access_log_format is not used.
logger_class = "finepay.observability.AccessLogger"
errorlog = "-"
loglevel = os.environ.get("LOG_LEVEL", "info").lower()
# Only the local reverse proxy may claim the request was HTTPS (X-Forwarded-Proto).
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1,::1")


def _is_local(address):
    """Whether a bind address (host:port, [v6]:port, unix:path, fd://n) is reachable only from this machine."""
    if address.startswith(("unix:", "fd://")):
        return True
    host = address.rsplit(":", 1)[0].strip("[]") if ":" in address else address
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def keep_development_local(server):
    """Development with the built-in secret key: rebind every non-local address to 127.0.0.1, and say so."""
    if not uses_builtin_secret_key(os.environ):
        return
    binds = [a if _is_local(a) else "127.0.0.1:" + (a.rsplit(":", 1)[1] if ":" in a else "8000")
             for a in server.cfg.bind]
    if binds != server.cfg.bind:
        server.cfg.set("bind", binds)
    server.log.warning(
        "FinePay is in development mode with the built-in SECRET_KEY: for local use only, serving on %s only. "
        "Set FINEPAY_ENV=production and a SECRET_KEY of your own to serve anyone else.", ", ".join(binds)
    )


def on_starting(server):
    """Keep a development server local; Prometheus multiprocess mode: an empty directory at every start."""
    keep_development_local(server)
    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if directory:
        os.makedirs(directory, exist_ok=True)
        for name in os.listdir(directory):
            if name.endswith(".db"):
                os.remove(os.path.join(directory, name))


def child_exit(server, worker):
    """A worker that died (or was recycled) stops counting in the live gauges."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)
