"""The append-only audit log: every state change of money, imports and staff actions."""
import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from flask import has_request_context, request
from sqlalchemy import JSON, BigInteger, Integer, String, bindparam, delete, event, func, insert, select, text, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Mapped, Session, mapped_column

from finepay.dbtypes import BigId, UTCDateTime, utcnow
from finepay.extensions import db
from finepay.observability import current_request_id


class AuditEntry(db.Model):
    """One thing that happened, who did it, and from where. Never changed, except once, to seal it."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, nullable=False, index=True)
    actor: Mapped[str] = mapped_column(String(100), nullable=False)
    action: Mapped[str] = mapped_column(String(60), nullable=False, index=True)
    subject_type: Mapped[str] = mapped_column(String(40), nullable=False)
    subject_id: Mapped[str] = mapped_column(String(64), nullable=False)
    details: Mapped[dict] = mapped_column(JSON, nullable=False, default=dict)
    remote_addr: Mapped[str | None] = mapped_column(String(64))
    # Tamper evidence, in two steps (see "the hash chain" below): the digest of the entry's own
    # content, written with it; then, once sealed, its place in the chain and the hash linking it
    # to the entry sealed before it.
    digest: Mapped[str | None] = mapped_column(String(64))
    seal_seq: Mapped[int | None] = mapped_column(BigInteger)
    prev_hash: Mapped[str | None] = mapped_column(String(64))
    entry_hash: Mapped[str | None] = mapped_column(String(64))
    # The X-Request-ID of the request (or CLI run) that wrote it, to find its log lines; not hashed.
    request_id: Mapped[str | None] = mapped_column(String(64), index=True)

    __table_args__ = (
        db.Index("ix_audit_log_subject", "subject_type", "subject_id"),
        db.Index("ix_audit_log_seal_seq", "seal_seq", unique=True),
    )


def _new_entry(action, subject_type, subject_id, actor, details, remote_addr):
    entry = AuditEntry(
        at=utcnow(),
        actor=actor,
        action=action,
        subject_type=subject_type,
        subject_id=str(subject_id),
        # Stored exactly as hashed: what the JSON column gives back must hash the same.
        details=json.loads(_canonical_json(details)),
        remote_addr=remote_addr,
        request_id=current_request_id(),
    )
    entry.digest = content_digest(entry)
    return entry


def _queue(entry):
    session = db.session()
    if not session.in_transaction():
        session.begin()  # so that the entry lives and dies with this transaction
    session.info.setdefault(_PENDING, []).append(entry)
    return entry


def record(action, subject_type, subject_id, actor="system", **details):
    """Add an audit entry to the current transaction (committed with the change it describes).

    The entry is inserted, with the digest of its own content, when the
    transaction commits; a rollback discards it with the change. It takes no
    lock: `seal` links it into the hash chain later.
    """
    remote_addr = request.remote_addr if has_request_context() else None
    return _queue(_new_entry(action, subject_type, subject_id, actor, details, remote_addr))


# --- the hash chain ------------------------------------------------------------
#
# Writers never wait for each other: an entry is inserted with `digest`, the
# SHA-256 of its own content, and nothing else. Sealing (`seal`, run by
# `flask audit seal`, `payments sync` and the settlement feed) then links the
# entries that are committed and not yet sealed into one chain: each gets the
# next `seal_seq`, `prev_hash` (the hash of the entry sealed before it) and
# `entry_hash` over its content and `prev_hash`, so that changing, removing or
# reordering a sealed entry (other than the very last) breaks every hash after
# it, and changing an unsealed entry breaks its digest. `flask audit verify`
# checks both. On PostgreSQL the append-only trigger allows exactly that one
# update (NULL chain columns to set ones, nothing else changed).
#
# Why the chain follows the sealer and not the ids: ids come from a sequence
# when a row is inserted, so on PostgreSQL id 11 can commit after id 12 (and
# after a sealer has read 12). Linking in id order would need the sealer to
# wait for every possibly-in-flight id, which a time margin can only guess.
# Instead the chain order is the order in which the sealer saw entries
# committed: each run takes what is visible, in id order, and appends it after
# the last sealed entry; an entry that commits late simply gets the next run's
# higher seal_seq. Nothing is skipped and no timing is assumed. One sealer runs
# at a time (PostgreSQL: a transaction-level advisory lock, try-only, so a
# second sealer skips; SQLite: the database write lock), and a batch's
# seal_seqs become visible together at its commit, so sealed entries are always
# a gap-free prefix of the chain: readers that page by seal_seq (the
# settlement feed) never miss one.

GENESIS = "0" * 64
_PENDING = "finepay.audit.pending"
# pg_try_advisory_xact_lock(SEAL_LOCK, audit_log's oid): one sealer per audit log (per schema).
SEAL_LOCK = 0x46_50_41_55  # "FPAU"
SEAL_LOCK_SQL = "pg_try_advisory_xact_lock(:key, 'audit_log'::regclass::oid::int)"
SEAL_BATCH = 2000


def _canonical_json(value):
    return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)


def _content(entry):
    return [
        entry.at.astimezone(UTC).isoformat(timespec="microseconds"),
        entry.actor,
        entry.action,
        entry.subject_type,
        entry.subject_id,
        entry.details,
        entry.remote_addr,
    ]


def content_digest(entry):
    """The SHA-256 of an entry's own content (hex), written with it."""
    return hashlib.sha256(_canonical_json(_content(entry)).encode()).hexdigest()


