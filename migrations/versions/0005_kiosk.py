"""Kiosk card readers: the reader paired with each terminal, and the sandbox's simulated reader

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-27 02:00:00.000000

Hand-checked: one nullable column and one new table, the same on SQLite and PostgreSQL.
"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('terminals', schema=None) as batch_op:
        batch_op.add_column(sa.Column('reader_id', sa.String(length=100), nullable=True))

    op.create_table('sandbox_reader_actions',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('intent_id', sa.String(length=40), nullable=False),
    sa.Column('reader_id', sa.String(length=100), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('failure_code', sa.String(length=40), nullable=True),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['intent_id'], ['sandbox_intents.id'],
                            name=op.f('fk_sandbox_reader_actions_intent_id_sandbox_intents')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_sandbox_reader_actions'))
    )
    with op.batch_alter_table('sandbox_reader_actions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_sandbox_reader_actions_intent_id'), ['intent_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_sandbox_reader_actions_reader_id'), ['reader_id'], unique=False)


def downgrade():
    with op.batch_alter_table('sandbox_reader_actions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_sandbox_reader_actions_reader_id'))
        batch_op.drop_index(batch_op.f('ix_sandbox_reader_actions_intent_id'))

    op.drop_table('sandbox_reader_actions')
    with op.batch_alter_table('terminals', schema=None) as batch_op:
        batch_op.drop_column('reader_id')
