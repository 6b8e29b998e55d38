"""CLI: flask --app wsgi payments sync (run from cron every few minutes), and ereceipts issue."""
import click
from flask.cli import AppGroup

from finepay import audit
from payments.ereceipt_requests import issue_pending
from payments.services import sync_payments

payments_cli = AppGroup("payments", help="Payments housekeeping.")


@payments_cli.command("sync")
def sync_command():
    """Settle payments whose outcome is not yet known by asking the gateway; expire stale quotes; seal the audit log."""
    counts = sync_payments()
    counts["audit_entries_sealed"] = audit.seal().sealed
    click.echo(", ".join(f"{value} {name.replace('_', ' ')}" for name, value in counts.items()))


ereceipts_cli = AppGroup("ereceipts", help="Official e-receipts (财政电子票据).")


@ereceipts_cli.command("issue")
def issue_command():
    """Ask the e-receipt issuer for every request whose next try is due (payments sync does it too)."""
    counts = issue_pending()
    click.echo(f"{counts['done']} done, {counts['failed']} failed, {counts['skipped']} held by another worker")
