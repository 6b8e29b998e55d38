"""``make run``: the demo, beside the local simulators of the payment rails that have one, all stopped together.

PAYMENT_GATEWAYS (default wechatpay,alipay,sandbox) lists the ways to pay the
demo offers. A gateway that moves no money by itself (the card sandbox) runs
as it is; a rail that has a simulator (the ``finepay.simulators`` entry-point
group) gets one on 127.0.0.1, from port 8101 up in the list's order, keeping
its keys and orders in instance/simulators/NAME. The simulator's
``--print-config`` JSON becomes the settings the adapter declares (RENAMED
below says how a key maps to one), with NAME_SIMULATED=1 so that every page
says SANDBOX, and PUBLIC_BASE_URL (where the rails send their notifications)
is the demo's own address unless set. A rail
whose adapter or simulator is not installed, or whose simulator does not
start, is left out with a message saying so; the card sandbox is always
there to fall back on. Migrations, the demo data and gunicorn then run with
those settings, and the simulators stop when gunicorn does (Ctrl-C).
"""
import json
import os
import signal
import socket
import subprocess
import sys
import time
from importlib.metadata import entry_points

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.dirname(sys.executable)
FLASK = [os.path.join(BIN, "flask"), "--app", "wsgi"]
GUNICORN = [os.path.join(BIN, "gunicorn"), "-c", "gunicorn.conf.py", "--bind", "127.0.0.1:8000", "--workers", "2",
            "--access-logfile", "-", "wsgi:app"]
DEFAULT_GATEWAYS = "wechatpay,alipay,sandbox"
FALLBACK = "sandbox"
FIRST_SIMULATOR_PORT = 8101
DATA_DIR = os.path.join("instance", "simulators")
# Where a simulator's --print-config calls a thing otherwise than its adapter's settings do. By default a key K
# fills the setting NAME_K in capitals (a key file's path, NAME_..._FILE; a key that starts with the rail's name
# keeps it once).
RENAMED = {
    "wechatpay": {"merchant_serial": ("CERT_SERIAL",), "merchant_private_key_path": ("PRIVATE_KEY_FILE",),
                  "platform_public_key_path": ("PUBLIC_KEY_FILE",), "platform_public_key_id": ("PUBLIC_KEY_ID",),
                  "base_url": ("BASE_URL", "OAUTH_BASE_URL")},
}
DEMO_URL = "http://127.0.0.1:8000"
START_SECONDS = 30  # a first start makes the simulator's keys: allow for it
STOP_SECONDS = 5


class SimulatorUnavailable(Exception):
    """A rail's simulator could not be started: the demo goes on without that rail."""


def requested_gateways(env):
    """The ways to pay asked for: PAYMENT_GATEWAYS, else PAYMENT_GATEWAY as a one-item list, else the default."""
    names = env.get("PAYMENT_GATEWAYS") or env.get("PAYMENT_GATEWAY") or DEFAULT_GATEWAYS
    return [name.strip() for name in names.split(",") if name.strip()]


def installed(group, name):
    """Whether an entry point ``name`` is registered in ``group`` (an adapter or a simulator)."""
    return bool(entry_points(group=group, name=name))


def moves_no_money(name):
    """Whether the installed adapter ``name`` is a sandbox of its own, with no account and no simulator."""
    return next(iter(entry_points(group="finepay.gateways", name=name))).load().simulated


def setting_names(name, key):
    """The settings of rail ``name``'s adapter that a --print-config ``key`` may fill (its declared ones are kept)."""
    prefix = name.upper() + "_"
    renamed = RENAMED.get(name, {}).get(key)
    if renamed:
        return [prefix + setting for setting in renamed]
    setting = key.upper()
    if setting.endswith("_PATH"):
        setting = setting.removesuffix("_PATH") + "_FILE"
    return [setting if setting.startswith(prefix) else prefix + setting]


def settings_from_config(name, config, declared):
    """The environment that points rail ``name``'s adapter at its simulator, from the simulator's --print-config.

    Each value goes to the adapter's settings it names (``declared``: the names
    the adapter declares; the rest of the config is for people), and
    NAME_SIMULATED=1 makes every page say SANDBOX.
    """
    settings = {f"{name.upper()}_SIMULATED": "1"}
    for key, value in config.items():
        for setting in setting_names(name, key):
            if setting in declared:
                settings[setting] = str(value)
    return settings


def declared_settings(name):
    """The names of the settings the installed adapter ``name`` reads."""
    adapter = next(iter(entry_points(group="finepay.gateways", name=name))).load()
    return {setting.name for setting in adapter.settings}


def simulator_command(name, port, *extra):
    """``flask --app wsgi simulate NAME`` on ``port`` with its own data directory."""
    return [*FLASK, "simulate", name, "--port", str(port), "--data-dir", os.path.join(DATA_DIR, name), *extra]


def simulator_env(env):
    """A simulator's own app needs no rail of FinePay's: it runs on the sandbox, whatever the demo offers."""
    env = {k: v for k, v in env.items() if k not in ("PAYMENT_GATEWAY", "PAYMENT_GATEWAYS")}
    return {**env, "PAYMENT_GATEWAYS": FALLBACK}


