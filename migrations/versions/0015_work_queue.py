"""work queue: claim holders and worker heartbeats (consult.services.queue)

Revision ID: 0015_work_queue
Revises: 0014_live_event
Create Date: 2026-12-02 17:40:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0015_work_queue'
down_revision = '0014_live_event'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'worker_heartbeat',
        sa.Column('worker_id', sa.String(length=64), nullable=False),
        sa.Column('started_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('beat_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('worker_id', name=op.f('pk_worker_heartbeat')),
    )
    op.create_index(
        op.f('ix_worker_heartbeat_beat_at'), 'worker_heartbeat', ['beat_at'], unique=False
    )
    op.add_column('outbox_message', sa.Column('handed_at', sa.DateTime(timezone=True), nullable=True))
    op.add_column('line_event', sa.Column('claimed_by', sa.String(length=64), nullable=True))
    op.add_column('line_media', sa.Column('claimed_by', sa.String(length=64), nullable=True))
    op.add_column('line_media', sa.Column('claimed_at', sa.DateTime(timezone=True), nullable=True))
    op.add_column('email_inbound', sa.Column('claimed_by', sa.String(length=64), nullable=True))
    op.add_column(
        'email_inbound', sa.Column('claimed_at', sa.DateTime(timezone=True), nullable=True)
    )


def downgrade():
    # Plain DROP COLUMN (SQLite 3.35+): a batch copy of these tables would trip their foreign keys.
    op.drop_column('email_inbound', 'claimed_at')
    op.drop_column('email_inbound', 'claimed_by')
    op.drop_column('line_media', 'claimed_at')
    op.drop_column('line_media', 'claimed_by')
    op.drop_column('line_event', 'claimed_by')
    op.drop_column('outbox_message', 'handed_at')
    op.drop_index(op.f('ix_worker_heartbeat_beat_at'), table_name='worker_heartbeat')
    op.drop_table('worker_heartbeat')
