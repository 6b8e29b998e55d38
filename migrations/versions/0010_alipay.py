"""The Alipay adapter's ledger: its trades and the refunds asked for them

Revision ID: 0010_alipay
Revises: 0007_audit
Create Date: 2026-11-30 12:00:00.000000

Hand-checked: two new tables, the same on SQLite and PostgreSQL.
"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0010_alipay'
down_revision = '0007_audit'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('alipay_trades',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('payment_id', sa.String(length=32), nullable=False),
    sa.Column('amount', sa.BigInteger(), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('subject', sa.String(length=256), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('qr_code', sa.String(length=512), nullable=True),
    sa.Column('closed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_alipay_trades'))
    )
    with op.batch_alter_table('alipay_trades', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_alipay_trades_payment_id'), ['payment_id'], unique=False)

    op.create_table('alipay_refunds',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('trade_id', sa.String(length=64), nullable=False),
    sa.Column('amount', sa.BigInteger(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['trade_id'], ['alipay_trades.id'],
                            name=op.f('fk_alipay_refunds_trade_id_alipay_trades')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_alipay_refunds'))
    )
    with op.batch_alter_table('alipay_refunds', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_alipay_refunds_trade_id'), ['trade_id'], unique=False)


def downgrade():
    with op.batch_alter_table('alipay_refunds', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_alipay_refunds_trade_id'))

    op.drop_table('alipay_refunds')
    with op.batch_alter_table('alipay_trades', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_alipay_trades_payment_id'))

    op.drop_table('alipay_trades')
