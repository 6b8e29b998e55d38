"""The audit chain is sealed in a separate step; refusals of unauthenticated requests are counted

Revision ID: 0007_audit
Revises: 0007_refunds
Create Date: 2026-11-30 05:00:00.000000

Hand-written. audit_log gains `digest` (each entry's own content hash, written
with it) and `seal_seq` (its place in the chain, set by `flask audit seal`).
Entries already chained keep their hashes and get seal_seq = id, the order
they were chained in, so settlement-feed cursors handed out before stay valid.
The append-only triggers now allow exactly one update: sealing an unsealed
entry (chain columns from NULL to set, every other column unchanged).

Not expand-only: code from before this release chains entries itself and
would write entries the new verifier reports as broken, so upgrade every app
server together with the migration (a short pause of writes). Downgrading
needs every entry sealed (run `flask audit seal` first); the old verifier
walks ids, so entries sealed out of id order then read as reordered.
"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0007_audit'
down_revision = '0007_refunds'
branch_labels = None
depends_on = None

# Columns that sealing must leave as they are.
CONTENT = ("id", "at", "actor", "action", "subject_type", "subject_id", "remote_addr", "request_id", "digest")

PG_APPEND_ONLY_WITH_SEALING = """
CREATE OR REPLACE FUNCTION audit_log_append_only() RETURNS trigger AS $$
BEGIN
    -- The one change allowed: sealing an entry gives it its place in the chain, nothing else.
    IF TG_OP = 'UPDATE'
       AND OLD.seal_seq IS NULL AND OLD.prev_hash IS NULL AND OLD.entry_hash IS NULL AND OLD.digest IS NOT NULL
       AND NEW.seal_seq IS NOT NULL AND NEW.prev_hash IS NOT NULL AND NEW.entry_hash IS NOT NULL
       AND ({new}, NEW.details::text) IS NOT DISTINCT FROM ({old}, OLD.details::text)
    THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'audit_log is append-only';
END;
$$ LANGUAGE plpgsql
""".format(new=", ".join(f"NEW.{c}" for c in CONTENT), old=", ".join(f"OLD.{c}" for c in CONTENT))

PG_APPEND_ONLY = """
CREATE OR REPLACE FUNCTION audit_log_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only';
END;
$$ LANGUAGE plpgsql
"""

SQLITE_NO_UPDATE_EXCEPT_SEALING = """
CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
WHEN NOT (
    OLD.seal_seq IS NULL AND OLD.prev_hash IS NULL AND OLD.entry_hash IS NULL AND OLD.digest IS NOT NULL
    AND NEW.seal_seq IS NOT NULL AND NEW.prev_hash IS NOT NULL AND NEW.entry_hash IS NOT NULL
    AND {same} AND NEW.details IS OLD.details
)
BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END
""".format(same=" AND ".join(f"NEW.{c} IS OLD.{c}" for c in CONTENT))

SQLITE_NO_UPDATE = ("CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log "
                    "BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END")


def upgrade():
    postgresql = op.get_bind().dialect.name == "postgresql"
    with op.batch_alter_table('audit_log', schema=None) as batch_op:
        batch_op.add_column(sa.Column('digest', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('seal_seq', sa.BigInteger(), nullable=True))
    # Number the existing chain in the order it was built (the old triggers refuse any update).
    if postgresql:
        op.execute("ALTER TABLE audit_log DISABLE TRIGGER audit_log_append_only")
        op.execute("UPDATE audit_log SET seal_seq = id WHERE entry_hash IS NOT NULL")
        op.execute("ALTER TABLE audit_log ENABLE TRIGGER audit_log_append_only")
        op.execute(PG_APPEND_ONLY_WITH_SEALING)
    else:
        op.execute("DROP TRIGGER audit_log_no_update")
        op.execute("UPDATE audit_log SET seal_seq = id WHERE entry_hash IS NOT NULL")
        op.execute(SQLITE_NO_UPDATE_EXCEPT_SEALING)
    with op.batch_alter_table('audit_log', schema=None) as batch_op:
        batch_op.create_index('ix_audit_log_seal_seq', ['seal_seq'], unique=True)

    op.create_table('audit_refusal_counts',
    sa.Column('minute', sa.DateTime(timezone=True), nullable=False),
    sa.Column('action', sa.String(length=60), nullable=False),
    sa.Column('source', sa.String(length=64), nullable=False),
    sa.Column('actor', sa.String(length=100), nullable=False),
    sa.Column('subject_type', sa.String(length=40), nullable=False),
    sa.Column('subject_id', sa.String(length=64), nullable=False),
    sa.Column('reason', sa.String(length=60), nullable=False),
    sa.Column('count', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('minute', 'action', 'source', 'actor', 'subject_type', 'subject_id', 'reason',
                            name=op.f('pk_audit_refusal_counts'))
    )


def downgrade():
    postgresql = op.get_bind().dialect.name == "postgresql"
    unsealed = op.get_bind().execute(sa.text(
        "SELECT count(*) FROM audit_log WHERE seal_seq IS NULL AND digest IS NOT NULL")).scalar()
    if unsealed:
        raise RuntimeError(f"{unsealed} audit entries are not sealed yet: run `flask audit seal` first")
    op.drop_table('audit_refusal_counts')
    if postgresql:
        op.execute(PG_APPEND_ONLY)
    else:
        op.execute("DROP TRIGGER audit_log_no_update")
        op.execute(SQLITE_NO_UPDATE)
    with op.batch_alter_table('audit_log', schema=None) as batch_op:
        batch_op.drop_index('ix_audit_log_seal_seq')
    if not postgresql:
        # Batch mode rebuilds the table to drop columns; the rebuild must not meet the triggers.
        op.execute("DROP TRIGGER audit_log_no_update")
        op.execute("DROP TRIGGER audit_log_no_delete")
    with op.batch_alter_table('audit_log', schema=None) as batch_op:
        batch_op.drop_column('seal_seq')
        batch_op.drop_column('digest')
    if not postgresql:
        for event in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER audit_log_no_{event.lower()} BEFORE {event} ON audit_log "
                "BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END"
            )
