"""category.name_en: the category's name on the public English pages, set by administrators

Data never goes through gettext (a catalog translates the code's words, and marks its result
safe in templates): a name an administrator types has its own translated field instead.

Revision ID: 0012_category_name_en
Revises: 0011_email_poll_status
Create Date: 2026-12-02 17:15:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0012_category_name_en'
down_revision = '0011_email_poll_status'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('category') as batch_op:
        batch_op.add_column(sa.Column('name_en', sa.String(length=80), nullable=True))


def downgrade():
    with op.batch_alter_table('category') as batch_op:
        batch_op.drop_column('name_en')
