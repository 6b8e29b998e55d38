"""gunicorn settings for FinePay: gunicorn -c gunicorn.conf.py wsgi:app

Sized from the CPU count and overridable from the environment. The access
log records the path only (never the query string), with receipt numbers and
kiosk enrolment codes masked (finepay.observability.AccessLogger); plates,
VIN codes and card tokens only ever travel in request bodies, which are never
logged.

Graceful reload: ``kill -HUP <master>`` starts new workers on the new code and
lets the old ones finish their requests (up to graceful_timeout); the app is
not preloaded, so every reload re-imports it.
"""
import multiprocessing
import os

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
logger_class = "finepay.observability.AccessLogger"
# One JSON object per line: path only (%(U)s, masked), no query string, no body.
access_log_format = (
    '{"type":"access","remote":"%(h)s","method":"%(m)s","path":"%(U)s","status":%(s)s,'
    '"bytes":"%(B)s","duration_ms":%(M)s,"pid":"%(p)s","request_id":"%({x-request-id}o)s"}'
)
errorlog = "-"
loglevel = os.environ.get("LOG_LEVEL", "info").lower()
# Only the local reverse proxy may claim the request was HTTPS (X-Forwarded-Proto).
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1,::1")


def on_starting(server):
    """Prometheus multiprocess mode: an empty directory at every start."""
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
