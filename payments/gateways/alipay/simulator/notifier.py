"""Asynchronous notifications: form POSTs to the notify_url, retried until the body is ``success``, with switches.

Alipay retries a notification whose answer is not ``success`` about eight times within
25 hours, after 4m, 10m, 10m, 1h, 2h, 6h and 15h; the schedule here is the same, scaled
by the time factor (``--time-factor 0.001`` turns 4 minutes into 0.24 s). Each send
carries a fresh ``notify_time`` and is signed again (RSA2 over the sorted fields without
``sign`` and ``sign_type``); ``notify_id`` stays the same across retries.

Switches (the admin API) act on the notifications queued after them: ``drop`` loses the
next N for good, ``duplicate`` sends each of the next N twice at every attempt, ``delay``
holds the next N back for some seconds, and ``hold`` keeps every new one until
``release`` sends them all, oldest or newest first.
"""
import threading
import time

import requests

from . import signing
from .clock import format_time

RETRY_SCHEDULE = (4 * 60, 10 * 60, 10 * 60, 60 * 60, 2 * 60 * 60, 6 * 60 * 60, 15 * 60 * 60)
PENDING, HELD, DELIVERED, FAILED, DROPPED = "pending", "held", "delivered", "failed", "dropped"


class Notifier:
    """Queues notifications in the store and delivers the due ones when ``deliver_due`` runs."""

    def __init__(self, store, clock, account, time_factor=1.0, timeout=10.0):
        self.store = store
        self.clock = clock
        self.account = account
        self.time_factor = time_factor
        self.timeout = timeout
        self._lock = threading.Lock()
        self._switches = {"drop": 0, "duplicate": 0, "delay": 0, "delay_seconds": 0.0, "hold": False}

    def switch(self, action, count=1, seconds=0.0):
        """Arm a switch: ``drop``/``duplicate``/``delay`` the next ``count`` notifications, or ``hold`` them all."""
        with self._lock:
            if action == "hold":
                self._switches["hold"] = True
            elif action == "delay":
                self._switches.update(delay=count, delay_seconds=seconds)
            else:
                self._switches[action] = count

    def switches(self):
        """The switches as they stand."""
        with self._lock:
            return dict(self._switches)

    def _take(self, name):
        if self._switches[name] > 0:
            self._switches[name] -= 1
            return True
        return False

    def enqueue(self, url, params, sign_type):
        """Queue one notification to ``url``, as the armed switches say."""
        with self._lock:
            state, due = PENDING, time.time()
            if self._take("drop"):
                state = DROPPED
            elif self._switches["hold"]:
                state = HELD
            elif self._take("delay"):
                due += self._switches["delay_seconds"]
            copies = 2 if state == PENDING and self._take("duplicate") else 1
        return self.store.add_notification(notify_id=params["notify_id"], url=url, params=params,
                                           sign_type=sign_type, state=state, copies=copies, due_at=due)

    def release(self, newest_first=False):
        """Stop holding, and send the held notifications in the order asked (newest first reorders them)."""
        # The switches' lock is never held while waiting for the store's: trades hold the store's while they enqueue.
        with self._lock:
            self._switches["hold"] = False
        held = self.store.notifications("state = ?", HELD)
        if newest_first:
            held.reverse()
        start = time.time()
        for position, notification in enumerate(held):
            self.store.update_notification(notification["id"], state=PENDING, due_at=start + position * 1e-3)
        return len(held)

    def resend(self, notification_id):
        """Send a notification again now, whatever became of it (a replay, as Alipay's retries are)."""
        self.store.update_notification(notification_id, state=PENDING, due_at=time.time())

    def deliver_due(self):
        """Attempt every pending notification whose time has come, in order."""
        for notification in self.store.notifications("state = ? AND due_at <= ?", PENDING, time.time()):
            self._attempt(notification)

    def _attempt(self, notification):
        answers = [self._post(notification) for _ in range(notification["copies"])]
        status, body = answers[-1]
        attempts = notification["attempts"] + 1
        fields = {"attempts": attempts, "last_status": status, "last_body": body[:200]}
        if any(code == 200 and text.strip() == "success" for code, text in answers):
            fields["state"] = DELIVERED
        elif attempts > len(RETRY_SCHEDULE):
            fields["state"] = FAILED
        else:
            fields["due_at"] = time.time() + RETRY_SCHEDULE[attempts - 1] * self.time_factor
        self.store.update_notification(notification["id"], **fields)

    def _post(self, notification):
        params = {**notification["params"], "notify_time": format_time(self.clock.now())}
        content = signing.sign_content(params, signing.NOTIFICATION_UNSIGNED)
        params["sign"] = signing.sign(self.account.alipay_private_key, content, notification["sign_type"])
        try:
            answer = requests.post(notification["url"], data=params, timeout=self.timeout,
                                   headers={"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"})
        except requests.RequestException as error:
            return None, type(error).__name__
        return answer.status_code, answer.text
