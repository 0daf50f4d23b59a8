"""devices: one-button help-alert devices with revocable tokens

Revision ID: 0028_devices
Revises: 0022_api
Create Date: 2026-12-02 23:30:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0028_devices'
down_revision = '0022_api'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('alert_device',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=80), nullable=False),
    sa.Column('staff_id', sa.Integer(), nullable=False),
    sa.Column('place', sa.String(length=40), nullable=False),
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('token_prefix', sa.String(length=12), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('created_by_id', sa.Integer(), nullable=True),
    sa.Column('last_used_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['created_by_id'], ['staff.id'], name=op.f('fk_alert_device_created_by_id_staff')),
    sa.ForeignKeyConstraint(['staff_id'], ['staff.id'], name=op.f('fk_alert_device_staff_id_staff')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_alert_device')),
    sa.UniqueConstraint('token_hash', name=op.f('uq_alert_device_token_hash'))
    )
    with op.batch_alter_table('alert_device', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_alert_device_staff_id'), ['staff_id'], unique=False)


def downgrade():
    with op.batch_alter_table('alert_device', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_alert_device_staff_id'))

    op.drop_table('alert_device')
