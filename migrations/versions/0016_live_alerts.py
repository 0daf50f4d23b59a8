"""help alerts: the place as the support room reads it, one open press per staff, escalation

Revision ID: 0016_live_alerts
Revises: 0015_work_queue
Create Date: 2026-12-02 18:30:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0016_live_alerts'
down_revision = '0015_work_queue'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('help_alert') as batch:
        batch.add_column(sa.Column('place_label', sa.String(length=200), nullable=True))
        batch.add_column(sa.Column('press_key', sa.Integer(), nullable=True))
        batch.add_column(sa.Column('escalated_at', sa.DateTime(timezone=True), nullable=True))
        batch.create_unique_constraint(batch.f('uq_help_alert_press_key'), ['press_key'])


def downgrade():
    with op.batch_alter_table('help_alert') as batch:
        batch.drop_constraint(batch.f('uq_help_alert_press_key'), type_='unique')
        batch.drop_column('escalated_at')
        batch.drop_column('press_key')
        batch.drop_column('place_label')
