"""Staff console: indexes for the daily reconciliation (payments by paid_at, unsettled items) and search (payments by plate)

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-27 03:00:00.000000

Hand-checked: two plain indexes on payments and one partial index on
payment_items (the rare items a payment did not settle), the same on SQLite
and PostgreSQL; the staff tables themselves were created by 0003.
"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('payments', schema=None) as batch_op:
        batch_op.create_index('ix_payments_paid_at', ['paid_at'], unique=False)
        batch_op.create_index('ix_payments_plate', ['plate'], unique=False)
    with op.batch_alter_table('payment_items', schema=None) as batch_op:
        batch_op.create_index('ix_payment_items_unsettled', ['payment_id'], unique=False,
                              sqlite_where=sa.text('settled IS 0'), postgresql_where=sa.text('settled IS false'))


def downgrade():
    with op.batch_alter_table('payment_items', schema=None) as batch_op:
        batch_op.drop_index('ix_payment_items_unsettled', sqlite_where=sa.text('settled IS 0'),
                            postgresql_where=sa.text('settled IS false'))
    with op.batch_alter_table('payments', schema=None) as batch_op:
        batch_op.drop_index('ix_payments_plate')
        batch_op.drop_index('ix_payments_paid_at')
