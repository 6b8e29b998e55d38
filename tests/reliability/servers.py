"""Processes the reliability tests start and stop: gunicorn, nginx, redis-server, a cuttable TCP proxy."""
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import pytest
import redis
import requests

from tests.conftest import did_not_run, redis_missing

ROOT = Path(__file__).resolve().parents[2]
GUNICORN = str(Path(sys.executable).with_name("gunicorn"))
STARTUP_SECONDS = 30
NGINX_TEMPLATE = ROOT / "deploy" / "nginx-finepay.conf.template"
# CI (.ci/run) sets these: a missing nginx is then a failure, not a skip.
REQUIRE_NGINX = os.environ.get("REQUIRE_NGINX") == "1" or os.environ.get("REQUIRE_BROWSER") == "1"


def free_port():
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until(predicate, timeout, interval=0.1):
    """Poll predicate until it is truthy or timeout seconds pass; returns its last value."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(interval)


class ChildServer:
    """A server the test runs as a child process in its own process group; a context manager."""

    process = None
    stop_timeout = 20  # seconds to finish gracefully after SIGTERM before SIGKILL

    def stop(self):
        """Stop gracefully (SIGTERM), then for good (SIGKILL to the whole group)."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=self.stop_timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


class Gunicorn(ChildServer):
    """FinePay under gunicorn with the repository's gunicorn.conf.py, on a free loopback port."""

    def __init__(self, tmp_path, database_url, workers=2, threads=4, **env):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.dir = tmp_path / f"gunicorn-{self.port}"
        self.dir.mkdir(parents=True)
        self.log_path = self.dir / "server.log"
        self.access_path = self.dir / "access.log"
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("FINEPAY_", "RATELIMIT_", "PROMETHEUS_"))},
            "FINEPAY_ENV": "development",
            "FINEPAY_BIND": f"127.0.0.1:{self.port}",
            "FINEPAY_INSTANCE_PATH": str(self.dir),
            "FINEPAY_ACCESS_LOG": str(self.access_path),
            "WEB_CONCURRENCY": str(workers),
            "FINEPAY_THREADS": str(threads),
            "DATABASE_URL": database_url,
            "PAYMENT_GATEWAY": "sandbox",
            "RATELIMIT_STORAGE_URI": "memory://",
            "LOOKUP_RATE_LIMIT": "100000/minute",
            "PLATE_FAILURE_RATE_LIMIT": "100000/hour",
            "LOG_LEVEL": "WARNING",
            **env,
        }
        self.process = None

    def start(self):
        """Start the master and wait until a worker answers /healthz."""
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(
                [GUNICORN, "-c", "gunicorn.conf.py", "wsgi:app"], cwd=ROOT, env=self.env,
                stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            )

        def up():
            if self.process.poll() is not None:
                pytest.fail(f"gunicorn exited with {self.process.returncode}:\n{self.log()}")
            try:
                return requests.get(f"{self.url}/healthz", timeout=1).ok
            except requests.RequestException:
                return False

        if not wait_until(up, STARTUP_SECONDS):
            self.stop()
            pytest.fail(f"gunicorn did not answer within {STARTUP_SECONDS} s:\n{self.log()}")
        wait_until(lambda: len(self.worker_pids()) >= int(self.env["WEB_CONCURRENCY"]), 10)
        return self

    def worker_pids(self):
        """The master's current worker processes."""
        try:
            children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children").read_text()
        except OSError:
            return []
        return [int(pid) for pid in children.split()]

    def serving_pids(self, path_prefix):
        """Worker pids that answered requests for paths starting with path_prefix (from the access log)."""
        pids = set()
        for line in self.access_path.read_text().splitlines():
            try:
                entry = json.loads(line)
            except ValueError:
                continue
            if entry.get("path", "").startswith(path_prefix):
                pids.add(entry["pid"])
        return pids

    def log(self):
        """The server's output so far (for failure messages)."""
        return self.log_path.read_text(errors="replace")[-5000:] if self.log_path.exists() else ""

    def kill(self):
        """SIGKILL the master and its workers at once, as a machine dying would; returns the pids killed."""
        pids = [self.process.pid, *self.worker_pids()]
        os.killpg(self.process.pid, signal.SIGKILL)  # its own session: the workers share its group
        self.process.wait()
        return pids



