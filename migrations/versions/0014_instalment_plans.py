"""Instalment plans: a supervisor splits a violation's amount into instalments, each paid as a payment item

Revision ID: 0014_instalment_plans
Revises: 0013_charge_id
Create Date: 2026-11-30 15:30:00.000000

Hand-checked against the models (tests/violations/test_instalment_migration.py
compares them): two new tables, and payment_items gains a nullable
instalment_id with a partial unique index so that an instalment is settled by
at most one payment line, on SQLite and PostgreSQL alike.
"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0014_instalment_plans'
down_revision = '0013_charge_id'
branch_labels = None
depends_on = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def upgrade():
    op.create_table('instalment_plans',
    sa.Column('id', BIG_ID, nullable=False),
    sa.Column('violation_id', BIG_ID, nullable=False),
    sa.Column('fine', sa.BigInteger(), nullable=False),
    sa.Column('late_fee', sa.BigInteger(), nullable=False),
    sa.Column('approved_on', sa.Date(), nullable=False),
    sa.Column('approved_by', sa.String(length=100), nullable=False),
    sa.Column('approved_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint('fine > 0', name=op.f('ck_instalment_plans_plan_fine_positive')),
    sa.CheckConstraint('late_fee >= 0', name=op.f('ck_instalment_plans_plan_late_fee_not_negative')),
    sa.ForeignKeyConstraint(['violation_id'], ['violations.id'],
                            name=op.f('fk_instalment_plans_violation_id_violations')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_instalment_plans')),
    sa.UniqueConstraint('violation_id', name=op.f('uq_instalment_plans_violation_id'))
    )
    op.create_table('instalments',
    sa.Column('id', BIG_ID, nullable=False),
    sa.Column('plan_id', BIG_ID, nullable=False),
    sa.Column('number', sa.SmallInteger(), nullable=False),
    sa.Column('amount', sa.BigInteger(), nullable=False),
    sa.Column('due_date', sa.Date(), nullable=False),
    sa.Column('status', sa.String(length=8), nullable=False),
    sa.Column('late_fee_paid', sa.BigInteger(), nullable=True),
    sa.Column('paid_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('receipt_number', sa.String(length=32), nullable=True),
    sa.CheckConstraint("status IN ('unpaid', 'paid')", name=op.f('ck_instalments_instalment_status')),
    sa.CheckConstraint('amount > 0', name=op.f('ck_instalments_instalment_amount_positive')),
    sa.ForeignKeyConstraint(['plan_id'], ['instalment_plans.id'], name=op.f('fk_instalments_plan_id_instalment_plans')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_instalments')),
    sa.UniqueConstraint('plan_id', 'number', name='uq_instalments_plan_number')
    )
    with op.batch_alter_table('payment_items') as batch_op:
        batch_op.add_column(sa.Column('instalment_id', BIG_ID, nullable=True))
        batch_op.create_foreign_key(batch_op.f('fk_payment_items_instalment_id_instalments'), 'instalments',
                                    ['instalment_id'], ['id'])
        batch_op.create_index('uq_payment_items_settled_instalment', ['instalment_id'], unique=True,
                              sqlite_where=sa.text('settled'), postgresql_where=sa.text('settled'))


def downgrade():
    with op.batch_alter_table('payment_items') as batch_op:
        batch_op.drop_index('uq_payment_items_settled_instalment', sqlite_where=sa.text('settled'),
                            postgresql_where=sa.text('settled'))
        batch_op.drop_constraint(batch_op.f('fk_payment_items_instalment_id_instalments'), type_='foreignkey')
        batch_op.drop_column('instalment_id')
    op.drop_table('instalments')
    op.drop_table('instalment_plans')
