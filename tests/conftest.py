"""Shared fixtures: an app on SQLite and on PostgreSQL, its client and CLI runner."""
import os
import shutil
import uuid
from contextlib import contextmanager
from pathlib import Path

import pytest
import sqlalchemy as sa
from flask_babel import force_locale, gettext, ngettext
from flask_migrate import upgrade

from finepay.app import create_app
from finepay.extensions import db

POSTGRES_URL = (
    os.environ["DATABASE_URL"]
    if os.environ.get("DATABASE_URL", "").startswith("postgresql")
    else os.environ.get("TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
).replace("postgresql://", "postgresql+psycopg://", 1)
REQUIRE_POSTGRES = os.environ.get("REQUIRE_POSTGRES") == "1"
# CI (.ci/run) sets this: a test that needs Redis and finds neither a Redis server nor redis-server
# to start one fails instead of skipping.
REQUIRE_REDIS = os.environ.get("REQUIRE_REDIS") == "1"

BASE_CONFIG = {
    "TESTING": True,
    "SECRET_KEY": "test-secret",
    "WTF_CSRF_ENABLED": False,
    "RATELIMIT_STORAGE_URI": "memory://",
    # The sandbox alone, whatever the environment says; a test names others with PAYMENT_GATEWAYS (or PAYMENT_GATEWAY).
    "PAYMENT_GATEWAYS": "",
    "PAYMENT_GATEWAY": "sandbox",
    "BUSINESS_TIMEZONE": "Asia/Shanghai",
    "CURRENCY": "CNY",
    # Most assertions are in English; tests marked in_both_languages run the user-facing flows in zh_CN
    # (the production default) too, and tests/finepay/test_i18n.py checks whole pages in Chinese.
    "DEFAULT_LOCALE": "en",
    # Proof-of-work challenges as cheap as they go, so that tests solving them stay fast.
    "CHALLENGE_COST": 1,
}


def compile_catalogs():
    """Build translations/*/LC_MESSAGES/messages.mo when missing or older than the .po (make does it too).

    The .mo files are not committed; this lets plain `pytest` run on a fresh clone.
    """
    from babel.messages.mofile import write_mo
    from babel.messages.pofile import read_po

    for po in (Path(__file__).resolve().parents[1] / "translations").glob("*/LC_MESSAGES/messages.po"):
        mo = po.with_suffix(".mo")
        if not mo.exists() or mo.stat().st_mtime < po.stat().st_mtime:
            with open(po, "rb") as source:
                catalog = read_po(source, locale=po.parts[-3])
            with open(mo, "wb") as target:
                write_mo(target, catalog)


compile_catalogs()


def did_not_run(message, *, required):
    """A test whose service or tool is missing: skipped loudly, or failed when CI requires it (REQUIRE_...=1)."""
    if required:
        pytest.fail(message)
    pytest.skip(message)


def redis_missing(message):
    """Skip a test that needs Redis, loudly; under REQUIRE_REDIS=1 fail it instead."""
    message = f"{message}; the test DID NOT RUN"
    did_not_run(message + " (REQUIRE_REDIS=1)" if REQUIRE_REDIS else message, required=REQUIRE_REDIS)


def make_app(database_url, **overrides):
    """An app on the given database with test settings."""
    return create_app({**BASE_CONFIG, "SQLALCHEMY_DATABASE_URI": database_url, **overrides})


# The languages a visitor can have: zh_CN is the production default.
LOCALES = ("zh_CN", "en")



def both_languages(**settings):
    """Run a test once in each language, with these settings too.

    The app's DEFAULT_LOCALE is set through the app_config fixture, so every
    request the test makes (sending no Accept-Language) gets that language.
    Expected text comes from the catalogue through translated(), never
    written out in one language.
    """
    return pytest.mark.parametrize(
        "app_config", [{**settings, "DEFAULT_LOCALE": code} for code in LOCALES], ids=LOCALES,
    )


in_both_languages = both_languages()


@contextmanager
def in_app_language(app):
    """A request context in the app's DEFAULT_LOCALE: for working out what its pages say (text, money)."""
    with app.test_request_context(), force_locale(app.config["DEFAULT_LOCALE"]):
        yield


def translated(app, message, **variables):
    """``message`` as the app's pages show it in its DEFAULT_LOCALE (the compiled catalogue's text)."""
    with in_app_language(app):
        return gettext(message, **variables)


def translated_plural(app, singular, plural, num, **variables):
    """The catalogue's plural message for ``num``, as the app's pages show it in its DEFAULT_LOCALE."""
    with in_app_language(app):
        return ngettext(singular, plural, num, **variables)


def migrate(database_url):
    """Build the schema the way production does: through the Alembic migrations."""
    app = make_app(database_url)
    with app.app_context():
        upgrade()
        db.engine.dispose()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory):
    """A migrated SQLite file; each test gets a copy."""
    path = tmp_path_factory.mktemp("sqlite") / "template.sqlite"
    migrate(f"sqlite:///{path}")
    return path


