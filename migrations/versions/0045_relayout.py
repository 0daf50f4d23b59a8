"""relayout: on the relay, each outbox row names the core's item it came from
(outbox_message.transfer_id), so its outcome (delivered, or failed and why) goes back to the core

Revision ID: 0045_relayout
Revises: 0043_digits
Create Date: 2026-12-03 10:30:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0045_relayout'
down_revision = '0043_digits'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('outbox_message', schema=None) as batch_op:
        batch_op.add_column(sa.Column('transfer_id', sa.String(length=120), nullable=True))
        batch_op.create_index(
            batch_op.f('ix_outbox_message_transfer_id'), ['transfer_id'], unique=False
        )


def downgrade():
    with op.batch_alter_table('outbox_message', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_outbox_message_transfer_id'))
        batch_op.drop_column('transfer_id')
