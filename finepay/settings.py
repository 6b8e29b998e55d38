"""Settings read from the environment, once, when the app is created.

The base's own are in from_env; a gateway adapter declares its own (``Setting``), which the gateway
registry reads for the configured adapter with ``read_settings``.
"""
import os
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

DEV_SECRET_KEY = "dev-only-not-secret"


class SettingsError(RuntimeError):
    """A setting is missing or has a value the service cannot run with."""


def env_str(env, name, default):
    """The setting as text, ``default`` when unset."""
    return env.get(name, default)


def env_int(env, name, default):
    """The setting as an integer, ``default`` when unset or empty."""
    raw = env.get(name)
    if raw in (None, ""):
        return default
    try:
        return int(raw)
    except ValueError:
        raise SettingsError(f"{name} must be an integer, got {raw!r}") from None


def env_decimal(env, name, default):
    """The setting as a Decimal, ``Decimal(default)`` when unset or empty."""
    raw = env.get(name)
    if raw in (None, ""):
        return Decimal(default)
    try:
        return Decimal(raw)
    except InvalidOperation:
        raise SettingsError(f"{name} must be a decimal number, got {raw!r}") from None


def env_bool(env, name, default):
    """The setting as true or false (1/0, true/false, yes/no, on/off), ``default`` when unset or empty."""
    raw = env.get(name)
    if raw in (None, ""):
        return default
    if raw.lower() in ("1", "true", "yes", "on"):
        return True
    if raw.lower() in ("0", "false", "no", "off"):
        return False
    raise SettingsError(f"{name} must be true or false, got {raw!r}")


def env_region_codes(env, name, default):
    """The setting as a tuple of 6-digit region codes ("150200,150100"), ``default`` when unset."""
    raw = env.get(name, default)
    codes = tuple(part.strip() for part in raw.split(",") if part.strip())
    for code in codes:
        if len(code) != 6 or not code.isascii() or not code.isdigit() or code[0] == "0":
            raise SettingsError(f"{name} must list 6-digit region codes such as 150200, got {code!r}")
    return codes


@dataclass(frozen=True)
class Setting:
    """A setting a gateway adapter reads from the environment: its name, default and parser (one of env_*)."""

    name: str
    default: object = ""
    parse: Callable = env_str
    #: A credential: its value is masked in every log line (finepay.observability.add_secret_setting).
    secret: bool = False

    def read(self, env=None):
        """The setting's value in ``env`` (the process environment by default)."""
        return self.parse(os.environ if env is None else env, self.name, self.default)


def read_settings(config, declared, env=None):
    """Put each declared setting, read from the environment, into ``config`` unless it is there already.

    A value already in the config (given to create_app as test_config) wins, as it does for the base's own;
    a malformed value in the environment is an error all the same, as it is for the base's own.
    """
    for setting in declared:
        config.setdefault(setting.name, setting.read(env))


# Whose service this is, as a development copy shows it: a demo authority with invented registration numbers.
# Production has no default name: a deployment must say whose service it is (check_production).
DEMO_AUTHORITY = {
    "AUTHORITY_NAME": "包头市公安局交通管理支队",
    "AUTHORITY_EMBLEM": "img/emblem-demo.svg",
    "SERVICE_HOTLINE": "12122",
    "ICP_RECORD": "蒙ICP备00000000号-1",
    "PSB_RECORD": "蒙公网安备15020000000000号",
    "SERVICE_HALL_ADDRESS": "包头市昆都仑区钢铁大街00号 交通管理支队车驾管服务大厅",
    "SERVICE_HALL_HOURS": "周一至周五 9:00–17:00",
}


# The demo authority's region (包头市), whose finance bureau's payment codes the demo violations carry.
DEMO_PAYMENT_CODE_REGIONS = "150200"


def authority_settings(env, finepay_env):
    """The collecting authority's identity shown on every page and receipt: the demo's in development, else none."""
    return {
        name: env_str(env, name, default if finepay_env == "development" else "").strip()
        for name, default in DEMO_AUTHORITY.items()
    }