class RedisServer:
    """A private redis-server on a free loopback port (so the machine's shared one stays up)."""

    def __init__(self, tmp_path):
        if not shutil.which("redis-server"):
            redis_missing("redis-server is not installed")
        self.port = free_port()
        self.dir = tmp_path / f"redis-{self.port}"
        self.dir.mkdir(parents=True)
        self.uri = f"redis://127.0.0.1:{self.port}/0"
        self.process = None

    def start(self):
        """Start (or restart) it on the same port, empty."""
        self.process = subprocess.Popen(
            ["redis-server", "--bind", "127.0.0.1", "--port", str(self.port), "--save", "", "--appendonly", "no",
             "--dir", str(self.dir)],
            stdout=open(self.dir / "redis.log", "ab"), stderr=subprocess.STDOUT,  # noqa: SIM115
        )
        if not wait_until(lambda: self.cli("PING") == "PONG", 10):
            pytest.fail("redis-server did not start")
        return self

    def cli(self, *args):
        """Run redis-cli against it; returns its output (stripped) or '' on failure."""
        result = subprocess.run(["redis-cli", "-p", str(self.port), *args], capture_output=True, text=True,
                                timeout=5)
        return result.stdout.strip() if result.returncode == 0 else ""

    def stop(self):
        """Stop it at once, discarding its data (as a crash would)."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)


@contextmanager
def redis_database(tmp_path, number):
    """A URL of Redis database ``number``, empty, emptied again afterwards.

    The machine's Redis on 6379 when it answers, else a private redis-server
    (skipped loudly, or failed under REQUIRE_REDIS=1, when there is neither).
    """
    url, private = f"redis://127.0.0.1:6379/{number}", None
    try:
        redis.Redis.from_url(url, socket_connect_timeout=1).ping()
    except redis.RedisError:
        private = RedisServer(tmp_path).start()
        url = f"redis://127.0.0.1:{private.port}/{number}"
    store = redis.Redis.from_url(url)
    store.flushdb()
    try:
        yield url
    finally:
        store.flushdb()
        store.close()
        if private:
            private.stop()


class CuttableProxy:
    """A TCP proxy to PostgreSQL that a test can cut (drop every connection, refuse new ones) and restore."""

    def __init__(self, target_host, target_port):
        self.target = (target_host, target_port)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.up = True
        self.closing = False
        self.connections = []
        self.lock = threading.Lock()
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self):
        while not self.closing:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            if not self.up:
                client.close()  # the database "is not there"
                continue
            try:
                server = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            with self.lock:
                self.connections += [client, server]
            for a, b in ((client, server), (server, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(source, sink):
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def cut(self):
        """Drop every open connection and refuse new ones."""
        self.up = False
        with self.lock:
            connections, self.connections = self.connections, []
        for sock in connections:
            try:
                sock.shutdown(socket.SHUT_RDWR)
                sock.close()
            except OSError:
                pass
        return len(connections) // 2

    def restore(self):
        """Accept connections again."""
        self.up = True

    def close(self):
        """Stop listening and drop everything."""
        self.closing = True
        self.cut()
        self.listener.close()


class Nginx(ChildServer):
    """Debian's nginx as a child process (never a daemon), running the shipped FinePay config over TLS.

    The config is deploy/nginx-finepay.conf.template rendered by deploy/render_nginx.py, exactly as
    docs/deploy.md tells an operator to; only the wrapper around it (pid, logs, temp files) is the test's.
    """

    stop_timeout = 10  # SIGTERM is nginx's fast shutdown

    def __init__(self, tmp_path, app_servers, client_rate="1000r/s", client_burst=1000):
        self.binary = shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin:/sbin")
        missing = [name for name, found in (("nginx", self.binary), ("openssl", shutil.which("openssl"))) if not found]
        if missing:
            message = f"{' and '.join(missing)} not installed (make services installs them); the two-node tests DID NOT RUN"
            did_not_run(message, required=REQUIRE_NGINX)
        self.port, self.http_port = free_port(), free_port()
        self.url = f"https://127.0.0.1:{self.port}"
        self.dir = tmp_path / f"nginx-{self.port}"
        (self.dir / "tmp").mkdir(parents=True)
        self.cert, self.key = self.dir / "cert.pem", self.dir / "key.pem"
        self.access_path = self.dir / "finepay-lb.access.log"
        self.error_path = self.dir / "error.log"
        self.settings = {
            "FINEPAY_APP_SERVERS": " ".join(f"server {address} max_fails=1 fail_timeout=10s;"
                                            for address in app_servers),
            "FINEPAY_SERVER_NAME": "127.0.0.1",
            "FINEPAY_HTTPS_LISTEN": f"127.0.0.1:{self.port}",
            "FINEPAY_HTTP_LISTEN": f"127.0.0.1:{self.http_port}",
            "FINEPAY_TLS_CERT": str(self.cert),
            "FINEPAY_TLS_KEY": str(self.key),
            "FINEPAY_LOG_DIR": str(self.dir),
            "FINEPAY_CLIENT_RATE": client_rate,
            "FINEPAY_CLIENT_BURST": str(client_burst),
        }
        self.process = None

    def render(self):
        """The site config, rendered by the same command the deploy guide gives."""
        rendered = subprocess.run([sys.executable, str(ROOT / "deploy" / "render_nginx.py"), str(NGINX_TEMPLATE)],
                                  env={"PATH": os.environ.get("PATH", ""), **self.settings},
                                  capture_output=True, text=True, timeout=30)
        assert rendered.returncode == 0, rendered.stderr
        return rendered.stdout

    def start(self):
        """A self-signed certificate for 127.0.0.1, the config, nginx; wait until it proxies /healthz."""
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                        "-nodes", "-days", "2", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                        "-keyout", str(self.key), "-out", str(self.cert)], check=True, capture_output=True, timeout=30)
        (self.dir / "finepay.conf").write_text(self.render())
        temp = self.dir / "tmp"
        (self.dir / "nginx.conf").write_text(f"""daemon off;
{"user root;" if os.geteuid() == 0 else ""}
worker_processes 1;
pid {self.dir}/nginx.pid;
error_log {self.error_path} notice;
events {{ worker_connections 1024; }}
http {{
    client_body_temp_path {temp}/body;
    proxy_temp_path {temp}/proxy;
    fastcgi_temp_path {temp}/fastcgi;
    uwsgi_temp_path {temp}/uwsgi;
    scgi_temp_path {temp}/scgi;
    include {self.dir}/finepay.conf;
}}
""")
        with open(self.dir / "nginx.out", "wb") as out:
            # -e: the compiled-in error log is opened before the config is read; keep it in our directory.
            self.process = subprocess.Popen(
                [self.binary, "-p", str(self.dir), "-c", str(self.dir / "nginx.conf"), "-e", str(self.error_path)],
                stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
            )

        def up():
            if self.process.poll() is not None:
                pytest.fail(f"nginx exited with {self.process.returncode}:\n{self.log()}")
            try:
                return requests.get(f"{self.url}/healthz", timeout=2, verify=self.cert).ok
            except requests.RequestException:
                return False

        if not wait_until(up, STARTUP_SECONDS):
            self.stop()
            pytest.fail(f"nginx did not proxy /healthz within {STARTUP_SECONDS} s:\n{self.log()}")
        return self

    def entries(self):
        """nginx's access log (one JSON object per request)."""
        if not self.access_path.exists():
            return []
        return [json.loads(line) for line in self.access_path.read_text().splitlines() if line.strip()]

    def log(self):
        """nginx's output and error log so far (for failure messages)."""
        parts = [path.read_text(errors="replace")[-3000:] for path in (self.dir / "nginx.out", self.error_path)
                 if path.exists()]
        return "\n".join(parts)
