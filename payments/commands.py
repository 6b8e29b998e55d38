"""CLI: flask --app wsgi payments sync (run from cron every few minutes)."""
import click
from flask.cli import AppGroup

from finepay import audit
from payments.services import sync_payments

payments_cli = AppGroup("payments", help="Payments housekeeping.")


@payments_cli.command("sync")
def sync_command():
    """Settle payments whose outcome is not yet known by asking the gateway; expire stale quotes; seal the audit log."""
    counts = sync_payments()
    counts["audit_entries_sealed"] = audit.seal().sealed
    click.echo(", ".join(f"{value} {name.replace('_', ' ')}" for name, value in counts.items()))