def entry_digest(entry, prev_hash):
    """The SHA-256 of an entry's content and its predecessor's hash (hex): its link in the chain."""
    return hashlib.sha256(_canonical_json([prev_hash, *_content(entry)]).encode()).hexdigest()


# Called with (session, entries) after a transaction's entries are inserted, before it commits
# (e.g. to count payment outcomes once the commit succeeds).
on_insert = []


@event.listens_for(Session, "before_commit")
def _append_pending(session):
    """Insert the entries recorded in this transaction, just before it commits (no lock taken).

    One INSERT for all of them, without the ORM's unit of work: they are
    never changed afterwards (sealing updates rows, not these objects).
    """
    pending = session.info.pop(_PENDING, None)
    if not pending:
        return
    table = AuditEntry.__table__
    columns = [c.key for c in table.c if c.key != "id"]
    ids = session.execute(
        insert(table).returning(table.c.id, sort_by_parameter_order=True),
        [{key: getattr(entry, key) for key in columns} for entry in pending],
    ).scalars().all()
    for entry, entry_id in zip(pending, ids, strict=True):
        entry.id = entry_id
    for hook in on_insert:
        hook(session, pending)


@event.listens_for(Session, "after_transaction_end")
def _forget_pending(session, transaction):
    """A transaction that ended without committing takes its entries with it."""
    if transaction.parent is None:
        session.info.pop(_PENDING, None)


@dataclass
class SealResult:
    """What one `seal` run did."""

    sealed: int = 0
    refusals_flushed: int = 0
    skipped: bool = False  # another sealer was running
    blocked_at: int | None = None  # an unsealed entry whose content no longer matches its digest


def _take_seal_lock(session):
    """Whether this transaction is now the only sealer (PostgreSQL: try-lock; SQLite: waits for the write lock)."""
    if session.get_bind().dialect.name == "postgresql":
        return session.execute(text(f"SELECT {SEAL_LOCK_SQL}"), {"key": SEAL_LOCK}).scalar()
    # SQLite has one writer at a time: a write that touches no row takes the lock, so the
    # reads after it see every committed entry and no other sealer can interleave.
    session.execute(text("DELETE FROM audit_log WHERE 0 = 1"))
    return True