def read_config(name, port, env):
    """What the simulator prints with --print-config (it makes its keys on first start); SimulatorUnavailable if not."""
    try:
        done = subprocess.run(simulator_command(name, port, "--print-config"), cwd=ROOT, env=simulator_env(env),
                              capture_output=True, text=True, timeout=START_SECONDS)
    except subprocess.TimeoutExpired:
        raise SimulatorUnavailable(f"its --print-config did not answer within {START_SECONDS} s") from None
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no message"])[-1]
        raise SimulatorUnavailable(f"its --print-config failed: {last}")
    try:  # the JSON object, after whatever the app said while starting
        config, _end = json.JSONDecoder().raw_decode(done.stdout[done.stdout.index("{"):])
    except ValueError:
        raise SimulatorUnavailable("its --print-config did not print JSON") from None
    if not isinstance(config, dict):
        raise SimulatorUnavailable("its --print-config did not print a JSON object")
    return config


def wait_for_port(port, process):
    """Wait until something listens on 127.0.0.1:port; SimulatorUnavailable if the process exits or time runs out."""
    deadline = time.monotonic() + START_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SimulatorUnavailable(f"it exited with status {process.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.2)
    raise SimulatorUnavailable(f"nothing listened on port {port} within {START_SECONDS} s")


def start_simulator(name, port, env):
    """Start rail ``name``'s simulator; returns (process, its --print-config)."""
    config = read_config(name, port, env)
    process = subprocess.Popen(simulator_command(name, port), cwd=ROOT, env=simulator_env(env))
    try:
        wait_for_port(port, process)
    except SimulatorUnavailable:
        stop(process)
        raise
    return process, config


def stop(process):
    """Stop a child: politely, then for good."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=STOP_SECONDS)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def say(message):
    """One line for the person at the terminal."""
    print(f"  {message}", flush=True)


def prepare(env, children):
    """Decide the gateways and start their simulators (appended to ``children``); returns the app's environment."""
    gateways, settings, next_port = [], {}, FIRST_SIMULATOR_PORT
    for name in requested_gateways(env):
        if not installed("finepay.gateways", name):
            say(f"{name}: this payment method is not installed here; the demo runs without it.")
        elif installed("finepay.simulators", name):
            # One port per rail in the list, started or not: each keeps its port from run to run.
            port, next_port = next_port, next_port + 1
            try:
                process, config = start_simulator(name, port, env)
            except SimulatorUnavailable as error:
                say(f"{name}: its simulator did not start ({error}); the demo runs without it.")
                continue
            children.append(process)
            settings.update(settings_from_config(name, config, declared_settings(name)))
            gateways.append(name)
            say(f"{name}: simulator on http://127.0.0.1:{port} (a simulation: no real money moves).")
        elif moves_no_money(name):
            gateways.append(name)
        else:
            say(f"{name}: needs a real account and has no local simulator; the demo runs without it.")
    if not gateways:
        say(f"None of the requested payment methods can run here: the demo offers the card sandbox ({FALLBACK}).")
        gateways = [FALLBACK]
    app_env = {k: v for k, v in env.items() if k != "PAYMENT_GATEWAY"}
    # The rails send their notifications, and the driver's phone comes back, to where the demo serves.
    app_env.setdefault("PUBLIC_BASE_URL", DEMO_URL)
    return {**app_env, **settings, "PAYMENT_GATEWAYS": ",".join(gateways)}


def serve(env, children):
    """Migrate, load the demo data, list the demo vehicles and serve until Ctrl-C (gunicorn appended to
    ``children``); returns an exit status."""
    status = subprocess.call([*FLASK, "db", "upgrade"], cwd=ROOT, env=env)
    if status != 0:
        return status
    seeded = subprocess.run([*FLASK, "demo", "seed"], cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True)
    if seeded.returncode != 0:
        print(seeded.stdout, end="", flush=True)
        return seeded.returncode
    say(f"Ways to pay: {env['PAYMENT_GATEWAYS']}")
    # The demo vehicles with what to type for each, last before the server's own lines.
    for line in seeded.stdout.splitlines():
        say(line)
    say(f"FinePay is starting on {DEMO_URL}  (Ctrl-C to stop)")
    gunicorn = subprocess.Popen(GUNICORN, cwd=ROOT, env=env)
    children.append(gunicorn)
    # Ctrl-C reaches gunicorn and the simulators themselves (one process group): let gunicorn finish its shutdown.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    return gunicorn.wait()


def main():
    """Run the demo; whatever happens, every child stops with it (gunicorn first, then the simulators)."""
    # `kill` as well as Ctrl-C goes through the finally below.
    signal.signal(signal.SIGTERM, lambda *_args: sys.exit(143))
    children = []
    try:
        return serve(prepare(dict(os.environ), children), children)
    except KeyboardInterrupt:
        return 130
    finally:
        for process in reversed(children):
            stop(process)


if __name__ == "__main__":
    sys.exit(main())
