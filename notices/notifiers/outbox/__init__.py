"""The outbox sender (the default): the text stays in FinePay's own outbox, where staff read it in the console.

It reaches no phone. It is what development, the demo and a deployment without an
SMS contract run; a one-time code is kept in clear here (the outbox is where it is
delivered), which no real sender does.
"""
from flask_babel import lazy_gettext as _l

from notices.notifiers import Notifier, SendReceipt


class OutboxNotifier(Notifier):
    """Takes every text at once; staff record a subscriber's stop reply in the console."""

    name = "outbox"
    label = _l("The console outbox")
    simulated = True
    keeps_codes = True

    def send(self, text):
        return SendReceipt(provider_message_id=f"outbox-{text.key}")

    def find_sent(self, text, since):
        # The outbox never times out: an unknown outcome here is a run that died mid-send, and it was not stored.
        return None
