"""The simulator's store: trades, refunds, notifications and bill links in SQLite in its data directory.

One connection guarded by one lock: the simulator serves a handful of requests a second
at most, and the lock makes each read-modify-write of a trade atomic across the threaded
server's request threads and the notifier.
"""
import json
import sqlite3
import threading

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS trades (
    out_trade_no TEXT PRIMARY KEY,
    token TEXT NOT NULL UNIQUE,          -- the payer page's and QR code's id
    trade_no TEXT NOT NULL UNIQUE,
    method TEXT NOT NULL,                -- the API call that placed it
    product_code TEXT NOT NULL,
    subject TEXT NOT NULL,
    total_fen INTEGER NOT NULL,
    notify_url TEXT,
    return_url TEXT,
    quit_url TEXT,
    sign_type TEXT NOT NULL,
    status TEXT NOT NULL,
    requested_at TEXT NOT NULL,
    gmt_create TEXT,                     -- set when the buyer scans or opens the cashier: Alipay knows it from then
    expires_at TEXT NOT NULL,
    gmt_payment TEXT,
    gmt_close TEXT,
    buyer_id TEXT,
    buyer_logon_id TEXT,
    fee_fen INTEGER NOT NULL DEFAULT 0,
    refunded_fen INTEGER NOT NULL DEFAULT 0,
    fee_returned_fen INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS refunds (
    out_trade_no TEXT NOT NULL,
    out_request_no TEXT NOT NULL,
    refund_fen INTEGER NOT NULL,
    fee_returned_fen INTEGER NOT NULL,
    reason TEXT,
    gmt_refund TEXT NOT NULL,            -- with milliseconds, as Alipay writes it
    PRIMARY KEY (out_trade_no, out_request_no)
);
CREATE TABLE IF NOT EXISTS notifications (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    notify_id TEXT NOT NULL,
    url TEXT NOT NULL,
    params TEXT NOT NULL,                -- JSON, without notify_time and sign (set at each send)
    sign_type TEXT NOT NULL,
    state TEXT NOT NULL,                 -- pending, held, delivered, failed, dropped
    attempts INTEGER NOT NULL DEFAULT 0,
    copies INTEGER NOT NULL DEFAULT 1,   -- sends per attempt (a duplicate switch makes it 2)
    due_at REAL NOT NULL,                -- real epoch seconds
    last_status INTEGER,
    last_body TEXT
);
CREATE TABLE IF NOT EXISTS bill_links (
    token TEXT PRIMARY KEY,
    bill_date TEXT NOT NULL,
    expires_at TEXT NOT NULL
);
"""


class Store:
    """Rows as dicts; every method holds the lock, and ``locked()`` lets a caller hold it across several."""

    def __init__(self, path):
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.row_factory = sqlite3.Row
        self.lock = threading.RLock()
        with self.lock:
            self._db.executescript(SCHEMA)

    def close(self):
        """Close the database connection."""
        with self.lock:
            self._db.close()

    def _all(self, sql, *args):
        with self.lock:
            return [dict(row) for row in self._db.execute(sql, args)]

    def _one(self, sql, *args):
        rows = self._all(sql, *args)
        return rows[0] if rows else None

    def _run(self, sql, *args):
        with self.lock:
            return self._db.execute(sql, args).lastrowid

    def _update(self, table, where, key, fields):
        assignments = ", ".join(f"{name} = ?" for name in fields)
        self._run(f"UPDATE {table} SET {assignments} WHERE {where} = ?", *fields.values(), key)

    def _insert(self, table, fields):
        names = ", ".join(fields)
        marks = ", ".join("?" for _ in fields)
        return self._run(f"INSERT INTO {table} ({names}) VALUES ({marks})", *fields.values())

    # meta
    def meta(self, key, default=None):
        """A stored setting (the clock's offset, the seller's balance)."""
        row = self._one("SELECT value FROM meta WHERE key = ?", key)
        return row["value"] if row else default

    def set_meta(self, key, value):
        """Store a setting."""
        self._run("INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                  key, str(value))

    # trades
    def trade(self, out_trade_no):
        """The trade with this merchant order number, or None."""
        return self._one("SELECT * FROM trades WHERE out_trade_no = ?", out_trade_no)

    def trade_by(self, column, value):
        """The trade whose ``column`` (token or trade_no) is ``value``, or None."""
        assert column in ("token", "trade_no")
        return self._one(f"SELECT * FROM trades WHERE {column} = ?", value)

    def insert_trade(self, **fields):
        """Record a new trade."""
        self._insert("trades", fields)

    def update_trade(self, out_trade_no, **fields):
        """Change a trade's fields."""
        self._update("trades", "out_trade_no", out_trade_no, fields)

    def open_trades_due(self, now_text):
        """Trades still waiting for payment whose expiry has passed."""
        return self._all("SELECT * FROM trades WHERE status = 'WAIT_BUYER_PAY' AND expires_at <= ?", now_text)

    def trades_paid_between(self, start_text, end_text):
        """Trades paid in [start, end), in payment order."""
        return self._all("SELECT * FROM trades WHERE gmt_payment >= ? AND gmt_payment < ? ORDER BY gmt_payment",
                         start_text, end_text)

    # refunds
    def refund(self, out_trade_no, out_request_no):
        """One refund of a trade, or None."""
        return self._one("SELECT * FROM refunds WHERE out_trade_no = ? AND out_request_no = ?",
                         out_trade_no, out_request_no)

    def insert_refund(self, **fields):
        """Record a refund."""
        self._insert("refunds", fields)

    def refunds_between(self, start_text, end_text):
        """Refunds made in [start, end), each with its trade's columns under ``trade``."""
        refunds = self._all("SELECT * FROM refunds WHERE gmt_refund >= ? AND gmt_refund < ? ORDER BY gmt_refund",
                            start_text, end_text)
        return [{**refund, "trade": self.trade(refund["out_trade_no"])} for refund in refunds]

    # notifications
    def add_notification(self, **fields):
        """Queue a notification; ``params`` is a dict."""
        return self._insert("notifications", {**fields, "params": json.dumps(fields["params"], ensure_ascii=False)})

    def notifications(self, where="1 = 1", *args):
        """Notifications matching ``where``, oldest first, with ``params`` decoded."""
        rows = self._all(f"SELECT * FROM notifications WHERE {where} ORDER BY due_at, id", *args)
        return [{**row, "params": json.loads(row["params"])} for row in rows]

    def update_notification(self, notification_id, **fields):
        """Change a notification's delivery fields."""
        self._update("notifications", "id", notification_id, fields)

    # bill links
    def add_bill_link(self, token, bill_date, expires_at):
        """A download link for a day's bill, valid until ``expires_at``."""
        self._insert("bill_links", {"token": token, "bill_date": bill_date, "expires_at": expires_at})

    def bill_link(self, token):
        """The bill link with this token, or None."""
        return self._one("SELECT * FROM bill_links WHERE token = ?", token)
