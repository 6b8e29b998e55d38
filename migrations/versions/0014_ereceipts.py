"""Official e-receipts (财政电子票据): FinePay's requests and records, and the sandbox issuer's ledger

Revision ID: 0014_ereceipts
Revises: 0014_cases
Create Date: 2026-11-30 15:20:00.000000

Hand-checked: three new tables, the same on SQLite and PostgreSQL. Payments
settled before it have no e-receipt request; none is made for them.
"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0014_ereceipts'
down_revision = '0014_cases'
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def upgrade():
    op.create_table('ereceipt_requests',
    sa.Column('id', BigId, nullable=False),
    sa.Column('payment_id', sa.String(length=32), nullable=False),
    sa.Column('refund_id', BigId, nullable=True),
    sa.Column('idempotency_key', sa.String(length=100), nullable=False),
    sa.Column('status', sa.String(length=10), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('next_try_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('claimed_until', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_error', sa.String(length=100), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('done_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['payment_id'], ['payments.id'], name=op.f('fk_ereceipt_requests_payment_id_payments')),
    sa.ForeignKeyConstraint(['refund_id'], ['refunds.id'], name=op.f('fk_ereceipt_requests_refund_id_refunds')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_ereceipt_requests')),
    sa.UniqueConstraint('idempotency_key', name=op.f('uq_ereceipt_requests_idempotency_key'))
    )
    with op.batch_alter_table('ereceipt_requests', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_ereceipt_requests_payment_id'), ['payment_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_ereceipt_requests_status'), ['status'], unique=False)

    op.create_table('ereceipts',
    sa.Column('id', BigId, nullable=False),
    sa.Column('payment_id', sa.String(length=32), nullable=False),
    sa.Column('request_id', BigId, nullable=False),
    sa.Column('kind', sa.String(length=4), nullable=False),
    sa.Column('issuer', sa.String(length=30), nullable=False),
    sa.Column('code', sa.String(length=8), nullable=False),
    sa.Column('number', sa.String(length=10), nullable=False),
    sa.Column('check_code', sa.String(length=6), nullable=False),
    sa.Column('issued_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('amount', sa.BigInteger(), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('payer', sa.String(length=32), nullable=False),
    sa.Column('authority', sa.String(length=200), nullable=False),
    sa.Column('items', sa.JSON(), nullable=False),
    sa.Column('verification_url', sa.String(length=500), nullable=False),
    sa.Column('flushes_id', BigId, nullable=True),
    sa.Column('simulated', sa.Boolean(), nullable=False),
    sa.ForeignKeyConstraint(['flushes_id'], ['ereceipts.id'], name=op.f('fk_ereceipts_flushes_id_ereceipts')),
    sa.ForeignKeyConstraint(['payment_id'], ['payments.id'], name=op.f('fk_ereceipts_payment_id_payments')),
    sa.ForeignKeyConstraint(['request_id'], ['ereceipt_requests.id'],
                            name=op.f('fk_ereceipts_request_id_ereceipt_requests')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_ereceipts')),
    sa.UniqueConstraint('issuer', 'code', 'number', name='uq_ereceipts_issuer_code_number'),
    sa.UniqueConstraint('request_id', 'kind', name='uq_ereceipts_request_kind')
    )
    with op.batch_alter_table('ereceipts', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_ereceipts_payment_id'), ['payment_id'], unique=False)

    op.create_table('sandbox_ereceipts',
    sa.Column('id', BigId, nullable=False),
    sa.Column('idempotency_key', sa.String(length=150), nullable=False),
    sa.Column('kind', sa.String(length=4), nullable=False),
    sa.Column('code', sa.String(length=8), nullable=False),
    sa.Column('number', sa.String(length=10), nullable=False),
    sa.Column('check_code', sa.String(length=6), nullable=False),
    sa.Column('payer', sa.String(length=32), nullable=False),
    sa.Column('authority', sa.String(length=200), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('items', sa.JSON(), nullable=False),
    sa.Column('payment_id', sa.String(length=32), nullable=True),
    sa.Column('flushes_code', sa.String(length=8), nullable=True),
    sa.Column('flushes_number', sa.String(length=10), nullable=True),
    sa.Column('red_flushed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('issued_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_sandbox_ereceipts')),
    sa.UniqueConstraint('code', 'number', name='uq_sandbox_ereceipts_code_number'),
    sa.UniqueConstraint('idempotency_key', name=op.f('uq_sandbox_ereceipts_idempotency_key'))
    )


def downgrade():
    op.drop_table('sandbox_ereceipts')
    with op.batch_alter_table('ereceipts', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_ereceipts_payment_id'))
    op.drop_table('ereceipts')
    with op.batch_alter_table('ereceipt_requests', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_ereceipt_requests_status'))
        batch_op.drop_index(batch_op.f('ix_ereceipt_requests_payment_id'))
    op.drop_table('ereceipt_requests')