@pytest.fixture(scope="session")
def postgres_url():
    """A fresh, migrated schema in the test PostgreSQL database, dropped at the end."""
    engine = sa.create_engine(POSTGRES_URL, connect_args={"connect_timeout": 3})
    try:
        with engine.connect():
            pass
    except sa.exc.OperationalError as exc:
        engine.dispose()
        message = f"PostgreSQL at {POSTGRES_URL} is not reachable ({exc.orig}); the PostgreSQL half of the suite DID NOT RUN"
        did_not_run(message, required=REQUIRE_POSTGRES)
    schema = f"finepay_test_{uuid.uuid4().hex[:10]}"
    with engine.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    sep = "&" if "?" in POSTGRES_URL else "?"
    url = f"{POSTGRES_URL}{sep}options=-csearch_path%3D{schema}"
    migrate(url)
    yield url
    with engine.begin() as conn:
        conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
    engine.dispose()


def _empty_postgres(url):
    """Empty every table and restart every sequence, as TRUNCATE ... RESTART IDENTITY would.

    DELETE, because the tables a test leaves are nearly empty: TRUNCATE of some
    forty tables took 120 ms a test (it rewrites each table's files), DELETE and
    setval in one round trip take 6 ms.
    """
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        # replica mode skips the audit log's append-only triggers and the foreign keys, for test cleanup only.
        conn.execute(sa.text("SET LOCAL session_replication_role = replica"))
        sequences = conn.execute(sa.text(
            "SELECT sequence_name FROM information_schema.sequences WHERE sequence_schema = current_schema()"
        )).scalars().all()
        conn.execute(sa.text(" ".join(
            [f'DELETE FROM "{table.name}";' for table in db.metadata.sorted_tables]
            + [f"SELECT setval('\"{name}\"', 1, false);" for name in sequences])))
    engine.dispose()


def fresh_database(request, tmp_path, kind):
    """A migrated, empty database of this kind ("sqlite" or "postgresql") for one test; returns its URL."""
    if kind == "sqlite":
        path = tmp_path / "test.sqlite"
        shutil.copy(request.getfixturevalue("sqlite_template"), path)
        return f"sqlite:///{path}"
    url = request.getfixturevalue("postgres_url")
    _empty_postgres(url)
    return url


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request, tmp_path):
    """Each integration test runs once on SQLite and once on PostgreSQL."""
    return fresh_database(request, tmp_path, request.param)


@pytest.fixture
def app_config():
    """Per-test setting overrides; override this fixture in a test module to change them."""
    return {}


@pytest.fixture
def app(database_url, app_config):
    """The app under test, with a pushed app context."""
    app = make_app(database_url, **app_config)
    with app.app_context():
        yield app
        db.session.remove()
        db.engine.dispose()


@pytest.fixture
def client(app):
    """A test client for the app."""
    return app.test_client()


@pytest.fixture
def runner(app):
    """A CLI runner for the app's commands."""
    return app.test_cli_runner()


# Playwright cannot download its own browsers here: every browser test (tests/browser/ and the rails' pages under
# tests/payments/gateways/) drives Debian's Chromium, one per session, since Playwright's sync API allows only one
# running instance per thread.
CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
REQUIRE_BROWSER = os.environ.get("REQUIRE_BROWSER") == "1"


@pytest.fixture(scope="session")
def browser():
    """One headless Chromium for the whole session."""
    if not os.path.exists(CHROMIUM):
        message = (
            f"Chromium not found at {CHROMIUM}: the browser tests DID NOT RUN "
            "(install Debian's chromium, e.g. `make browser`)"
        )
        did_not_run(message, required=REQUIRE_BROWSER)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()
