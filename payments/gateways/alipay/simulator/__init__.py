"""A local stand-in for Alipay's openapi gateway (RSA2), faithful enough for python-alipay-sdk to work against it.

``flask --app wsgi simulate alipay --port PORT [--data-dir DIR] [--print-config] [--time-factor F]``
(or ``python -m payments.gateways.alipay.simulator``). It serves ``/gateway.do``, the
payer's pages, the bill downloads and an admin API on 127.0.0.1; see docs/simulators-alipay.md.
"""
import json
import signal
import sys
from pathlib import Path

import click
from werkzeug.serving import make_server

DEFAULT_DATA_DIR = Path("instance") / "alipay-simulator"


@click.command("alipay", help="Run the Alipay simulator on 127.0.0.1:PORT.")
@click.option("--port", type=int, required=True, help="The loopback port to serve on.")
@click.option("--data-dir", type=click.Path(file_okay=False, path_type=Path), default=DEFAULT_DATA_DIR,
              show_default=True, help="Where the keys, ids and store live (made on first start).")
@click.option("--print-config", is_flag=True, help="Print what a client needs, as JSON, and exit.")
@click.option("--time-factor", type=float, default=1.0, show_default=True,
              help="Scale notification retry intervals (0.001: 4 minutes become 0.24 s).")
def command(port, data_dir, print_config, time_factor):
    """Serve the simulator until interrupted, or print its client configuration."""
    from .app import Simulator

    simulator = Simulator(data_dir, time_factor=time_factor)
    if print_config:
        simulator.stop()
        click.echo(json.dumps(simulator.account.client_config(port), indent=2))
        return
    server = make_server("127.0.0.1", port, simulator.app, threaded=True)
    # `make run` stops it with SIGTERM: leave through the same door as Ctrl-C, closing the store.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    simulator.start()
    click.echo(f"Alipay simulator (SIMULATION) on http://127.0.0.1:{port}/gateway.do, data in {data_dir}")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        simulator.stop()
