"""relay2: LINE media fetched by the relay and carried to the core (line_relay_content); mail
attachments converted on the relay (email_inbound.relay_files)

Revision ID: 0042_relay2
Revises: 0041_records
Create Date: 2026-12-03 03:40:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0042_relay2'
down_revision = '0041_records'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('line_relay_content',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('message_id', sa.String(length=64), nullable=False),
    sa.Column('delivery_id', sa.Integer(), nullable=True),
    sa.Column('kind', sa.String(length=10), nullable=False),
    sa.Column('file_name', sa.String(length=255), nullable=True),
    sa.Column('content_type', sa.String(length=100), nullable=True),
    sa.Column('size', sa.Integer(), nullable=True),
    sa.Column('stored_name', sa.String(length=64), nullable=True),
    sa.Column('outcome', sa.JSON(), nullable=True),
    sa.Column('status', sa.Enum('pending', 'fetched', 'failed', name='mediastatus', native_enum=False, create_constraint=True, length=20), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('next_attempt_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('claimed_by', sa.String(length=64), nullable=True),
    sa.Column('claimed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_error', sa.String(length=500), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_line_relay_content')),
    sa.UniqueConstraint('message_id', name=op.f('uq_line_relay_content_message_id'))
    )
    with op.batch_alter_table('line_relay_content', schema=None) as batch_op:
        batch_op.create_index('ix_line_relay_content_due', ['status', 'next_attempt_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_line_relay_content_delivery_id'), ['delivery_id'], unique=False)

    op.create_table('relay_copy',
    sa.Column('kind', sa.String(length=40), nullable=False),
    sa.Column('ref', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('data', sa.JSON(), nullable=False),
    sa.PrimaryKeyConstraint('kind', 'ref', name=op.f('pk_relay_copy'))
    )
    with op.batch_alter_table('email_inbound', schema=None) as batch_op:
        batch_op.add_column(sa.Column('relay_files', sa.JSON(), nullable=True))


def downgrade():
    with op.batch_alter_table('email_inbound', schema=None) as batch_op:
        batch_op.drop_column('relay_files')

    op.drop_table('relay_copy')

    with op.batch_alter_table('line_relay_content', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_line_relay_content_delivery_id'))
        batch_op.drop_index('ix_line_relay_content_due')

    op.drop_table('line_relay_content')
