"""CLI: flask --app wsgi staff create-user|sign-out|fetch-gateway, and flask --app wsgi audit seal|verify."""
import getpass
import sys
from datetime import date, timedelta

import click
from flask import current_app
from flask.cli import AppGroup

from finepay.audit import seal, verify_chain
from finepay.dbtypes import utcnow
from finepay.errors import ApiError
from payments.reconciliation.fetch import fetch_days
from staff import services, sessions
from staff.models import ROLES
from violations.fees import business_today

staff_cli = AppGroup("staff", help="Staff console: accounts and the gateway's records for reconciliation.")
audit_cli = AppGroup("audit", help="The tamper-evident audit log.")


def _actor():
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli"


@staff_cli.command("create-user")
@click.argument("name")
@click.option("--role", type=click.Choice(ROLES), required=True, help="clerk reads; supervisor also changes money.")
@click.option("--password-stdin", is_flag=True, help="Read the password from the first line of standard input.")
def create_user_command(name, role, password_stdin):
    """Create a staff account NAME (the password is asked for, or read from stdin)."""
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    try:
        user = services.create_user(name, role, password, actor=_actor())
    except ApiError as error:
        details = "; ".join(f"{field}: {' '.join(messages)}" for field, messages in error.errors.items())
        raise click.ClickException(details or error.message) from None
    click.echo(f"Created {user.role} {user.username}. Sign in at /staff/login.")


@staff_cli.command("sign-out")
@click.argument("name")
def sign_out_command(name):
    """End every session of staff account NAME at once (a lost laptop, a password that may be known)."""
    try:
        user = services.find_user(name)
    except ApiError as error:
        raise click.ClickException(error.message) from None
    ended = sessions.end_all_sessions(user, sessions.BY_ADMINISTRATOR, actor=_actor())
    click.echo(f"Ended {ended} session(s) of {user.username}.")


def _day(value):
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise click.BadParameter("use YYYY-MM-DD") from None


@staff_cli.command("fetch-gateway")
@click.option("--date", "day", help="Business date YYYY-MM-DD (default: yesterday).")
@click.option("--end", "last", help="Fetch a range: the last business date, inclusive.")
def fetch_gateway_command(day, last):
    """Copy each gateway's charges, refunds and fees for a business date into the reconciliation ledger.

    Run it from cron for yesterday, after about 10:00 (when WeChat Pay and
    Alipay have published their bills; a bill not out yet is said, and the
    other gateways are fetched all the same); the report's "Refresh from the
    gateways" button does the same for the dates on screen. Exits 1 when a
    gateway did not answer or what it sent was refused.
    """
    first = _day(day) if day else business_today(current_app.config["BUSINESS_TIMEZONE"]) - timedelta(days=1)
    final = _day(last) if last else first
    try:
        fetches = fetch_days(first, final, actor=_actor())
    except ValueError as error:
        raise click.ClickException(str(error)) from None
    dates = f"{first}" + (f" to {final}" if final != first else "")
    for fetch in fetches:
        if fetch.error is not None and fetch.error.retryable:
            click.echo(f"{fetch.gateway}: the gateway did not answer: {fetch.error.message}", err=True)
        elif fetch.error is not None:  # it answered, but refused, or sent what failed a check (a bill's SHA1)
            click.echo(f"{fetch.gateway}: nothing was recorded: {fetch.error.message}", err=True)
        elif fetch.bill_not_ready and fetch.transactions:
            click.echo(f"{fetch.gateway}: fetched {fetch.transactions} gateway transactions of the days whose bill "
                       f"is out; the rest of {dates} waits for its bill (usually after about 10:00 the next day); "
                       "fetch again later.")
        elif fetch.bill_not_ready:
            click.echo(f"{fetch.gateway}: the bill for {dates} is not available yet "
                       "(usually after about 10:00 the next day); fetch again later.")
        else:
            click.echo(f"{fetch.gateway}: fetched {fetch.transactions} gateway transactions for {dates}.")
    if any(fetch.error is not None for fetch in fetches):
        sys.exit(1)


@audit_cli.command("seal")
def seal_command():
    """Link new audit entries into the hash chain and write counted refusals (cron: every minute).

    Safe to run on every node at once: one seals, the others skip. `payments
    sync` and the settlement feed seal too.
    """
    result = seal()
    if result.skipped:
        click.echo("Another sealer is running; it seals what is left.")
    click.echo(f"Sealed {result.sealed} entries; wrote {result.refusals_flushed} refusal counts.")
    if result.blocked_at is not None:
        click.echo(f"STOPPED at audit entry {result.blocked_at}: its content no longer matches its digest. "
                   "Run `flask audit verify`.", err=True)
        sys.exit(1)


@audit_cli.command("verify")
def verify_command():
    """Check the sealed hash chain and every unsealed entry's digest; exits 1 at the first that does not verify."""
    report = verify_chain()
    if report.unchained:
        click.echo(f"{report.unchained} entries predate the hash chain (not verifiable).")
    if not report.ok:
        click.echo(f"BROKEN at audit entry {report.broken_at}: {report.reason}. "
                   f"{report.checked} sealed entries before it verify.", err=True)
        sys.exit(1)
    click.echo(f"OK: {report.checked} entries verify. The chain ends with {report.last_hash}.")
    if report.unsealed:
        age = int((utcnow() - report.oldest_unsealed_at).total_seconds())
        click.echo(f"{report.unsealed} newer entries are not sealed yet (the oldest {age} s ago); "
                   "their digests verify. `flask audit seal` links them into the chain.")