def from_env(instance_path, env=None):
    """Build the Flask config mapping from environment variables."""
    env = os.environ if env is None else env
    finepay_env = env.get("FINEPAY_ENV", "development")
    if finepay_env not in ("development", "production"):
        raise SettingsError("FINEPAY_ENV must be 'development' or 'production'")
    database_url = env.get("DATABASE_URL") or (
        "sqlite:///" + os.path.join(instance_path, "finepay.sqlite")
    )
    if database_url.startswith("postgresql://"):
        # psycopg 3 is the driver we ship; the bare scheme would pick psycopg2.
        database_url = "postgresql+psycopg://" + database_url[len("postgresql://"):]
    return {
        "FINEPAY_ENV": finepay_env,
        "SECRET_KEY": env.get("SECRET_KEY", DEV_SECRET_KEY),
        "SQLALCHEMY_DATABASE_URI": database_url,
        # No ping on every checkout (a round trip per request): finepay.database pings only a
        # connection idle for DATABASE_IDLE_PING_SECONDS; pool_recycle retires old ones.
        # hide_parameters: a database error's message (logged) never carries a plate or VIN code.
        "SQLALCHEMY_ENGINE_OPTIONS": {
            "pool_recycle": env_int(env, "DATABASE_POOL_RECYCLE_SECONDS", 1800),
            "hide_parameters": True,
        },
        "DATABASE_IDLE_PING_SECONDS": env_int(env, "DATABASE_IDLE_PING_SECONDS", 10),
        # SQLite only: how long a transaction waits for another worker's write lock before failing (503).
        "SQLITE_BUSY_TIMEOUT_SECONDS": env_int(env, "SQLITE_BUSY_TIMEOUT_SECONDS", 30),
        # The gateway adapters that run, in the order the driver is offered them ("wechatpay,alipay,sandbox");
        # PAYMENT_GATEWAY, the older setting, names one (payments.gateways.gateway_names).
        "PAYMENT_GATEWAYS": env.get("PAYMENT_GATEWAYS", ""),
        "PAYMENT_GATEWAY": env.get("PAYMENT_GATEWAY", "sandbox"),
        # Only for a staging copy: production otherwise refuses a gateway that moves no money (check_sandbox).
        "ALLOW_SANDBOX_IN_PRODUCTION": env_bool(env, "ALLOW_SANDBOX_IN_PRODUCTION", False),
        "QUOTE_TTL_MINUTES": env_int(env, "QUOTE_TTL_MINUTES", 30),
        "PUBLIC_BASE_URL": env.get("PUBLIC_BASE_URL", ""),
        # How many reverse proxies (nginx, a load balancer) stand in front and set X-Forwarded-For/-Proto.
        "PROXY_COUNT": env_int(env, "PROXY_COUNT", 0),
        # Kiosks: seconds without a touch before "still there?", and how long a terminal credential lasts.
        "KIOSK_IDLE_SECONDS": env_int(env, "KIOSK_IDLE_SECONDS", 90),
        "KIOSK_CREDENTIAL_DAYS": env_int(env, "KIOSK_CREDENTIAL_DAYS", 365),
        "CONVENIENCE_FEE_BPS": env_int(env, "CONVENIENCE_FEE_BPS", 0),
        # Staff console: idle and absolute session limits, lockout after failed sign-ins, the largest CSV upload.
        "STAFF_SESSION_MINUTES": env_int(env, "STAFF_SESSION_MINUTES", 30),
        "STAFF_SESSION_MAX_HOURS": env_int(env, "STAFF_SESSION_MAX_HOURS", 12),
        "STAFF_LOCKOUT_ATTEMPTS": env_int(env, "STAFF_LOCKOUT_ATTEMPTS", 5),
        "STAFF_LOCKOUT_MINUTES": env_int(env, "STAFF_LOCKOUT_MINUTES", 15),
        "STAFF_IMPORT_MAX_BYTES": env_int(env, "STAFF_IMPORT_MAX_BYTES", 20 * 1024 * 1024),
        # Cases (cases/): where evidence files are kept (outside the database, never served publicly),
        # how large one photo or the one video may be, and the furthest a deferral may move a due date.
        "EVIDENCE_DIR": env.get("EVIDENCE_DIR") or os.path.join(instance_path, "evidence"),
        "EVIDENCE_PHOTO_MAX_BYTES": env_int(env, "EVIDENCE_PHOTO_MAX_BYTES", 5 * 1024 * 1024),
        "EVIDENCE_VIDEO_MAX_BYTES": env_int(env, "EVIDENCE_VIDEO_MAX_BYTES", 20 * 1024 * 1024),
        "DEFERRAL_MAX_DAYS": env_int(env, "DEFERRAL_MAX_DAYS", 180),
        "CURRENCY": env.get("CURRENCY", "CNY").upper(),
        # The regions whose finance bureaus' payment codes (缴款码) this deployment takes: 6-digit division
        # codes, comma-separated; a city's (150200) covers its districts. The demo's is 包头市 in development.
        "PAYMENT_CODE_REGIONS": env_region_codes(
            env, "PAYMENT_CODE_REGIONS", DEMO_PAYMENT_CODE_REGIONS if finepay_env == "development" else ""),
        "BUSINESS_TIMEZONE": env.get("BUSINESS_TIMEZONE", "Asia/Shanghai"),
        "LATE_FEE_POLICY": env.get("LATE_FEE_POLICY", "prc"),
        "LATE_FEE_GRACE_DAYS": env_int(env, "LATE_FEE_GRACE_DAYS", 15),
        "LATE_FEE_DAILY_RATE": env_decimal(env, "LATE_FEE_DAILY_RATE", "0.03"),
        "LATE_FEE_CAP_RATIO": env_decimal(env, "LATE_FEE_CAP_RATIO", "1"),
        "LOOKUP_RATE_LIMIT": env.get("LOOKUP_RATE_LIMIT", "20/minute"),
        "PLATE_FAILURE_RATE_LIMIT": env.get("PLATE_FAILURE_RATE_LIMIT", "10/hour"),
        # Proof-of-work once a failure budget is spent (finepay/challenge.py): PBKDF2 iterations per try
        # (about 256 tries on average), and how long a challenge may take to be solved and used.
        "CHALLENGE_COST": env_int(env, "CHALLENGE_COST", 5000),
        "CHALLENGE_TTL_SECONDS": env_int(env, "CHALLENGE_TTL_SECONDS", 600),
        "RATELIMIT_STORAGE_URI": env.get("RATELIMIT_STORAGE_URI", "memory://"),
        # X-RateLimit-* headers cost one more Redis round trip per limit on every lookup;
        # a refused request still says when to retry (Retry-After, finepay.errors).
        "RATELIMIT_HEADERS_ENABLED": False,
        # When Redis is unreachable, count in each worker's memory instead (same limits, per worker)
        # and never fail a request over it; Flask-Limiter re-checks Redis with backoff and returns to it.
        "RATELIMIT_IN_MEMORY_FALLBACK_ENABLED": env_bool(env, "RATELIMIT_IN_MEMORY_FALLBACK_ENABLED", True),
        "RATELIMIT_SWALLOW_ERRORS": True,
        # A Redis that stops answering must not hold a lookup for long.
        "RATELIMIT_STORAGE_OPTIONS": {"socket_connect_timeout": 0.5, "socket_timeout": 0.5},
        "DEFAULT_LOCALE": env.get("DEFAULT_LOCALE", "zh_CN"),
        "MAX_CONTENT_LENGTH": env_int(env, "MAX_CONTENT_LENGTH", 1024 * 1024),
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "SESSION_COOKIE_SECURE": finepay_env == "production",
        "REMEMBER_COOKIE_HTTPONLY": True,
        "REMEMBER_COOKIE_SAMESITE": "Lax",
        "REMEMBER_COOKIE_SECURE": finepay_env == "production",
        # Observability and hardening (finepay/observability.py, finepay/security.py).
        "LOG_LEVEL": env.get("LOG_LEVEL", "INFO").upper(),
        "LOG_FORMAT": env.get("LOG_FORMAT", "json"),
        "METRICS_TOKEN": env.get("METRICS_TOKEN", ""),
        "HSTS_MAX_AGE": env_int(env, "HSTS_MAX_AGE", 63072000),
        "MAX_FORM_MEMORY_SIZE": env_int(env, "MAX_FORM_MEMORY_SIZE", 512 * 1024),
        "MAX_FORM_PARTS": env_int(env, "MAX_FORM_PARTS", 1000),
        **authority_settings(env, finepay_env),
    }


