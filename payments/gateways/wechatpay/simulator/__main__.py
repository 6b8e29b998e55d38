"""``python -m payments.gateways.wechatpay.simulator``: the simulator without building FinePay's app."""
from . import command

command(prog_name="python -m payments.gateways.wechatpay.simulator")
