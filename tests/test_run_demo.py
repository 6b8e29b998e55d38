"""scripts/run_demo.py (`make run`): which ways to pay the demo offers, and how a simulator's config reaches its adapter."""
import importlib.util
import signal
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def run_demo():
    """The script, loaded as a module."""
    spec = importlib.util.spec_from_file_location("finepay_run_demo", ROOT / "scripts" / "run_demo.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# What the simulators print with --print-config, in shape (values made up), and the settings their adapters
# declare (as payments/gateways/wechatpay and payments/gateways/alipay name them).
WECHATPAY_CONFIG = {"base_url": "http://127.0.0.1:8101", "merchant_serial": "5F1C", "platform_public_key_id": "PUB_KEY_ID_17",
                    "merchant_private_key_path": "instance/simulators/wechatpay/merchant.pem",
                    "platform_public_key_path": "instance/simulators/wechatpay/platform.pem",
                    "apiv3_key": "k" * 32, "signing": "public-key", "admin_url": "http://127.0.0.1:8101/simulator/admin"}
WECHATPAY_SETTINGS = {"WECHATPAY_BASE_URL", "WECHATPAY_OAUTH_BASE_URL", "WECHATPAY_CERT_SERIAL", "WECHATPAY_APIV3_KEY",
                      "WECHATPAY_PRIVATE_KEY_FILE", "WECHATPAY_PUBLIC_KEY_FILE", "WECHATPAY_PUBLIC_KEY_ID",
                      "WECHATPAY_CERT_DIR", "WECHATPAY_NOTIFY_URL", "WECHATPAY_SIMULATED"}
ALIPAY_CONFIG = {"gateway_url": "http://127.0.0.1:8102/gateway.do",
                 "app_private_key_path": "instance/simulators/alipay/app.pem",
                 "alipay_public_key_path": "instance/simulators/alipay/platform.pem",
                 "admin_url": "http://127.0.0.1:8102/simulator/admin/", "data_dir": "instance/simulators/alipay"}
ALIPAY_SETTINGS = {"ALIPAY_GATEWAY_URL", "ALIPAY_APP_PRIVATE_KEY_FILE", "ALIPAY_PUBLIC_KEY_FILE", "ALIPAY_NOTIFY_URL",
                   "ALIPAY_SIMULATED"}
DECLARED = {"wechatpay": WECHATPAY_SETTINGS, "alipay": ALIPAY_SETTINGS}


def test_a_simulators_config_fills_the_settings_its_adapter_declares(run_demo):
    assert run_demo.settings_from_config("wechatpay", WECHATPAY_CONFIG, WECHATPAY_SETTINGS) == {
        "WECHATPAY_SIMULATED": "1",
        "WECHATPAY_BASE_URL": "http://127.0.0.1:8101",
        "WECHATPAY_OAUTH_BASE_URL": "http://127.0.0.1:8101",
        "WECHATPAY_CERT_SERIAL": "5F1C",
        "WECHATPAY_APIV3_KEY": "k" * 32,
        "WECHATPAY_PRIVATE_KEY_FILE": "instance/simulators/wechatpay/merchant.pem",
        "WECHATPAY_PUBLIC_KEY_FILE": "instance/simulators/wechatpay/platform.pem",
        "WECHATPAY_PUBLIC_KEY_ID": "PUB_KEY_ID_17",
    }  # the admin page and the signing mode are for people: no setting reads them


def test_a_key_files_path_fills_its_file_setting_and_the_rails_name_is_not_doubled(run_demo):
    assert run_demo.settings_from_config("alipay", ALIPAY_CONFIG, ALIPAY_SETTINGS) == {
        "ALIPAY_SIMULATED": "1",
        "ALIPAY_GATEWAY_URL": "http://127.0.0.1:8102/gateway.do",
        "ALIPAY_APP_PRIVATE_KEY_FILE": "instance/simulators/alipay/app.pem",
        "ALIPAY_PUBLIC_KEY_FILE": "instance/simulators/alipay/platform.pem",
    }


def test_every_setting_a_value_goes_to_is_named_after_the_rail(run_demo):
    assert run_demo.setting_names("wechatpay", "base_url") == ["WECHATPAY_BASE_URL", "WECHATPAY_OAUTH_BASE_URL"]
    assert run_demo.setting_names("alipay", "seller_id") == ["ALIPAY_SELLER_ID"]
    assert run_demo.setting_names("alipay", "alipay_public_key_path") == ["ALIPAY_PUBLIC_KEY_FILE"]


def test_the_installed_card_sandbox_declares_no_setting_of_a_rail(run_demo):
    assert not {name for name in run_demo.declared_settings("sandbox") if name.startswith(("WECHATPAY_", "ALIPAY_"))}


@pytest.mark.parametrize(("env", "expected"), [
    ({}, ["wechatpay", "alipay", "sandbox"]),
    ({"PAYMENT_GATEWAYS": "sandbox"}, ["sandbox"]),
    ({"PAYMENT_GATEWAYS": " alipay , sandbox ,"}, ["alipay", "sandbox"]),
    ({"PAYMENT_GATEWAY": "stripe"}, ["stripe"]),
])
def test_the_demo_offers_the_rails_and_the_card_sandbox_unless_told_otherwise(run_demo, env, expected):
    assert run_demo.requested_gateways(env) == expected


@pytest.fixture
def rails(run_demo, monkeypatch):
    """Pretend both rails' adapters are installed, and record the simulators the script starts (none really)."""
    started = []
    simulators = {}

    def installed(group, name):
        if group == "finepay.simulators":
            return name in simulators
        return name in ("wechatpay", "alipay", "sandbox", "stripe")

    def start_simulator(name, port, _env):
        started.append((name, port))
        outcome = simulators[name]
        if isinstance(outcome, Exception):
            raise outcome
        return f"process of {name}", outcome

    monkeypatch.setattr(run_demo, "installed", installed)
    monkeypatch.setattr(run_demo, "declared_settings", DECLARED.get)
    monkeypatch.setattr(run_demo, "moves_no_money", lambda name: name == "sandbox")
    monkeypatch.setattr(run_demo, "start_simulator", start_simulator)
    return simulators, started


def test_the_default_demo_runs_both_rails_beside_the_card_sandbox(run_demo, rails):
    simulators, started = rails
    simulators.update(wechatpay=WECHATPAY_CONFIG, alipay=ALIPAY_CONFIG)
    children = []

    env = run_demo.prepare({"HOME": "/home/demo", "PAYMENT_GATEWAY": ""}, children)

    assert started == [("wechatpay", 8101), ("alipay", 8102)]
    assert children == ["process of wechatpay", "process of alipay"]
    assert env["PAYMENT_GATEWAYS"] == "wechatpay,alipay,sandbox"
    assert env["WECHATPAY_SIMULATED"] == env["ALIPAY_SIMULATED"] == "1"
    assert env["ALIPAY_GATEWAY_URL"] == ALIPAY_CONFIG["gateway_url"] and env["HOME"] == "/home/demo"
    assert env["WECHATPAY_CERT_SERIAL"] == "5F1C"
    assert env["PUBLIC_BASE_URL"] == "http://127.0.0.1:8000"  # where the rails send their notifications
    assert "PAYMENT_GATEWAY" not in env  # the list says it all


def test_sandbox_alone_starts_no_simulator(run_demo, rails):
    simulators, started = rails
    simulators.update(wechatpay=WECHATPAY_CONFIG, alipay=ALIPAY_CONFIG)

    env = run_demo.prepare({"PAYMENT_GATEWAYS": "sandbox", "PUBLIC_BASE_URL": "https://fines.example"}, [])

    assert started == [] and env["PAYMENT_GATEWAYS"] == "sandbox" and "WECHATPAY_SIMULATED" not in env
    assert env["PUBLIC_BASE_URL"] == "https://fines.example"


def test_a_rail_whose_simulator_is_missing_or_fails_is_left_out_with_a_message(run_demo, rails, capsys):
    simulators, started = rails
    simulators.update(alipay=run_demo.SimulatorUnavailable("its --print-config did not print JSON"))
    children = []

    env = run_demo.prepare({}, children)

    out = capsys.readouterr().out
    assert env["PAYMENT_GATEWAYS"] == "sandbox" and children == []
    assert started == [("alipay", 8101)]
    assert "wechatpay: needs a real account and has no local simulator; the demo runs without it." in out
    assert "alipay: its simulator did not start (its --print-config did not print JSON)" in out


def test_a_rail_that_is_not_installed_falls_back_to_the_card_sandbox(run_demo, capsys):
    env = run_demo.prepare({"PAYMENT_GATEWAYS": "no-such-rail"}, [])

    out = capsys.readouterr().out
    assert env["PAYMENT_GATEWAYS"] == "sandbox"
    assert "no-such-rail: this payment method is not installed here" in out
    assert "the demo offers the card sandbox (sandbox)" in out


FAKE_SIMULATOR = textwrap.dedent("""
    import json, socket, sys
    port = int(sys.argv[sys.argv.index("--port") + 1])
    if "--print-config" in sys.argv:
        print("starting up...")
        print(json.dumps({"base_url": f"http://127.0.0.1:{port}", "data_dir": sys.argv[sys.argv.index("--data-dir") + 1]}))
        sys.exit(0)
    server = socket.create_server(("127.0.0.1", port))
    while True:
        server.accept()[0].close()
""")


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def fake_simulator(run_demo, monkeypatch, tmp_path):
    """``flask simulate NAME`` replaced by a small program that prints a config, or listens, as asked."""
    program = tmp_path / "simulator.py"
    program.write_text(FAKE_SIMULATOR)

    def command(name, port, *extra):
        return [sys.executable, str(program), name, "--port", str(port), "--data-dir", f"data/{name}", *extra]

    monkeypatch.setattr(run_demo, "simulator_command", command)
    return program


def test_a_simulator_is_started_once_it_has_printed_its_config_and_listens(run_demo, fake_simulator):
    port = free_port()

    process, config = run_demo.start_simulator("wechatpay", port, {})
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=5):
            pass
        assert config == {"base_url": f"http://127.0.0.1:{port}", "data_dir": "data/wechatpay"}
    finally:
        run_demo.stop(process)
    assert process.poll() is not None


