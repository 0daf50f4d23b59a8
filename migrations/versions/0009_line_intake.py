"""line_intake: the webhook stores only the raw body; the worker expands it into events

A delivery waits with ``expanded_at`` NULL until the processor has written its event rows, so
the webhook does one INSERT and answers. Deliveries stored before this revision already have
their events: they are marked expanded at the time they were received.

Revision ID: 0009_line_intake
Revises: 0008_report_daily
Create Date: 2026-11-22 10:05:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0009_line_intake'
down_revision = '0008_report_daily'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('line_delivery', schema=None) as batch_op:
        batch_op.add_column(sa.Column('expanded_at', sa.DateTime(timezone=True), nullable=True))
    op.execute("UPDATE line_delivery SET expanded_at = received_at")
    op.create_index(
        'ix_line_delivery_pending',
        'line_delivery',
        ['id'],
        unique=False,
        postgresql_where=sa.text('expanded_at IS NULL'),
        sqlite_where=sa.text('expanded_at IS NULL'),
    )


def downgrade():
    # Events of deliveries not yet expanded would be lost by going back: expand them first
    # (`madoguchi worker --once`), then downgrade.
    op.drop_index('ix_line_delivery_pending', table_name='line_delivery')
    with op.batch_alter_table('line_delivery', schema=None) as batch_op:
        batch_op.drop_column('expanded_at')
