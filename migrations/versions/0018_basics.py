"""staff attachments on tickets; a password chosen by an administrator must be changed

Revision ID: 0018_basics
Revises: 0017_desk_day
Create Date: 2026-12-02 20:00:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0018_basics'
down_revision = '0017_desk_day'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'attachment',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('ticket_id', sa.Integer(), nullable=False),
        sa.Column('uploaded_by_id', sa.Integer(), nullable=True),
        sa.Column('uploaded_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('filename', sa.String(length=200), nullable=False),
        sa.Column('content_type', sa.String(length=100), nullable=False),
        sa.Column('size', sa.Integer(), nullable=False),
        sa.Column('storage_name', sa.String(length=64), nullable=False),
        sa.Column('sha256', sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(['ticket_id'], ['ticket.id'], name=op.f('fk_attachment_ticket_id_ticket')),
        sa.ForeignKeyConstraint(['uploaded_by_id'], ['staff.id'], name=op.f('fk_attachment_uploaded_by_id_staff')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_attachment')),
        sa.UniqueConstraint('storage_name', name=op.f('uq_attachment_storage_name')),
    )
    op.create_index('ix_attachment_ticket', 'attachment', ['ticket_id', 'id'], unique=False)
    # A plain ADD COLUMN on both databases: a batch copy of `staff` on SQLite would drop a
    # table that every ticket and session refers to.
    op.add_column(
        'staff',
        sa.Column('must_change_password', sa.Boolean(), server_default=sa.false(), nullable=False),
    )


def downgrade():
    if op.get_bind().dialect.name == 'sqlite':
        # A batch copy of `staff` would drop a table every ticket and session refers to (the
        # foreign keys are on); SQLite 3.35+ drops a plain column in place.
        op.execute('ALTER TABLE staff DROP COLUMN must_change_password')
    else:
        op.drop_column('staff', 'must_change_password')
    op.drop_index('ix_attachment_ticket', table_name='attachment')
    op.drop_table('attachment')
