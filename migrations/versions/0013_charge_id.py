"""Payments keep the gateway's transaction number (its charge id) for the receipt

Revision ID: 0013_charge_id
Revises: 0012_gateway_fees
Create Date: 2026-11-30 13:00:00.000000

Hand-checked: one nullable column, the same on SQLite and PostgreSQL. Payments
settled before it show their gateway intent id on the receipt instead.
"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0013_charge_id'
down_revision = '0012_gateway_fees'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('payments') as batch_op:
        batch_op.add_column(sa.Column('gateway_charge_id', sa.String(length=100), nullable=True))


def downgrade():
    with op.batch_alter_table('payments') as batch_op:
        batch_op.drop_column('gateway_charge_id')