def uses_builtin_secret_key(env=None):
    """Whether the app would run in development with DEV_SECRET_KEY: fit for this machine only."""
    env = os.environ if env is None else env
    return env.get("FINEPAY_ENV", "development") == "development" and env.get("SECRET_KEY", DEV_SECRET_KEY) in (
        DEV_SECRET_KEY, "")


def check_sandbox(config, simulated):
    """Refuse production with a simulated gateway (it marks fines paid while no money moves) unless allowed.

    ``simulated`` names the configured gateways that move no money;
    ``config["SANDBOX"]`` is set from them when the app starts
    (payments.gateways.init_app), and every page, receipt, feed entry and log
    line then says SANDBOX.
    """
    if config["FINEPAY_ENV"] == "production" and simulated and not config["ALLOW_SANDBOX_IN_PRODUCTION"]:
        raise SettingsError(
            f"FINEPAY_ENV=production with PAYMENT_GATEWAYS including {','.join(simulated)}, which moves no money: "
            "configure only real gateways in PAYMENT_GATEWAYS (e.g. stripe, with its keys), or "
            "ALLOW_SANDBOX_IN_PRODUCTION=1 for a staging copy that says SANDBOX everywhere"
        )


def check_production(config):
    """Refuse to run production with settings that are only safe on a laptop."""
    if config["FINEPAY_ENV"] != "production":
        return
    key = config.get("SECRET_KEY") or ""
    if key == DEV_SECRET_KEY or len(key) < 32:
        raise SettingsError(
            "FINEPAY_ENV=production needs SECRET_KEY set to a random value of at "
            "least 32 characters, e.g. python -c 'import secrets; print(secrets.token_hex(32))'"
        )
    if not (config.get("AUTHORITY_NAME") or "").strip():
        raise SettingsError(
            "FINEPAY_ENV=production needs AUTHORITY_NAME: the collecting authority that drivers pay "
            "(e.g. 包头市公安局交通管理支队), shown on every page and named as payee on every receipt"
        )
