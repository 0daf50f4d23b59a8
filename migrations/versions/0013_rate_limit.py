"""rate_limit_counter: rate limits and login counts shared by every process

Revision ID: 0013_rate_limit
Revises: 0012_category_name_en
Create Date: 2026-12-02 17:00:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0013_rate_limit'
down_revision = '0012_category_name_en'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'rate_limit_counter',
        sa.Column('scope', sa.String(length=40), nullable=False),
        sa.Column('key', sa.String(length=64), nullable=False),
        sa.Column('hits', sa.Integer(), nullable=False),
        sa.Column('window_ends', sa.BigInteger(), nullable=False),
        sa.Column('last_hit', sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint('scope', 'key', name=op.f('pk_rate_limit_counter')),
    )


def downgrade():
    op.drop_table('rate_limit_counter')
