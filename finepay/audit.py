"""The append-only audit log: every state change of money, imports and staff actions."""
import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime

from flask import has_request_context, request
from sqlalchemy import JSON, BigInteger, Integer, String, event, select, text
from sqlalchemy.orm import Mapped, Session, mapped_column

from finepay.dbtypes import UTCDateTime, utcnow
from finepay.extensions import db
from finepay.observability import current_request_id

# BIGINT on PostgreSQL; SQLite only autoincrements a plain INTEGER primary key.
BigId = BigInteger().with_variant(Integer(), "sqlite")


class AuditEntry(db.Model):
    """One thing that happened, who did it, and from where. Never updated or deleted."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, nullable=False, index=True)
    actor: Mapped[str] = mapped_column(String(100), nullable=False)
    action: Mapped[str] = mapped_column(String(60), nullable=False, index=True)
    subject_type: Mapped[str] = mapped_column(String(40), nullable=False)
    subject_id: Mapped[str] = mapped_column(String(64), nullable=False)
    details: Mapped[dict] = mapped_column(JSON, nullable=False, default=dict)
    remote_addr: Mapped[str | None] = mapped_column(String(64))
    # Tamper evidence: each entry's hash covers its content and the previous entry's hash.
    prev_hash: Mapped[str | None] = mapped_column(String(64))
    entry_hash: Mapped[str | None] = mapped_column(String(64))
    # The X-Request-ID of the request (or CLI run) that wrote it, to find its log lines; not hashed.
    request_id: Mapped[str | None] = mapped_column(String(64), index=True)

    __table_args__ = (db.Index("ix_audit_log_subject", "subject_type", "subject_id"),)


def record(action, subject_type, subject_id, actor="system", **details):
    """Add an audit entry to the current transaction (committed with the change it describes).

    The entry is written when the transaction commits, chained to the entry
    before it (see _append_pending); a rollback discards it with the change.
    """
    entry = AuditEntry(
        at=utcnow(),
        actor=actor,
        action=action,
        subject_type=subject_type,
        subject_id=str(subject_id),
        # Stored exactly as hashed: what the JSON column gives back must hash the same.
        details=json.loads(_canonical_json(details)),
        remote_addr=request.remote_addr if has_request_context() else None,
        request_id=current_request_id(),
    )
    session = db.session()
    if not session.in_transaction():
        session.begin()  # so that the entry lives and dies with this transaction
    session.info.setdefault(_PENDING, []).append(entry)
    return entry


# --- the hash chain ------------------------------------------------------------
#
# Each entry's hash covers its content and the previous entry's hash, so that
# changing, removing or reordering any entry (other than the very last) breaks
# every hash after it; `flask --app wsgi audit verify` walks the chain.
# Entries are chained at commit time under a lock held until the commit
# (PostgreSQL: a transaction-level advisory lock; SQLite: the database write
# lock), so that two writers never chain onto the same predecessor, ids follow
# chain order, and an id is visible only once every smaller id is.

GENESIS = "0" * 64
_PENDING = "finepay.audit.pending"
_CHAIN_LOCK = 0x46_50_41_55_44_49_54  # "FPAUDIT": pg_advisory_xact_lock key


def _canonical_json(value):
    return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)


def entry_digest(entry, prev_hash):
    """The SHA-256 of an entry's content and its predecessor's hash (hex)."""
    content = [
        prev_hash,
        entry.at.astimezone(UTC).isoformat(timespec="microseconds"),
        entry.actor,
        entry.action,
        entry.subject_type,
        entry.subject_id,
        entry.details,
        entry.remote_addr,
    ]
    return hashlib.sha256(_canonical_json(content).encode()).hexdigest()


def _lock_chain(session):
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _CHAIN_LOCK})
    else:
        # SQLite has one writer at a time: a write that touches no row takes the lock.
        session.execute(text("DELETE FROM audit_log WHERE 0 = 1"))


@event.listens_for(Session, "before_commit")
def _append_pending(session):
    """Chain and insert the entries recorded in this transaction, just before it commits."""
    pending = session.info.pop(_PENDING, None)
    if not pending:
        return
    # Every other change first, outside the lock: every writer waits for the lock, so
    # it is held for three statements only (the lock, the last hash, one INSERT).
    session.flush()
    _lock_chain(session)
    prev = session.execute(
        select(AuditEntry.entry_hash).order_by(AuditEntry.id.desc()).limit(1)
    ).scalar() or GENESIS
    for entry in pending:
        entry.prev_hash = prev
        entry.entry_hash = prev = entry_digest(entry, prev)
    # One INSERT for all of them; the ORM inserts them, and numbers them, in this order.
    session.add_all(pending)
    session.flush()


@event.listens_for(Session, "after_transaction_end")
def _forget_pending(session, transaction):
    """A transaction that ended without committing takes its entries with it."""
    if transaction.parent is None:
        session.info.pop(_PENDING, None)


@dataclass
class ChainReport:
    """What `audit verify` found."""

    checked: int = 0
    unchained: int = 0  # entries written before the chain existed (no hashes)
    broken_at: int | None = None  # id of the first entry that does not verify
    reason: str | None = None

    @property
    def ok(self):
        """Whether every chained entry verifies."""
        return self.broken_at is None


def verify_chain(batch_size=5000):
    """Recompute every entry's hash in id order and compare it with the stored chain."""
    report = ChainReport()
    prev = None
    last_id = 0
    while True:
        table = AuditEntry.__table__
        entries = db.session.execute(
            select(table).where(table.c.id > last_id).order_by(table.c.id).limit(batch_size)
        ).all()
        if not entries:
            return report
        for entry in entries:
            last_id = entry.id
            if entry.entry_hash is None and prev is None:
                report.unchained += 1
                continue
            expected_prev = prev or GENESIS
            if entry.entry_hash is None:
                reason = "entry has no hash after the chain began"
            elif entry.prev_hash != expected_prev:
                reason = "previous-hash link does not match (an entry before it was removed or reordered)"
            elif entry_digest(entry, expected_prev) != entry.entry_hash:
                reason = "content does not match its hash (the entry was changed)"
            else:
                report.checked += 1
                prev = entry.entry_hash
                continue
            report.broken_at, report.reason = entry.id, reason
            return report
