"""CLI: flask --app wsgi violations import FILE.csv"""
import sys

import click
from flask.cli import AppGroup

from violations.importer import ImportFileError, import_csv_file

violations_cli = AppGroup("violations", help="Manage violations.")


@violations_cli.command("import")
@click.argument("path", type=click.Path(exists=True, dir_okay=False))
@click.option("--dry-run", is_flag=True, help="Validate and count, write nothing.")
def import_command(path, dry_run):
    """Import or update violations from a UTF-8 CSV file (see README for the columns)."""

    def show(line, reason):
        click.echo(f"line {line}: {reason}", err=True)

    try:
        report = import_csv_file(path, actor="cli", dry_run=dry_run, on_error=show)
    except ImportFileError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    for line, payment_id in report.canceled_payments:
        click.echo(f"line {line}: open payment {payment_id} "
                   + ("would be cancelled" if dry_run else "cancelled")
                   + ": the row changes a violation it was paying at the old amount")
    click.echo(
        f"{report.inserted} new, {report.updated} updated, "
        f"{report.skipped_paid} paid left unchanged, {len(report.rejected)} rejected, "
        f"{len(report.canceled_payment_ids)} open payments cancelled"
        + (" (dry run: nothing written)" if dry_run else "")
    )
    if report.rejected:
        sys.exit(1)
