"""``python -m payments.gateways.alipay.simulator``: the simulator without building FinePay's app."""
from . import command

command(prog_name="alipay-simulator")
