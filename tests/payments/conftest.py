"""A real localstripe process for the Stripe adapter's tests, emptied between tests."""
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

ROOT = Path(__file__).resolve().parents[2]
STARTUP_SECONDS = 15


def free_port():
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def localstripe_server(tmp_path_factory):
    """Start localstripe on a free loopback port for the session; yield its base URL."""
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    log_path = tmp_path_factory.mktemp("localstripe") / "localstripe.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "tests.payments.localstripe_server", str(port)],
            cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + STARTUP_SECONDS
        while True:
            if process.poll() is not None:
                pytest.fail(f"localstripe exited with {process.returncode}:\n{log_path.read_text(errors='replace')}")
            try:
                if requests.get(f"{base_url}/js.stripe.com/v3/", timeout=1).ok:
                    break
            except requests.ConnectionError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"localstripe did not answer within {STARTUP_SECONDS} s:\n"
                            f"{log_path.read_text(errors='replace')}")
            time.sleep(0.05)
        yield base_url
    finally:
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture
def localstripe(localstripe_server):
    """localstripe's base URL, with an empty store for each test.

    Registered webhooks survive this (localstripe keeps them outside its store):
    whoever registers one removes it with ``DELETE /_config/webhooks``, a route
    the launcher adds.
    """
    requests.delete(f"{localstripe_server}/_config/data", timeout=5).raise_for_status()
    return localstripe_server
