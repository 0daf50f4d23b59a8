"""live_event: the live channel's events, read by a cursor, kept a day

Revision ID: 0014_live_event
Revises: 0013_rate_limit
Create Date: 2026-12-02 17:30:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0014_live_event'
down_revision = '0013_rate_limit'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'live_event',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('kind', sa.String(length=40), nullable=False),
        sa.Column('audience', sa.JSON(), nullable=False),
        sa.Column('payload', sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_live_event')),
    )
    with op.batch_alter_table('live_event', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_live_event_created_at'), ['created_at'], unique=False)


def downgrade():
    with op.batch_alter_table('live_event', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_live_event_created_at'))
    op.drop_table('live_event')
