"""The simulator's store: orders, refunds and notifications in one JSON file, so that they survive a restart.

One lock serialises every change (the simulator serves a handful of clients);
each change rewrites the file through a temporary file and a rename, so a
killed simulator leaves the last complete state behind.
"""
import json
import os
import threading
from contextlib import contextmanager
from pathlib import Path

EMPTY = {"orders": {}, "refunds": {}, "notifications": {}}


class Store:
    """The persisted state: ``orders`` by out_trade_no, ``refunds`` by out_refund_no, ``notifications`` by id."""

    def __init__(self, path):
        self.path = Path(path)
        self.lock = threading.RLock()
        self.data = json.loads(self.path.read_text()) if self.path.exists() else json.loads(json.dumps(EMPTY))

    @contextmanager
    def change(self):
        """The state, locked for one change and saved when the change completes (not when it raises)."""
        with self.lock:
            yield self.data
            self._save()

    @contextmanager
    def read(self):
        """The state, locked for a consistent read."""
        with self.lock:
            yield self.data

    def _save(self):
        temporary = self.path.with_suffix(".tmp")
        temporary.write_text(json.dumps(self.data, ensure_ascii=False))
        os.replace(temporary, self.path)
