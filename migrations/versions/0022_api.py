"""api: integrations (hashed tokens with scopes), webhooks, their deliveries (a work queue) and
attempts; the integration that acted on audit rows

Revision ID: 0018_api
Revises: 0017_desk_day
Create Date: 2026-12-02 19:59:47.787651

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0022_api'
down_revision = '0021_auth'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('api_webhook',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=80), nullable=False),
    sa.Column('url', sa.String(length=500), nullable=False),
    sa.Column('events', sa.JSON(), nullable=False),
    sa.Column('secret', sa.String(length=64), nullable=False),
    sa.Column('personal', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_api_webhook'))
    )
    op.create_table('api_webhook_delivery',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('webhook_id', sa.Integer(), nullable=False),
    sa.Column('event', sa.String(length=40), nullable=False),
    sa.Column('body', sa.Text(), nullable=True),
    sa.Column('status', sa.Enum('pending', 'sending', 'delivered', 'failed', name='deliverystatus', native_enum=False, create_constraint=True, length=20), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('next_attempt_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('claimed_by', sa.String(length=64), nullable=True),
    sa.Column('claimed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_error', sa.String(length=500), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('delivered_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['webhook_id'], ['api_webhook.id'], name=op.f('fk_api_webhook_delivery_webhook_id_api_webhook')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_api_webhook_delivery'))
    )
    with op.batch_alter_table('api_webhook_delivery', schema=None) as batch_op:
        batch_op.create_index('ix_api_webhook_delivery_due', ['status', 'next_attempt_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_api_webhook_delivery_webhook_id'), ['webhook_id'], unique=False)

    op.create_table('api_integration',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=80), nullable=False),
    sa.Column('token_prefix', sa.String(length=16), nullable=False),
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('scopes', sa.JSON(), nullable=False),
    sa.Column('allowed_addresses', sa.Text(), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('created_by_id', sa.Integer(), nullable=True),
    sa.Column('department_id', sa.Integer(), nullable=True),
    sa.Column('last_used_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['created_by_id'], ['staff.id'], name=op.f('fk_api_integration_created_by_id_staff')),
    sa.ForeignKeyConstraint(['department_id'], ['department.id'], name=op.f('fk_api_integration_department_id_department')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_api_integration')),
    sa.UniqueConstraint('name', name=op.f('uq_api_integration_name')),
    sa.UniqueConstraint('token_prefix', name=op.f('uq_api_integration_token_prefix'))
    )
    op.create_table('api_webhook_attempt',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('delivery_id', sa.Integer(), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('status_code', sa.Integer(), nullable=True),
    sa.Column('error', sa.String(length=200), nullable=True),
    sa.Column('milliseconds', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['delivery_id'], ['api_webhook_delivery.id'], name=op.f('fk_api_webhook_attempt_delivery_id_api_webhook_delivery')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_api_webhook_attempt'))
    )
    with op.batch_alter_table('api_webhook_attempt', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_api_webhook_attempt_delivery_id'), ['delivery_id'], unique=False)

    # A plain ADD COLUMN on both databases: no copy of the audit log's table.
    op.add_column('audit_event', sa.Column('integration', sa.String(length=80), nullable=True))



def downgrade():
    with op.batch_alter_table('audit_event', schema=None) as batch_op:
        batch_op.drop_column('integration')

    with op.batch_alter_table('api_webhook_attempt', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_api_webhook_attempt_delivery_id'))

    op.drop_table('api_webhook_attempt')
    op.drop_table('api_integration')
    with op.batch_alter_table('api_webhook_delivery', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_api_webhook_delivery_webhook_id'))
        batch_op.drop_index('ix_api_webhook_delivery_due')

    op.drop_table('api_webhook_delivery')
    op.drop_table('api_webhook')
