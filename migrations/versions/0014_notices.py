"""Reminders: subscriptions of a mobile number to a vehicle, and the messages sent to them

Revision ID: 0014_notices
Revises: 0014_ereceipts
Create Date: 2026-11-30 15:30:00.000000

Hand-checked: two new tables, the same on SQLite and PostgreSQL. uq_notice_once
is what makes each reminder go out once, however many `notices send` run.
"""
from alembic import op
import sqlalchemy as sa



# revision identifiers, used by Alembic.
revision = '0014_notices'
down_revision = '0014_ereceipts'
branch_labels = None
depends_on = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def upgrade():
    op.create_table(
        'notice_subscriptions',
        sa.Column('id', BIG_ID, nullable=False),
        sa.Column('plate', sa.String(length=16), nullable=False),
        sa.Column('vin_last6', sa.String(length=6), nullable=False),
        sa.Column('phone', sa.String(length=11), nullable=False),
        sa.Column('locale', sa.String(length=8), nullable=False),
        sa.Column('status', sa.String(length=8), nullable=False),
        sa.Column('code_hash', sa.String(length=64), nullable=True),
        sa.Column('code_expires_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('code_attempts', sa.Integer(), nullable=False),
        sa.Column('confirmed_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('stopped_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('stopped_by', sa.String(length=16), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("status IN ('pending', 'active', 'stopped')", name=op.f('ck_notice_subscriptions_status')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_notice_subscriptions')),
        sa.UniqueConstraint('plate', 'vin_last6', 'phone', name='uq_notice_subscriptions_vehicle_phone'),
    )
    op.create_index('ix_notice_subscriptions_phone', 'notice_subscriptions', ['phone'])
    op.create_table(
        'notice_messages',
        sa.Column('id', BIG_ID, nullable=False),
        sa.Column('subscription_id', BIG_ID, nullable=False),
        sa.Column('violation_id', BIG_ID, nullable=True),
        sa.Column('kind', sa.String(length=16), nullable=False),
        sa.Column('phone', sa.String(length=11), nullable=False),
        sa.Column('locale', sa.String(length=8), nullable=False),
        sa.Column('body', sa.Text(), nullable=False),
        sa.Column('params', sa.Text(), nullable=False),
        sa.Column('status', sa.String(length=10), nullable=False),
        sa.Column('sender', sa.String(length=32), nullable=False),
        sa.Column('attempts', sa.Integer(), nullable=False),
        sa.Column('next_attempt_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('hold_reason', sa.String(length=16), nullable=True),
        sa.Column('claim_token', sa.String(length=32), nullable=True),
        sa.Column('claimed_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('cap_day', sa.Date(), nullable=True),
        sa.Column('sent_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('provider_message_id', sa.String(length=100), nullable=True),
        sa.Column('last_error', sa.String(length=300), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("kind IN ('code', 'new_violation', 'due_soon', 'late_fee_starts')",
                           name=op.f('ck_notice_messages_kind')),
        sa.CheckConstraint("status IN ('queued', 'held', 'sending', 'sent', 'retrying', 'unknown', 'failed', "
                           "'canceled')", name=op.f('ck_notice_messages_status')),
        sa.ForeignKeyConstraint(['subscription_id'], ['notice_subscriptions.id'],
                                name=op.f('fk_notice_messages_subscription_id_notice_subscriptions')),
        sa.ForeignKeyConstraint(['violation_id'], ['violations.id'],
                                name=op.f('fk_notice_messages_violation_id_violations')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_notice_messages')),
        sa.UniqueConstraint('subscription_id', 'violation_id', 'kind', name='uq_notice_once'),
    )
    op.create_index('ix_notice_messages_status_next', 'notice_messages', ['status', 'next_attempt_at'])
    op.create_index('ix_notice_messages_phone_day', 'notice_messages', ['phone', 'cap_day'])


def downgrade():
    op.drop_index('ix_notice_messages_phone_day', table_name='notice_messages')
    op.drop_index('ix_notice_messages_status_next', table_name='notice_messages')
    op.drop_table('notice_messages')
    op.drop_index('ix_notice_subscriptions_phone', table_name='notice_subscriptions')
    op.drop_table('notice_subscriptions')
