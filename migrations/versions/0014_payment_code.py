"""Violations may carry the finance bureau's 20-digit payment code (缴款码)

Revision ID: 0014_payment_code
Revises: 0014_notices
Create Date: 2026-11-30 15:30:00.000000

Hand-checked: one nullable column with a unique constraint (NULLs do not
collide), the same on SQLite (batch copy) and PostgreSQL. Violations imported
before it have no payment code; a later import may add one.
"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0014_payment_code'
down_revision = '0014_notices'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('violations') as batch_op:
        batch_op.add_column(sa.Column('payment_code', sa.String(length=20), nullable=True))
        batch_op.create_unique_constraint(batch_op.f('uq_violations_payment_code'), ['payment_code'])


def downgrade():
    with op.batch_alter_table('violations') as batch_op:
        batch_op.drop_constraint(batch_op.f('uq_violations_payment_code'), type_='unique')
        batch_op.drop_column('payment_code')
