"""A local stand-in for WeChat Pay's API v3 servers, which have no sandbox of their own.

``flask --app wsgi simulate wechatpay --port PORT`` serves it on 127.0.0.1
(docs/simulators.md). It makes its merchant account and keys on first start,
checks every request's signature and signs every answer as WeChat Pay does,
keeps orders and refunds in WeChat Pay's states, notifies the merchant
(encrypted, signed, retried) and serves the daily trade bill, so that a
client such as wechatpayv3 works against it unchanged but for its base URL.
It is a separate server: it imports nothing of FinePay's app.
"""
import json

import click

from .server import Simulator

__all__ = ["Simulator", "command"]


@click.command("wechatpay", help="Serve the WeChat Pay API v3 simulator on 127.0.0.1 (SIMULATION: no real money).")
@click.option("--port", type=int, default=8801, show_default=True, help="Port on 127.0.0.1 (0: a free one).")
@click.option("--data-dir", type=click.Path(file_okay=False), default="instance/wechatpay-simulator",
              show_default=True, help="Where the account, keys and store are kept (made on first start).")
@click.option("--print-config", is_flag=True, help="Print as JSON what a client needs (ids, key paths), then exit.")
@click.option("--time-factor", type=float, default=1.0, show_default=True,
              help="Scale WeChat Pay's delays (notification retries, refund processing): 0.01 is 100 times faster.")
@click.option("--signing", type=click.Choice(["public-key", "certificate"]), default="public-key",
              show_default=True, help="Sign answers and notifications with the platform public key or certificate.")
@click.option("--fee-rate", type=float, default=0.006, show_default=True, help="WeChat Pay's fee, e.g. 0.006 (0.6%).")
@click.option("--refund-delay", type=float, default=5.0, show_default=True,
              help="Seconds (scaled) a refund stays PROCESSING before SUCCESS.")
def command(port, data_dir, print_config, time_factor, signing, fee_rate, refund_delay):
    """Serve the simulator, or print its configuration (``--print-config``)."""
    simulator = Simulator(data_dir, port=port, time_factor=time_factor, signing=signing, fee_rate=fee_rate,
                          refund_delay=refund_delay)
    if print_config:
        simulator.server.server_close()
        click.echo(json.dumps(simulator.config(), ensure_ascii=False, indent=2))
        return
    click.echo(f"WeChat Pay simulator (SIMULATION) on {simulator.base_url}, data in {data_dir}", err=True)
    simulator.serve()
