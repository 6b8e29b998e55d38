"""CLI: flask --app wsgi kiosk enroll|revoke|list."""
import getpass
from zoneinfo import ZoneInfo

import click
from flask import current_app
from flask.cli import AppGroup

from finepay.errors import ApiError
from kiosk import services

kiosk_cli = AppGroup("kiosk", help="Kiosk terminals: enrol, revoke, list.")


def _actor():
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli"


def _local(value):
    if value is None:
        return "never"
    return value.astimezone(ZoneInfo(current_app.config["BUSINESS_TIMEZONE"])).strftime("%Y-%m-%d %H:%M:%S")


@kiosk_cli.command("enroll")
@click.argument("name")
@click.option("--base-url", default="http://127.0.0.1:8000", show_default=True,
              help="Where the kiosk reaches FinePay (the printed link starts with it).")
@click.option("--reader", "reader_id", default=None,
              help="The gateway's id of the card reader paired with this kiosk.")
def enroll_command(name, base_url, reader_id):
    """Print a one-time enrolment link for kiosk NAME (valid 15 minutes; re-enrolling replaces its credential)."""
    try:
        enrolment = services.enrol_terminal(name, _actor(), reader_id=reader_id, base_url=base_url)
    except ApiError as error:
        raise click.ClickException(error.message) from None
    click.echo(f"Open this link on the kiosk {enrolment.name} before {_local(enrolment.expires_at)} "
               f"({current_app.config['BUSINESS_TIMEZONE']}); it works once:")
    click.echo(enrolment.url)


@kiosk_cli.command("revoke")
@click.argument("name")
def revoke_command(name):
    """Switch kiosk NAME off at once: its credential stops working and its open visit ends."""
    try:
        terminal = services.revoke_terminal(name, _actor())
    except ApiError as error:
        raise click.ClickException(error.message) from None
    click.echo(f"Revoked kiosk {terminal.name}.")


@kiosk_cli.command("list")
def list_command():
    """Every kiosk with its status and last heartbeat."""
    terminals = services.list_terminals()
    if not terminals:
        click.echo("No kiosks yet: flask --app wsgi kiosk enroll NAME")
        return
    rows = [("NAME", "STATUS", "LAST HEARTBEAT", "ONLINE", "CREDENTIAL EXPIRES", "READER")]
    for t in terminals:
        rows.append((t.name, t.status, _local(t.last_heartbeat_at), "yes" if t.online else "no",
                     _local(t.credential_expires_at) if t.credential_expires_at else "-", t.reader_id or "-"))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        click.echo("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())