def test_a_simulator_that_prints_no_json_is_refused_with_the_reason(run_demo, fake_simulator):
    fake_simulator.write_text("print('starting up...')")

    with pytest.raises(run_demo.SimulatorUnavailable, match="did not print JSON"):
        run_demo.start_simulator("alipay", free_port(), {})


def test_a_simulator_runs_its_own_app_on_the_card_sandbox(run_demo):
    env = run_demo.simulator_env({"PAYMENT_GATEWAY": "stripe", "PAYMENT_GATEWAYS": "wechatpay,alipay", "HOME": "/h"})

    assert env == {"PAYMENT_GATEWAYS": "sandbox", "HOME": "/h"}


def test_stop_ends_a_child_that_ignores_the_polite_request(run_demo, monkeypatch):
    monkeypatch.setattr(run_demo, "STOP_SECONDS", 0.5)
    child = subprocess.Popen([sys.executable, "-c",
                              "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
                              "print('ready', flush=True); time.sleep(60)"], stdout=subprocess.PIPE, text=True)
    assert child.stdout.readline().strip() == "ready"

    run_demo.stop(child)

    child.stdout.close()
    assert child.returncode == -signal.SIGKILL


def test_make_run_lists_the_demo_vehicles_with_their_proofs_before_serving(run_demo, monkeypatch, capsys):
    seed_output = "Demo data: 11 new, 0 refreshed.\n  蒙B·12345  VIN code A12345: payable online\n"
    calls = []

    class Server:
        def wait(self):
            return 0

    def run(command, **kwargs):
        calls.append(command[-2:])
        return subprocess.CompletedProcess(command, 0, stdout=seed_output)

    monkeypatch.setattr(run_demo.subprocess, "call", lambda command, **kwargs: calls.append(command[-2:]) or 0)
    monkeypatch.setattr(run_demo.subprocess, "run", run)
    monkeypatch.setattr(run_demo.subprocess, "Popen", lambda command, **kwargs: Server())
    monkeypatch.setattr(run_demo.signal, "signal", lambda *args: None)

    assert run_demo.serve({"PAYMENT_GATEWAYS": "sandbox"}, []) == 0

    assert calls == [["db", "upgrade"], ["demo", "seed"]]
    printed = capsys.readouterr().out
    assert printed.index("蒙B·12345  VIN code A12345") < printed.index("FinePay is starting")
