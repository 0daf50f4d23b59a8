"""alerten: a consumer alert's method (手口) and area (地域) in English, for the public English
page (empty: shown in Japanese, marked so)

Revision ID: 0044_alerten
Revises: 0043_digits
Create Date: 2026-12-03 11:00:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0044_alerten'
down_revision = '0043_digits'
branch_labels = None
depends_on = None


def upgrade():
    # The existing alerts get '' (nothing in English); then no server default, as the model
    # (which writes '' itself), like the other English fields.
    with op.batch_alter_table('consumer_alert', schema=None) as batch_op:
        batch_op.add_column(sa.Column('method_en', sa.Text(), server_default='', nullable=False))
        batch_op.add_column(
            sa.Column('area_en', sa.String(length=200), server_default='', nullable=False)
        )
    with op.batch_alter_table('consumer_alert', schema=None) as batch_op:
        batch_op.alter_column('method_en', server_default=None)
        batch_op.alter_column('area_en', server_default=None)


def downgrade():
    with op.batch_alter_table('consumer_alert', schema=None) as batch_op:
        batch_op.drop_column('area_en')
        batch_op.drop_column('method_en')
