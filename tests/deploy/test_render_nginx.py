"""deploy/render_nginx.py: fills FinePay's placeholders from the environment, never nginx's own variables."""
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
RENDER = ROOT / "deploy" / "render_nginx.py"
TEMPLATE = ROOT / "deploy" / "nginx-finepay.conf.template"


def render(env):
    """Run the renderer on the shipped template with only env set."""
    return subprocess.run([sys.executable, str(RENDER), str(TEMPLATE)], env=env, capture_output=True, text=True,
                          timeout=30)


def placeholders():
    """The ${FINEPAY_...} names the shipped template uses."""
    return sorted(set(re.findall(r"\$\{(FINEPAY_[A-Z0-9_]+)\}", TEMPLATE.read_text())))


def test_every_placeholder_is_filled_and_nginx_variables_are_kept():
    names = placeholders()
    result = render({name: f"<{name}>" for name in names})
    assert result.returncode == 0, result.stderr
    assert not re.search(r"\$\{FINEPAY_[A-Z0-9_]+\}", result.stdout)
    assert all(f"<{name}>" in result.stdout for name in names)
    assert "$proxy_add_x_forwarded_for" in result.stdout and "$request_id" in result.stdout


def test_a_missing_value_renders_nothing_and_names_it():
    names = placeholders()
    env = {name: "x" for name in names if name != "FINEPAY_TLS_KEY"}
    result = render({**env, "FINEPAY_APP_SERVERS": ""})
    assert result.returncode == 2
    assert result.stdout == ""
    assert "FINEPAY_APP_SERVERS, FINEPAY_TLS_KEY" in result.stderr