def _seal_batch(session, limit):
    """Seal up to limit entries in one transaction; returns (count, blocked id), or None if another sealer runs."""
    if not _take_seal_lock(session):
        return None
    last = session.execute(
        select(AuditEntry.seal_seq, AuditEntry.entry_hash)
        .where(AuditEntry.seal_seq.is_not(None)).order_by(AuditEntry.seal_seq.desc()).limit(1)
    ).first()
    seq, prev = (last.seal_seq, last.entry_hash) if last else (0, GENESIS)
    table = AuditEntry.__table__
    rows = session.execute(
        select(table).where(table.c.seal_seq.is_(None), table.c.digest.is_not(None))
        .order_by(table.c.id).limit(limit)
    ).all()
    links, blocked = [], None
    for row in rows:
        if content_digest(row) != row.digest:
            # Never launder a changed entry into the chain: stop before it, verify names it.
            blocked = row.id
            break
        seq += 1
        entry_hash = entry_digest(row, prev)
        links.append({"b_id": row.id, "seq": seq, "prev": prev, "hash": entry_hash})
        prev = entry_hash
    if links:
        session.execute(
            update(table).where(table.c.id == bindparam("b_id"), table.c.seal_seq.is_(None))
            .values(seal_seq=bindparam("seq"), prev_hash=bindparam("prev"), entry_hash=bindparam("hash")),
            links,
        )
    return len(links), blocked


def seal(limit=None, batch_size=SEAL_BATCH):
    """Link committed, unsealed entries into the hash chain (and first flush counted refusals).

    Safe to run anywhere at any time: one sealer works at a time, a second one
    on PostgreSQL skips (`skipped`), and each batch commits on its own, so a
    run that dies half-way leaves a valid, shorter chain. `limit` bounds the
    work (the settlement feed seals a bounded amount before each page). Commits
    the session: call it outside a unit of work of your own.
    """
    session = db.session
    session.commit()  # start from a clean transaction: the lock must be taken before the reads
    result = SealResult(refusals_flushed=flush_refusals())
    while limit is None or result.sealed < limit:
        size = batch_size if limit is None else min(batch_size, limit - result.sealed)
        try:
            outcome = _seal_batch(session, size)
        except Exception:
            session.rollback()
            raise
        session.commit()
        if outcome is None:
            result.skipped = True
            break
        count, result.blocked_at = outcome
        result.sealed += count
        if count < size or result.blocked_at is not None:
            break
    return result


@dataclass
class ChainReport:
    """What `audit verify` found."""

    checked: int = 0  # sealed entries whose place in the chain verifies
    unchained: int = 0  # entries written before the chain existed (no hashes, no digest)
    unsealed: int = 0  # entries whose own digest verifies, waiting for `seal`
    oldest_unsealed_at: datetime | None = None
    last_hash: str = GENESIS  # the chain's end: kept elsewhere, it shows whether the newest entries were cut off
    broken_at: int | None = None  # id of the first entry that does not verify
    reason: str | None = None

    @property
    def ok(self):
        """Whether every sealed entry verifies in the chain and every unsealed one against its digest."""
        return self.broken_at is None


def _batches(query, key, batch_size):
    """Rows of query in ascending key order, read in keyset pages."""
    last = None
    while True:
        page = query if last is None else query.where(key > last)
        rows = db.session.execute(page.order_by(key).limit(batch_size)).all()
        if not rows:
            return
        yield from rows
        last = getattr(rows[-1], key.key)


def verify_chain(batch_size=5000):
    """Recompute the sealed chain in seal order, then every unsealed entry's digest; stop at the first mismatch.

    Unsealed entries are counted (with the oldest one's time), not failed: they
    are waiting for `seal`, and their content is still checked against the
    digest written with them.
    """
    report = ChainReport()
    table = AuditEntry.__table__
    prev = GENESIS
    for entry in _batches(select(table).where(table.c.seal_seq.is_not(None)), table.c.seal_seq, batch_size):
        if entry.prev_hash != prev:
            reason = "previous-hash link does not match (an entry before it was removed or reordered)"
        elif entry.entry_hash is None or entry_digest(entry, prev) != entry.entry_hash:
            reason = "content does not match its hash (the entry was changed)"
        elif entry.digest is not None and content_digest(entry) != entry.digest:
            reason = "content does not match its digest (the entry was changed)"
        else:
            report.checked += 1
            prev = report.last_hash = entry.entry_hash
            continue
        report.broken_at, report.reason = entry.id, reason
        return report
    # Entries from before the chain existed have no digest and no hash; any later one must have a digest.
    chain_began = db.session.execute(
        select(func.min(table.c.id)).where((table.c.digest.is_not(None)) | (table.c.entry_hash.is_not(None)))
    ).scalar()
    for entry in _batches(select(table).where(table.c.seal_seq.is_(None)), table.c.id, batch_size):
        if entry.digest is None and entry.entry_hash is None and (chain_began is None or entry.id < chain_began):
            report.unchained += 1
            continue
        if entry.digest is None:
            reason = "entry has no digest after the chain began"
        elif entry.entry_hash is not None or entry.prev_hash is not None:
            reason = "entry has a hash but no place in the chain (it was taken out of it)"
        elif content_digest(entry) != entry.digest:
            reason = "content does not match its digest (the entry was changed)"
        else:
            report.unsealed += 1
            if report.oldest_unsealed_at is None or entry.at < report.oldest_unsealed_at:
                report.oldest_unsealed_at = entry.at
            continue
        report.broken_at, report.reason = entry.id, reason
        return report
    return report


