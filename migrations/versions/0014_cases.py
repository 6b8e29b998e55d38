"""Cases: contests and hardship applications with their evidence files; a violation's contest hold and new due date

Revision ID: 0014_cases
Revises: 0014_instalment_plans
Create Date: 2026-11-30 15:30:00.000000

Hand-written, the same on SQLite and PostgreSQL. Expand-only: the new
violation columns are nullable and code from before ignores them (an open
contest's hold would then not be honoured: deploy the code with the schema).
"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0014_cases'
down_revision = '0014_instalment_plans'
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def upgrade():
    with op.batch_alter_table('violations') as batch:
        batch.add_column(sa.Column('contest_case', sa.String(length=16), nullable=True))
        batch.add_column(sa.Column('fee_stopped_on', sa.Date(), nullable=True))
        batch.add_column(sa.Column('due_on', sa.Date(), nullable=True))
        batch.add_column(sa.Column('fee_carried', sa.BigInteger(), nullable=True))
    op.create_table(
        'cases',
        sa.Column('id', BigId, nullable=False),
        sa.Column('number', sa.String(length=16), nullable=False),
        sa.Column('kind', sa.String(length=12), nullable=False),
        sa.Column('violation_id', BigId, sa.ForeignKey('violations.id', name='fk_cases_violation_id_violations'),
                  nullable=False),
        sa.Column('reason', sa.String(length=32), nullable=False),
        sa.Column('statement', sa.String(length=1000), nullable=False),
        sa.Column('status', sa.String(length=12), nullable=False),
        sa.Column('channel', sa.String(length=8), nullable=False),
        sa.Column('filed_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('filed_on', sa.Date(), nullable=False),
        sa.Column('recommendation', sa.String(length=12), nullable=True),
        sa.Column('prepared_note', sa.String(length=1000), nullable=True),
        sa.Column('prepared_by', sa.String(length=80), nullable=True),
        sa.Column('prepared_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('decided_by', sa.String(length=80), nullable=True),
        sa.Column('decided_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('decision_reason', sa.String(length=1000), nullable=True),
        sa.Column('new_due_date', sa.Date(), nullable=True),
        sa.PrimaryKeyConstraint('id', name='pk_cases'),
        sa.UniqueConstraint('number', name='uq_cases_number'),
        sa.CheckConstraint("kind IN ('contest', 'deferral', 'instalments')", name='ck_cases_kind'),
        sa.CheckConstraint("status IN ('open', 'prepared', 'upheld', 'cancelled', 'approved', 'refused')",
                           name='ck_cases_status'),
    )
    op.create_index('ix_cases_violation_id', 'cases', ['violation_id'])
    op.create_index('ix_cases_status_filed_at', 'cases', ['status', 'filed_at'])
    op.create_table(
        'case_files',
        sa.Column('id', BigId, nullable=False),
        sa.Column('case_id', BigId, sa.ForeignKey('cases.id', name='fk_case_files_case_id_cases'), nullable=False),
        sa.Column('stored_name', sa.String(length=64), nullable=False),
        sa.Column('kind', sa.String(length=8), nullable=False),
        sa.Column('content_type', sa.String(length=40), nullable=False),
        sa.Column('size', sa.BigInteger(), nullable=False),
        sa.Column('sha256', sa.String(length=64), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('id', name='pk_case_files'),
        sa.UniqueConstraint('stored_name', name='uq_case_files_stored_name'),
    )
    op.create_index('ix_case_files_case_id', 'case_files', ['case_id'])


def downgrade():
    op.drop_index('ix_case_files_case_id', table_name='case_files')
    op.drop_table('case_files')
    op.drop_index('ix_cases_status_filed_at', table_name='cases')
    op.drop_index('ix_cases_violation_id', table_name='cases')
    op.drop_table('cases')
    with op.batch_alter_table('violations') as batch:
        batch.drop_column('fee_carried')
        batch.drop_column('due_on')
        batch.drop_column('fee_stopped_on')
        batch.drop_column('contest_case')
