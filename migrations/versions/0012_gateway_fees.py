"""Gateway records carry the gateway's fee, for the net settlement per gateway

Revision ID: 0012_gateway_fees
Revises: 0011_alipay
Create Date: 2026-11-30 12:00:00.000000

Hand-written, the same on SQLite and PostgreSQL. gateway_records.fee: the
fee the gateway took on a line, in minor units (a refund line may carry a
negative fee: the part of the fee returned). Records fetched before this
revision read 0 until fetched again. Expand-only: code from before ignores
the column.
"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0012_gateway_fees'
down_revision = '0011_alipay'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('gateway_records') as batch:
        batch.add_column(sa.Column('fee', sa.BigInteger(), server_default=sa.text('0'), nullable=False))


def downgrade():
    with op.batch_alter_table('gateway_records') as batch:
        batch.drop_column('fee')
