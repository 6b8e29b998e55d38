"""The repository documents itself: every setting is in docs/settings.md, and no document points outside."""
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SOURCES = ["finepay", "violations", "payments", "cases", "kiosk", "staff"]
# How settings are read: settings.py's helpers and env.get, os.environ anywhere (gunicorn.conf.py included),
# and the Setting declarations of the gateway adapters.
# A request's WSGI environ (request.environ) is not the process environment: its keys are no settings.
READS = re.compile(r'(?:\(env, |env\.get\(|(?<!request\.)environ\.get\(|(?<!request\.)environ\[|\bSetting\()"([A-Z][A-Z0-9_]+)"')
LINK = re.compile(r"\]\(([^)#\s]+)")


def settings_read():
    files = [ROOT / "gunicorn.conf.py", *(p for name in SOURCES for p in (ROOT / name).rglob("*.py"))]
    return {name for path in files for name in READS.findall(path.read_text(encoding="utf-8"))}


def test_every_setting_read_from_the_environment_is_documented():
    documented = set(re.findall(r"`([A-Z][A-Z0-9_]+)`", (ROOT / "docs" / "settings.md").read_text(encoding="utf-8")))

    assert settings_read() - documented == set()


def test_the_scanner_finds_an_adapters_declared_settings():
    assert {"STRIPE_API_KEY", "STRIPE_LIST_CREATED_FILTER"} <= settings_read()


def test_the_readme_and_docs_link_only_to_files_in_the_repository():
    for document in [ROOT / "README.md", *(ROOT / "docs").glob("*.md")]:
        text = document.read_text(encoding="utf-8")
        assert "../shared" not in text and "SPEC.md" not in text, document.name
        for target in LINK.findall(text):
            if target.startswith(("http://", "https://")):
                continue
            linked = (document.parent / target).resolve()
            assert linked.is_relative_to(ROOT) and linked.exists(), f"{document.name} links to {target}"
