"""Join the two rails' ledgers (0010_wechatpay, 0010_alipay), made on separate branches, into one history.

Revision ID: 0011_merge_rails
Revises: 0010_wechatpay, 0010_alipay
"""

# revision identifiers, used by Alembic.
revision = '0011_merge_rails'
down_revision = ('0010_wechatpay', '0010_alipay')
branch_labels = None
depends_on = None


def upgrade():
    """Nothing to change: the two tables are independent."""


def downgrade():
    """Nothing to change: the two tables are independent."""
