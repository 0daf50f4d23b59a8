"""sanitise: safe_file, the harmless form (無害化) of every file a citizen sent or staff attached;
the files already stored are queued for conversion

Revision ID: 0032_sanitise
Revises: 0031_joint
Create Date: 2026-12-02 23:20:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0032_sanitise'
down_revision = '0031_joint'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('safe_file',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('ticket_id', sa.Integer(), nullable=False),
    sa.Column('source', sa.String(length=20), nullable=False),
    sa.Column('source_id', sa.Integer(), nullable=False),
    sa.Column('filename', sa.String(length=255), nullable=True),
    sa.Column('claimed_type', sa.String(length=127), nullable=True),
    sa.Column('size', sa.Integer(), nullable=False),
    sa.Column('original_path', sa.String(length=200), nullable=False),
    sa.Column('status', sa.Enum('pending', 'ready', 'quarantined', 'released', 'failed', name='safefilestatus', native_enum=False, create_constraint=True, length=20), nullable=False),
    sa.Column('kind', sa.String(length=20), nullable=True),
    sa.Column('stored_name', sa.String(length=64), nullable=True),
    sa.Column('media_type', sa.String(length=40), nullable=True),
    sa.Column('pages', sa.Integer(), nullable=False),
    sa.Column('total_pages', sa.Integer(), nullable=True),
    sa.Column('truncated', sa.Boolean(), nullable=False),
    sa.Column('text', sa.Text(), nullable=True),
    sa.Column('reason', sa.String(length=500), nullable=True),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('next_attempt_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('claimed_by', sa.String(length=64), nullable=True),
    sa.Column('claimed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_error', sa.String(length=500), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('converted_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('released_by_id', sa.Integer(), nullable=True),
    sa.Column('released_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('release_reason', sa.Text(), nullable=True),
    sa.ForeignKeyConstraint(['released_by_id'], ['staff.id'], name=op.f('fk_safe_file_released_by_id_staff')),
    sa.ForeignKeyConstraint(['ticket_id'], ['ticket.id'], name=op.f('fk_safe_file_ticket_id_ticket')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_safe_file')),
    sa.UniqueConstraint('source', 'source_id', name=op.f('uq_safe_file_source_source_id'))
    )
    with op.batch_alter_table('safe_file', schema=None) as batch_op:
        batch_op.create_index('ix_safe_file_due', ['status', 'next_attempt_at'], unique=False)
        batch_op.create_index('ix_safe_file_ticket', ['ticket_id', 'id'], unique=False)

    # What was stored before: converted by the worker before staff see it again.
    columns = ('ticket_id, source, source_id, filename, claimed_type, size, original_path, '
               'status, pages, truncated, attempts, next_attempt_at, created_at')
    rest = "'pending', 0, false, 0, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP"
    op.execute(
        f"INSERT INTO safe_file ({columns}) "
        "SELECT ticket_id, 'attachment', id, filename, content_type, size, "
        "'attachments/' || substr(storage_name, 1, 2) || '/' || storage_name, "
        f"{rest} FROM attachment"
    )
    op.execute(
        f"INSERT INTO safe_file ({columns}) "
        "SELECT ticket_id, 'email_attachment', id, filename, content_type, size, "
        "'attachments/' || storage_name, "
        f"{rest} FROM email_attachment"
    )
    op.execute(
        f"INSERT INTO safe_file ({columns}) "
        "SELECT ticket_id, 'line_media', id, file_name, content_type, coalesce(size, 0), "
        "'line/' || stored_name, "
        f"{rest} FROM line_media WHERE status = 'fetched' AND stored_name IS NOT NULL"
    )


def downgrade():
    with op.batch_alter_table('safe_file', schema=None) as batch_op:
        batch_op.drop_index('ix_safe_file_ticket')
        batch_op.drop_index('ix_safe_file_due')

    op.drop_table('safe_file')
