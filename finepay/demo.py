"""CLI: flask --app wsgi demo seed — a small data set that shows every fee stage, from the areas' seeders."""
import click
from flask import current_app
from flask.cli import AppGroup

SEEDERS = "finepay.demo.seeders"

demo_cli = AppGroup("demo", help="Demo data for trying FinePay locally.")


def add_seeder(app, seeder):
    """An area's part of the demo data: ``seeder()`` runs in order of registration and returns lines to print."""
    app.extensions[SEEDERS].append(seeder)


@demo_cli.command("seed")
def seed_command():
    """Load (or refresh) the demo vehicles and print what to type."""
    lines = []
    for seeder in current_app.extensions[SEEDERS]:
        lines.extend(seeder() or ())
    for line in lines:
        click.echo(line)


def init_app(app):
    """The demo CLI group, with no seeders yet (each area adds its own in its init_app)."""
    app.extensions[SEEDERS] = []
    app.cli.add_command(demo_cli)
