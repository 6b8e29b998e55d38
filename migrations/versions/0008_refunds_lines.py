"""Refunds are allocated to violation lines; a refused refund keeps its reason

Revision ID: 0007_refunds
Revises: 0007_sessions
Create Date: 2026-11-30 05:00:00.000000

Hand-checked, the same on SQLite and PostgreSQL:
- refund_lines: how much of each refund went back for each payment item;
- refunds.failure_code / failure_message: why the gateway refused a refund
  (status ``failed``, never retried);
- payment_items.released_at: when a refund of the whole line made the
  violation owed again. Filled for lines an earlier (unallocated) staff refund
  had already released, so that their receipts keep saying so.

Refunds made before this revision have no lines: they are read as allocated
in the stated order (money captured beyond the amount due first, then the
lines top to bottom), which is how an amount-only refund is allocated now.
"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0007_refunds'
down_revision = '0007_sessions'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('refund_lines',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('refund_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('payment_item_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('amount', sa.BigInteger(), nullable=False),
    sa.ForeignKeyConstraint(['payment_item_id'], ['payment_items.id'], name=op.f('fk_refund_lines_payment_item_id_payment_items')),
    sa.ForeignKeyConstraint(['refund_id'], ['refunds.id'], name=op.f('fk_refund_lines_refund_id_refunds')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_refund_lines')),
    sa.UniqueConstraint('refund_id', 'payment_item_id', name='uq_refund_lines_refund_item')
    )
    with op.batch_alter_table('refund_lines', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_refund_lines_refund_id'), ['refund_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_refund_lines_payment_item_id'), ['payment_item_id'], unique=False)

    # Plain ADD COLUMN on both databases (no table copy on SQLite).
    op.add_column('refunds', sa.Column('failure_code', sa.String(length=40), nullable=True))
    op.add_column('refunds', sa.Column('failure_message', sa.String(length=500), nullable=True))
    op.add_column('payment_items', sa.Column('released_at', sa.DateTime(timezone=True), nullable=True))

    items = sa.table('payment_items', sa.column('payment_id', sa.String), sa.column('settled', sa.Boolean),
                     sa.column('released_at', sa.DateTime(timezone=True)))
    refunds = sa.table('refunds', sa.column('payment_id', sa.String), sa.column('automatic', sa.Boolean),
                       sa.column('status', sa.String), sa.column('created_at', sa.DateTime(timezone=True)))
    staff_refund = sa.select(sa.func.min(refunds.c.created_at)).where(
        refunds.c.payment_id == items.c.payment_id, refunds.c.automatic == sa.false(),
        refunds.c.status == 'succeeded',
    ).scalar_subquery()
    op.execute(items.update().where(items.c.settled == sa.false()).values(released_at=staff_refund))


def downgrade():
    with op.batch_alter_table('payment_items', schema=None) as batch_op:
        batch_op.drop_column('released_at')
    with op.batch_alter_table('refunds', schema=None) as batch_op:
        batch_op.drop_column('failure_message')
        batch_op.drop_column('failure_code')
    with op.batch_alter_table('refund_lines', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_refund_lines_payment_item_id'))
        batch_op.drop_index(batch_op.f('ix_refund_lines_refund_id'))
    op.drop_table('refund_lines')
