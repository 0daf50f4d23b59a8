"""records: disposal of records that belong to no case (disposal_unlinked), and disclosure
bundles produced by the worker (disclosure_job)

Revision ID: 0041_records
Revises: 0040_branch
Create Date: 2026-12-03 03:40:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0041_records'
down_revision = '0040_branch'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('disposal_unlinked',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('list_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=40), nullable=False),
    sa.Column('retention_years', sa.Integer(), nullable=False),
    sa.Column('before', sa.Date(), nullable=False),
    sa.Column('count', sa.Integer(), nullable=False),
    sa.Column('held_back_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('held_back_by_id', sa.Integer(), nullable=True),
    sa.Column('disposed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('disposed_count', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['held_back_by_id'], ['staff.id'], name=op.f('fk_disposal_unlinked_held_back_by_id_staff')),
    sa.ForeignKeyConstraint(['list_id'], ['disposal_list.id'], name=op.f('fk_disposal_unlinked_list_id_disposal_list')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_disposal_unlinked')),
    sa.UniqueConstraint('list_id', 'kind', name=op.f('uq_disposal_unlinked_list_id_kind'))
    )
    op.create_table('disclosure_job',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('citizen_id', sa.Integer(), nullable=False),
    sa.Column('fmt', sa.String(length=10), nullable=False),
    sa.Column('requested_by_id', sa.Integer(), nullable=True),
    sa.Column('status', sa.Enum('pending', 'ready', 'failed', 'expired', name='disclosurestatus', native_enum=False, create_constraint=True, length=20), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('next_attempt_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('claimed_by', sa.String(length=64), nullable=True),
    sa.Column('claimed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_error', sa.String(length=500), nullable=True),
    sa.Column('stored_name', sa.String(length=64), nullable=True),
    sa.Column('size', sa.Integer(), nullable=True),
    sa.Column('items', sa.Integer(), nullable=True),
    sa.Column('review_count', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('downloads', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['citizen_id'], ['citizen.id'], name=op.f('fk_disclosure_job_citizen_id_citizen')),
    sa.ForeignKeyConstraint(['requested_by_id'], ['staff.id'], name=op.f('fk_disclosure_job_requested_by_id_staff')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_disclosure_job'))
    )
    with op.batch_alter_table('disclosure_job', schema=None) as batch_op:
        batch_op.create_index('ix_disclosure_job_citizen', ['citizen_id', 'id'], unique=False)
        batch_op.create_index('ix_disclosure_job_due', ['status', 'next_attempt_at'], unique=False)


def downgrade():
    with op.batch_alter_table('disclosure_job', schema=None) as batch_op:
        batch_op.drop_index('ix_disclosure_job_due')
        batch_op.drop_index('ix_disclosure_job_citizen')

    op.drop_table('disclosure_job')
    op.drop_table('disposal_unlinked')
