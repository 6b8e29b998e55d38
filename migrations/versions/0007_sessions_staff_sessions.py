"""Staff sessions kept on the server, so that sign-out, account changes and time end them for good

Revision ID: 0007_sessions
Revises: 0006
Create Date: 2026-11-30 05:00:00.000000

Hand-checked: one new table, the same on SQLite and PostgreSQL. Sessions
signed in before this migration carry no server-side token, so they end and
their staff sign in again once.
"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0007_sessions'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'staff_sessions',
        sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
        sa.Column('token_hash', sa.String(length=64), nullable=False),
        sa.Column('user_id', sa.Integer(), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('last_seen_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('revoked_reason', sa.String(length=40), nullable=True),
        sa.Column('remote_addr', sa.String(length=64), nullable=True),
        sa.Column('user_agent', sa.String(length=200), nullable=True),
        sa.ForeignKeyConstraint(['user_id'], ['staff_users.id'], name='fk_staff_sessions_user_id_staff_users'),
        sa.PrimaryKeyConstraint('id', name='pk_staff_sessions'),
        sa.UniqueConstraint('token_hash', name='uq_staff_sessions_token_hash'),
    )
    with op.batch_alter_table('staff_sessions', schema=None) as batch_op:
        batch_op.create_index('ix_staff_sessions_user_id', ['user_id'], unique=False)


def downgrade():
    with op.batch_alter_table('staff_sessions', schema=None) as batch_op:
        batch_op.drop_index('ix_staff_sessions_user_id')
    op.drop_table('staff_sessions')
