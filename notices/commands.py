"""CLI: flask --app wsgi notices send (from cron, e.g. every 10 minutes; safe to run twice or at once)."""
import click
from flask.cli import AppGroup

from notices import services

notices_cli = AppGroup("notices", help="Reminders sent to subscribed mobile numbers.")


@notices_cli.command("send")
def send_command():
    """Queue the reminders due now and send each due message once (quiet hours and daily caps respected)."""
    report = services.send_due()
    for line in report.errors:
        click.echo(line, err=True)
    click.echo(f"{report.queued} queued, {report.sent} sent, {report.held_quiet} held for quiet hours, "
               f"{report.held_cap} held for the daily cap, {report.retrying} to retry, {report.failed} failed, "
               f"{report.unknown} outcome unknown, {report.found_sent} found sent, {report.canceled} cancelled")
