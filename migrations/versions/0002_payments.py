"""Payments, refunds, webhook events and the sandbox gateway's ledger

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27 01:25:58.458841

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('payments',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('amount', sa.BigInteger(), nullable=False),
    sa.Column('convenience_fee', sa.BigInteger(), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('plate', sa.String(length=16), nullable=False),
    sa.Column('vin_last6', sa.String(length=6), nullable=False),
    sa.Column('channel', sa.String(length=10), nullable=False),
    sa.Column('terminal_id', sa.Integer(), nullable=True),
    sa.Column('gateway', sa.String(length=30), nullable=False),
    sa.Column('gateway_intent_id', sa.String(length=100), nullable=True),
    sa.Column('client_secret', sa.String(length=200), nullable=True),
    sa.Column('next_action_url', sa.String(length=500), nullable=True),
    sa.Column('idempotency_key', sa.String(length=100), nullable=False),
    sa.Column('request_fingerprint', sa.String(length=64), nullable=False),
    sa.Column('confirm_attempts', sa.Integer(), nullable=False),
    sa.Column('amount_received', sa.BigInteger(), nullable=False),
    sa.Column('failure_code', sa.String(length=40), nullable=True),
    sa.Column('receipt_number', sa.String(length=32), nullable=True),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('paid_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_payments')),
    sa.UniqueConstraint('gateway_intent_id', name=op.f('uq_payments_gateway_intent_id')),
    sa.UniqueConstraint('idempotency_key', name=op.f('uq_payments_idempotency_key')),
    sa.UniqueConstraint('receipt_number', name=op.f('uq_payments_receipt_number'))
    )
    with op.batch_alter_table('payments', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_payments_created_at'), ['created_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_payments_status'), ['status'], unique=False)

    op.create_table('sandbox_intents',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('payment_id', sa.String(length=32), nullable=True),
    sa.Column('status', sa.String(length=30), nullable=False),
    sa.Column('amount', sa.BigInteger(), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('amount_received', sa.BigInteger(), nullable=False),
    sa.Column('payment_method', sa.String(length=60), nullable=True),
    sa.Column('failure_code', sa.String(length=40), nullable=True),
    sa.Column('charge_id', sa.String(length=40), nullable=True),
    sa.Column('client_secret', sa.String(length=80), nullable=False),
    sa.Column('captured_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_sandbox_intents'))
    )
    with op.batch_alter_table('sandbox_intents', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_sandbox_intents_captured_at'), ['captured_at'], unique=False)

    op.create_table('sandbox_operations',
    sa.Column('idempotency_key', sa.String(length=150), nullable=False),
    sa.Column('result_id', sa.String(length=40), nullable=False),
    sa.PrimaryKeyConstraint('idempotency_key', name=op.f('pk_sandbox_operations'))
    )
    op.create_table('webhook_events',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('gateway', sa.String(length=30), nullable=False),
    sa.Column('event_id', sa.String(length=100), nullable=False),
    sa.Column('type', sa.String(length=100), nullable=False),
    sa.Column('received_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_webhook_events')),
    sa.UniqueConstraint('gateway', 'event_id', name='uq_webhook_events_gateway_event')
    )
    op.create_table('payment_items',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('payment_id', sa.String(length=32), nullable=False),
    sa.Column('violation_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('fine', sa.BigInteger(), nullable=False),
    sa.Column('late_fee', sa.BigInteger(), nullable=False),
    sa.Column('holds', sa.Boolean(), nullable=True),
    sa.Column('settled', sa.Boolean(), nullable=True),
    sa.ForeignKeyConstraint(['payment_id'], ['payments.id'], name=op.f('fk_payment_items_payment_id_payments')),
    sa.ForeignKeyConstraint(['violation_id'], ['violations.id'], name=op.f('fk_payment_items_violation_id_violations')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_payment_items'))
    )
    with op.batch_alter_table('payment_items', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_payment_items_payment_id'), ['payment_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_payment_items_violation_id'), ['violation_id'], unique=False)
        batch_op.create_index('uq_payment_items_open_violation', ['violation_id'], unique=True, sqlite_where=sa.text('holds'), postgresql_where=sa.text('holds'))

    op.create_table('refunds',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('payment_id', sa.String(length=32), nullable=False),
    sa.Column('amount', sa.BigInteger(), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('reason', sa.String(length=500), nullable=False),
    sa.Column('automatic', sa.Boolean(), nullable=False),
    sa.Column('status', sa.String(length=10), nullable=False),
    sa.Column('gateway_refund_id', sa.String(length=100), nullable=True),
    sa.Column('idempotency_key', sa.String(length=100), nullable=False),
    sa.Column('actor', sa.String(length=100), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['payment_id'], ['payments.id'], name=op.f('fk_refunds_payment_id_payments')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_refunds')),
    sa.UniqueConstraint('idempotency_key', name=op.f('uq_refunds_idempotency_key'))
    )
    with op.batch_alter_table('refunds', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_refunds_created_at'), ['created_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_refunds_payment_id'), ['payment_id'], unique=False)

    op.create_table('sandbox_refunds',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('intent_id', sa.String(length=40), nullable=False),
    sa.Column('amount', sa.BigInteger(), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['intent_id'], ['sandbox_intents.id'], name=op.f('fk_sandbox_refunds_intent_id_sandbox_intents')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_sandbox_refunds'))
    )
    with op.batch_alter_table('sandbox_refunds', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_sandbox_refunds_created_at'), ['created_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_sandbox_refunds_intent_id'), ['intent_id'], unique=False)



def downgrade():
    with op.batch_alter_table('sandbox_refunds', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_sandbox_refunds_intent_id'))
        batch_op.drop_index(batch_op.f('ix_sandbox_refunds_created_at'))

    op.drop_table('sandbox_refunds')
    with op.batch_alter_table('refunds', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_refunds_payment_id'))
        batch_op.drop_index(batch_op.f('ix_refunds_created_at'))

    op.drop_table('refunds')
    with op.batch_alter_table('payment_items', schema=None) as batch_op:
        batch_op.drop_index('uq_payment_items_open_violation', sqlite_where=sa.text('holds'), postgresql_where=sa.text('holds'))
        batch_op.drop_index(batch_op.f('ix_payment_items_violation_id'))
        batch_op.drop_index(batch_op.f('ix_payment_items_payment_id'))

    op.drop_table('payment_items')
    op.drop_table('webhook_events')
    op.drop_table('sandbox_operations')
    with op.batch_alter_table('sandbox_intents', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_sandbox_intents_captured_at'))

    op.drop_table('sandbox_intents')
    with op.batch_alter_table('payments', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_payments_status'))
        batch_op.drop_index(batch_op.f('ix_payments_created_at'))

    op.drop_table('payments')
