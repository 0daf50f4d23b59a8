"""email_poll_status: how the last IMAP polls went, shown to administrators

Revision ID: 0011_email_poll_status
Revises: 0010_handoff_daily
Create Date: 2026-11-22 18:00:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0011_email_poll_status'
down_revision = '0010_handoff_daily'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'email_poll_status',
        sa.Column('source', sa.String(length=40), nullable=False),
        sa.Column('last_attempt_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('last_success_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('last_error', sa.String(length=500), nullable=True),
        sa.Column('last_error_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('failures_in_row', sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint('source', name=op.f('pk_email_poll_status')),
    )


def downgrade():
    op.drop_table('email_poll_status')