# --- refusals of unauthenticated requests ----------------------------------------
#
# Anyone can send a kiosk request without a credential, a wrong API key or a
# badly signed webhook, as fast as they like: one audit entry each would let
# them fill the log and drown what matters. Such refusals are counted instead,
# one row per (minute, action, source address, subject, reason) upserted in
# audit_refusal_counts, and `seal` turns each finished minute's rows into one
# audit entry with the count. The log grows with the number of distinct
# sources and minutes, not with the number of requests, and the counts are
# exact: a row is deleted in the same transaction that writes its entry.

REFUSAL_WINDOW = timedelta(minutes=1)


class RefusalCount(db.Model):
    """Refusals of one kind from one source in one minute, not yet written to the audit log."""

    __tablename__ = "audit_refusal_counts"

    minute: Mapped[datetime] = mapped_column(UTCDateTime, primary_key=True)
    action: Mapped[str] = mapped_column(String(60), primary_key=True)
    source: Mapped[str] = mapped_column(String(64), primary_key=True)
    actor: Mapped[str] = mapped_column(String(100), primary_key=True)
    subject_type: Mapped[str] = mapped_column(String(40), primary_key=True)
    subject_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    reason: Mapped[str] = mapped_column(String(60), primary_key=True)
    count: Mapped[int] = mapped_column(Integer, nullable=False)


def _minute(moment):
    return moment.replace(second=0, microsecond=0)


def record_refusal(action, subject_type, subject_id="-", actor="anonymous", reason=""):
    """Count a refused unauthenticated request (one upsert, no audit entry of its own; see above).

    Keep subject_id to values an outsider cannot vary freely (a known
    terminal's or account's id, else "-"), so that the rows stay few. Commit
    the session afterwards, as for `record`.
    """
    source = ((request.remote_addr if has_request_context() else None) or "-")[:64]
    values = {"minute": _minute(utcnow()), "action": action, "source": source, "actor": actor[:100],
              "subject_type": subject_type, "subject_id": str(subject_id)[:64], "reason": reason[:60], "count": 1}
    insert = pg_insert if db.session.get_bind().dialect.name == "postgresql" else sqlite_insert
    table = RefusalCount.__table__
    statement = insert(table).values(**values)
    db.session.execute(statement.on_conflict_do_update(
        index_elements=[c.name for c in table.primary_key.columns],
        set_={"count": table.c.count + 1},
    ))


def flush_refusals(include_current=False):
    """Write each counted (minute, kind, source) as one audit entry with its count; returns how many were written.

    Only finished minutes are written unless include_current; a refusal
    counted after its minute was written starts a fresh row, written next time.
    Commits the session.
    """
    table = RefusalCount.__table__
    cutoff = _minute(utcnow()) + (REFUSAL_WINDOW if include_current else timedelta(0))
    # DELETE ... RETURNING takes exactly the rows it reports: a concurrent upsert either
    # counted into one of them or makes a new row, never a lost count.
    rows = db.session.execute(delete(table).where(table.c.minute < cutoff).returning(*table.columns)).all()
    for row in sorted(rows, key=lambda r: (r.minute, r.action, r.source)):
        details = {"count": row.count, "minute": row.minute.isoformat(), "aggregated": True}
        if row.reason:
            details["reason"] = row.reason
        _queue(_new_entry(row.action, row.subject_type, row.subject_id, row.actor, details,
                          None if row.source == "-" else row.source))
    db.session.commit()
    return len(rows)
