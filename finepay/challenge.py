"""Self-hosted proof-of-work challenges (ALTCHA v2, PBKDF2/SHA-256): guessing made expensive, nobody locked out.

Where a budget of failures is spent (a plate's failed lookups, a staff account's
or address's failed sign-ins) FinePay asks for work instead of refusing: the
client must find a counter whose PBKDF2 key starts with ``00`` (about 256 tries
of CHALLENGE_COST iterations each), which takes a browser a second or two and
makes each further guess cost the guesser the same. The browser solves it with
static/js/challenge.js (Web Crypto, served by FinePay itself); API clients with
any ALTCHA v2 solver.

A challenge is signed with a key derived from SECRET_KEY, expires after
CHALLENGE_TTL_SECONDS, names the one subject it is for (a plate, a staff
username: hashed, never in clear), and is accepted once: its signature is
recorded in the rate-limit storage (Redis in production, so every worker and
node agrees) until it would have expired anyway.
"""
import hashlib
import hmac
import logging
from datetime import timedelta

import altcha
from flask import current_app

from finepay.dbtypes import utcnow
from finepay.errors import ApiError
from finepay.extensions import limiter

log = logging.getLogger(__name__)

ALGORITHM = "PBKDF2/SHA-256"
KEY_PREFIX = "00"  # one byte: 256 tries on average
MAX_PAYLOAD = 4096  # a genuine payload is about 700 characters
USED_PREFIX = "finepay-altcha-used/"


class ChallengeRequired(ApiError):
    """A budget is spent: solve ``challenge`` and send the solution (field ``altcha``) with the request again."""

    status = 429

    def __init__(self, challenge, message):
        super().__init__(message, code="challenge_required", status=429)
        self.challenge = challenge
        self.extra = {"challenge": challenge}


def _secret():
    return hmac.new(current_app.config["SECRET_KEY"].encode(), b"finepay.altcha", hashlib.sha256).hexdigest()


def subject_key(kind, value):
    """How a challenge names what it is for: a kind and a keyed digest, so no plate or username travels in clear."""
    digest = hmac.new(current_app.config["SECRET_KEY"].encode(), f"{kind}:{value}".encode(), hashlib.sha256)
    return f"{kind}:{digest.hexdigest()[:32]}"


def issue(subject):
    """A fresh signed challenge for ``subject``, as the JSON object sent to the client."""
    config = current_app.config
    challenge = altcha.create_challenge(
        algorithm=ALGORITHM,
        cost=config["CHALLENGE_COST"],
        key_prefix=KEY_PREFIX,
        expires_at=utcnow() + timedelta(seconds=config["CHALLENGE_TTL_SECONDS"]),
        data={"subject": subject},
        hmac_secret=_secret(),
    )
    return challenge.to_dict()


def require(subject, message):
    """The ChallengeRequired error (with a fresh challenge for ``subject``) to raise; ``message`` says why."""
    return ChallengeRequired(issue(subject), message)


def _verified_signature(payload, subject):
    """The challenge's signature when ``payload`` solves a challenge we issued for ``subject``; else None."""
    if not isinstance(payload, str) or not payload or len(payload) > MAX_PAYLOAD:
        return None
    try:
        parsed = altcha.Payload.from_base64(payload)
        result = altcha.verify_solution(parsed, _secret())
        data = parsed.challenge.parameters.data
    except Exception:  # noqa: BLE001 - hostile input of any shape is simply "not solved"
        return None
    if not result.verified or not isinstance(data, dict) or not hmac.compare_digest(
            str(data.get("subject", "")), subject):
        return None
    return parsed.challenge.signature


def redeem(payload, subject):
    """True once for a payload that solves an unexpired challenge issued for ``subject``; False for a replay."""
    signature = _verified_signature(payload, subject)
    if signature is None:
        return False
    ttl = current_app.config["CHALLENGE_TTL_SECONDS"]
    try:
        uses = limiter.limiter.storage.incr(USED_PREFIX + signature, ttl + 60)
    except Exception:  # noqa: BLE001 - storage down: refuse rather than let a solution be replayed
        log.warning("challenge storage unreachable: solution not accepted", extra={"event": "challenge_storage"})
        return False
    return uses == 1
