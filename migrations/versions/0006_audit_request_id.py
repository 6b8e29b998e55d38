"""Audit entries remember the request that wrote them (the X-Request-ID in the JSON logs)

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-28 01:00:00.000000

Hand-checked: one nullable column and its index, the same on SQLite and
PostgreSQL. The column is not part of the hash chain: it correlates an entry
with the logs, it is not evidence of what happened.
"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('audit_log', schema=None) as batch_op:
        batch_op.add_column(sa.Column('request_id', sa.String(length=64), nullable=True))
        batch_op.create_index('ix_audit_log_request_id', ['request_id'], unique=False)


def downgrade():
    with op.batch_alter_table('audit_log', schema=None) as batch_op:
        batch_op.drop_index('ix_audit_log_request_id')
        batch_op.drop_column('request_id')
