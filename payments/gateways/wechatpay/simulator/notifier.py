"""Notifications to the merchant's notify_url: encrypted, signed, and retried on WeChat Pay's schedule.

WeChat Pay posts a notification until the merchant answers 200 or 204, at
15s/15s/30s/3m/10m/20m/30m/30m/30m/60m/3h/3h/3h/6h/6h after the previous try
(the schedule scaled by the time factor here). Each try is signed afresh, so a
late retry still carries a current timestamp. Admin switches make the next
notifications arrive twice, in reverse order, late, or not at all, or send a signature probe first (WECHATPAY/SIGNTEST/...).
"""
import json
import threading
import time
import uuid

import requests

from .clock import rfc3339
from .crypto import encrypt_resource, nonce, response_message, sign

RETRY_SCHEDULE = (15, 15, 30, 180, 600, 1200, 1800, 1800, 1800, 3600, 10800, 10800, 10800, 21600, 21600)
# how long WeChat Pay waits for the merchant's answer
DELIVERY_TIMEOUT = 5
# between notifications released in reverse order, so that they do arrive in that order
REORDER_GAP = 0.2
MODES = ("duplicate", "reorder", "delay", "drop", "signtest")
# WeChat Pay now and then probes whether a merchant verifies signatures: a notification signed with garbage behind
# this prefix, which the merchant must refuse (it is not retried)
SIGNTEST = "WECHATPAY/SIGNTEST/"


class Notifier:
    """Queues notifications in the store and delivers the due ones (call ``deliver_due`` from a worker)."""

    def __init__(self, account, store, clock, settings):
        self.account = account
        self.store = store
        self.clock = clock
        self.settings = settings
        self.switches = {}  # mode -> {"count": n, "seconds": s, "held": [keys]}
        self.lock = threading.Lock()
        with self.store.change() as data:
            # a delivery cut short by a restart is tried again
            for delivery in data["notifications"].values():
                if delivery["state"] == "sending":
                    delivery["state"] = "pending"

    def switch(self, mode, count, seconds=0):
        """Apply ``mode`` (duplicate, reorder, delay, drop, signtest) to the next ``count`` notifications."""
        with self.lock:
            self.switches[mode] = {"count": count, "seconds": seconds, "held": []}

    def send(self, url, event_type, summary, original_type, resource):
        """Queue a notification of ``resource`` (encrypted with the APIv3 key) to ``url``."""
        now = self.clock.now()
        notification = {
            "id": str(uuid.uuid4()),
            "create_time": rfc3339(now),
            "resource_type": "encrypt-resource",
            "event_type": event_type,
            "summary": summary,
            "resource": {
                **encrypt_resource(self.account.apiv3_key, json.dumps(resource, ensure_ascii=False), original_type),
                "original_type": original_type,
            },
        }
        body = json.dumps(notification, ensure_ascii=False, separators=(",", ":"))
        deliveries = [self._delivery(notification["id"], url, event_type, body)]
        with self.lock:
            deliveries = self._apply_switches(deliveries)
        with self.store.change() as data:
            for delivery in deliveries:
                data["notifications"][delivery["key"]] = delivery

    def _delivery(self, notification_id, url, event_type, body, suffix=""):
        return {"key": notification_id + suffix, "id": notification_id, "url": url, "event_type": event_type,
                "body": body, "state": "pending", "due": time.time(), "tries": [], "probe": suffix == "#signtest"}

    def _apply_switches(self, deliveries):
        delivery = deliveries[0]
        if self._take("drop"):
            delivery["state"] = "dropped"
        elif self._take("delay"):
            delivery["due"] += self.switches["delay"]["seconds"]
        elif self._take("duplicate"):
            deliveries.append(self._delivery(delivery["id"], delivery["url"], delivery["event_type"],
                                             delivery["body"], suffix="#duplicate"))
        elif self._take("reorder"):
            self._hold(delivery)
        elif self._take("signtest"):
            delivery["due"] += REORDER_GAP
            deliveries.insert(0, self._delivery(delivery["id"], delivery["url"], delivery["event_type"],
                                                delivery["body"], suffix="#signtest"))
        return deliveries

    def _take(self, mode):
        switch = self.switches.get(mode)
        if not switch or switch["count"] <= 0:
            return False
        switch["count"] -= 1
        return True

    def _hold(self, delivery):
        """Hold a notification back; once the last one switched arrives, release them all, newest first."""
        switch = self.switches["reorder"]
        delivery["state"] = "held"
        switch["held"].append(delivery["key"])
        if switch["count"] == 0:
            delivery["state"] = "pending"
            del self.switches["reorder"]  # spent: a later release() must not send these again
            self._release(switch["held"][:-1], start=time.time() + REORDER_GAP)

    def release(self):
        """Release the notifications held for reordering now (newest first), even if fewer came than switched."""
        with self.lock:
            switch = self.switches.pop("reorder", None)
        if switch:
            self._release(switch["held"], start=time.time())

    def _release(self, keys, start):
        with self.store.change() as data:
            for position, key in enumerate(reversed(keys)):
                data["notifications"][key].update(state="pending", due=start + position * REORDER_GAP)

    def deliver_due(self):
        """Start a try of every notification that is due (each in its own thread: one slow merchant delays none)."""
        with self.store.read() as data:
            due = [key for key, d in data["notifications"].items() if d["state"] == "pending" and d["due"] <= time.time()]
        if not due:
            return  # the worker asks every tick: write the store only when something goes out
        with self.store.change() as data:
            for key in due:
                data["notifications"][key]["state"] = "sending"
        for key in due:
            threading.Thread(target=self._try, args=(key,), daemon=True).start()

    def _try(self, key):
        with self.store.read() as data:
            delivery = dict(data["notifications"][key])
        status = self._post(delivery)
        with self.store.change() as data:
            delivery = data["notifications"][key]
            delivery["tries"].append({"at": rfc3339(self.clock.now()), "status": status})
            retries = len(delivery["tries"]) - 1
            if delivery["probe"]:
                # a merchant that accepts a probe does not verify signatures
                delivery["state"] = "accepted" if status in (200, 204) else "refused"
            elif status in (200, 204):
                delivery["state"] = "delivered"
            elif retries < len(RETRY_SCHEDULE):
                delivery.update(state="pending", due=time.time() + self.clock.scaled(RETRY_SCHEDULE[retries]))
            else:
                delivery["state"] = "failed"

    def _post(self, delivery):
        """POST one try; its status code, or None when the merchant could not be reached in time."""
        private_key, serial = self.account.signer(self.settings["signing"])
        timestamp, nonce_str = str(int(time.time())), nonce()
        signature = sign(private_key, response_message(timestamp, nonce_str, delivery["body"]))
        if delivery["probe"]:
            signature = SIGNTEST + nonce(len(signature) - len(SIGNTEST))
        headers = {
            "Content-Type": "application/json",
            "Wechatpay-Timestamp": timestamp,
            "Wechatpay-Nonce": nonce_str,
            "Wechatpay-Serial": serial,
            "Wechatpay-Signature": signature,
            "Wechatpay-Signature-Type": "WECHATPAY2-SHA256-RSA2048",
            "User-Agent": "Mozilla/4.0 (WeChatPay simulator)",
        }
        try:
            return requests.post(delivery["url"], data=delivery["body"].encode(), headers=headers,
                                 timeout=DELIVERY_TIMEOUT).status_code
        except requests.RequestException:
            return None

    def deliveries(self):
        """Every delivery (for the admin API and tests): key, id, url, event type, state and tries."""
        with self.store.read() as data:
            return [{k: v for k, v in d.items() if k != "body"} for d in data["notifications"].values()]
