"""relayout: on the relay, each outbox row names the core's item it came from
(outbox_message.transfer_id), so its outcome (delivered, or failed and why) goes back to the core

Revision ID: 0045_relayout
Revises: 0044_alerten
Create Date: 2026-12-03 10:30:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0045_relayout'
down_revision = '0044_alerten'
branch_labels = None
depends_on = None


def upgrade():
    # Plain ALTERs, no batch copy: other tables refer to outbox_message (the mail threads'
    # outbox_id), and SQLite would refuse to drop it with the foreign keys on.
    op.add_column('outbox_message', sa.Column('transfer_id', sa.String(length=120), nullable=True))
    op.create_index(
        op.f('ix_outbox_message_transfer_id'), 'outbox_message', ['transfer_id'], unique=False
    )


def downgrade():
    op.drop_index(op.f('ix_outbox_message_transfer_id'), table_name='outbox_message')
    op.drop_column('outbox_message', 'transfer_id')
