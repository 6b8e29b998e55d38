"""Fault switches: the next N API requests (optionally only under one path) time out, fail or are throttled.

``timeout`` holds the request for some seconds before answering normally, so
a client with a shorter timeout does not know whether it happened;
``after`` runs the request and then answers the error, the other way for a
client to lose an outcome. ``bill_hash_mismatch`` answers a bill application
with a SHA1 that is not the bill's (a file damaged on its way), which the
merchant must refuse.
"""
import threading

from . import errors

KINDS = {
    "SYSTEM_ERROR": errors.SYSTEM_ERROR,
    "FREQUENCY_LIMITED": errors.FREQUENCY_LIMITED,
    "NOT_ENOUGH": errors.NOT_ENOUGH,
    "timeout": None,
    "bill_hash_mismatch": None,
}


class Faults:
    """The armed faults, each spent one request at a time."""

    def __init__(self):
        self.armed = []
        self.lock = threading.Lock()

    def arm(self, kind, count, path="", seconds=0.0, after=False):
        """Apply ``kind`` to the next ``count`` requests whose path starts with ``path``."""
        if kind not in KINDS:
            raise ValueError(f"unknown fault {kind!r}; one of {', '.join(KINDS)}")
        with self.lock:
            self.armed.append({"kind": kind, "count": count, "path": path, "seconds": seconds, "after": after})

    def clear(self):
        """Disarm every fault."""
        with self.lock:
            self.armed.clear()

    def take(self, path):
        """The fault that applies to this request (spending one of its count), or None."""
        with self.lock:
            for fault in self.armed:
                if fault["count"] > 0 and path.startswith(fault["path"]):
                    fault["count"] -= 1
                    return dict(fault)
        return None

    def error(self, fault):
        """The ApiError a fault answers with (None for a timeout or a bill's wrong SHA1)."""
        make = KINDS[fault["kind"]]
        return make() if make else None
