"""WeChat Pay's ledger: each intent and the order open for it at WeChat Pay

Revision ID: 0010_wechatpay
Revises: 0010_alipay
Create Date: 2026-11-30 12:00:00.000000

Hand-checked: one new table, the same on SQLite and PostgreSQL. Expand-only:
code from before this release never reads it.
"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0010_wechatpay'
down_revision = '0010_alipay'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('wechatpay_orders',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('payment_id', sa.String(length=32), nullable=False),
    sa.Column('amount', sa.BigInteger(), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('description', sa.String(length=127), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('out_trade_no', sa.String(length=32), nullable=True),
    sa.Column('trade_type', sa.String(length=10), nullable=True),
    sa.Column('openid', sa.String(length=128), nullable=True),
    sa.Column('code_url', sa.String(length=500), nullable=True),
    sa.Column('h5_url', sa.String(length=500), nullable=True),
    sa.Column('prepay_id', sa.String(length=64), nullable=True),
    sa.Column('orders_placed', sa.Integer(), nullable=False),
    sa.Column('canceled', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_wechatpay_orders')),
    sa.UniqueConstraint('out_trade_no', name=op.f('uq_wechatpay_orders_out_trade_no'))
    )
    with op.batch_alter_table('wechatpay_orders', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_wechatpay_orders_payment_id'), ['payment_id'], unique=False)


def downgrade():
    with op.batch_alter_table('wechatpay_orders', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_wechatpay_orders_payment_id'))

    op.drop_table('wechatpay_orders')
