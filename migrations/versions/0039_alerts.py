"""alerts: consumer and fraud alerts (注意喚起); LINE notices by segment and the citizens'
consents to them

Revision ID: 0039_alerts
Revises: 0038_protect
Create Date: 2026-12-02 23:22:12.268220

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0039_alerts'
down_revision = '0038_protect'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('line_notice',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('text', sa.Text(), nullable=False),
    sa.Column('interest', sa.String(length=40), nullable=False),
    sa.Column('district', sa.String(length=40), nullable=True),
    sa.Column('age_band', sa.String(length=40), nullable=True),
    sa.Column('status', sa.Enum('draft', 'queued', name='noticestatus', native_enum=False, create_constraint=True, length=20), nullable=False),
    sa.Column('alert_id', sa.Integer(), nullable=True),
    sa.Column('created_by_id', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('queued_by_id', sa.Integer(), nullable=True),
    sa.Column('queued_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('recipient_count', sa.Integer(), nullable=False),
    sa.Column('batch_count', sa.Integer(), nullable=False),
    sa.Column('sent_count', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['created_by_id'], ['staff.id'], name=op.f('fk_line_notice_created_by_id_staff')),
    sa.ForeignKeyConstraint(['queued_by_id'], ['staff.id'], name=op.f('fk_line_notice_queued_by_id_staff')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_line_notice'))
    )
    with op.batch_alter_table('line_notice', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_line_notice_alert_id'), ['alert_id'], unique=False)

    op.create_table('line_subscription',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('contact_id', sa.Integer(), nullable=False),
    sa.Column('topic', sa.Enum('district', 'interest', 'age', name='subscriptiontopic', native_enum=False, create_constraint=True, length=20), nullable=False),
    sa.Column('value', sa.String(length=40), nullable=False),
    sa.Column('consented_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['contact_id'], ['line_contact.id'], name=op.f('fk_line_subscription_contact_id_line_contact'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_line_subscription')),
    sa.UniqueConstraint('contact_id', 'topic', 'value', name=op.f('uq_line_subscription_contact_id_topic_value'))
    )
    with op.batch_alter_table('line_subscription', schema=None) as batch_op:
        batch_op.create_index('ix_line_subscription_segment', ['topic', 'value', 'contact_id'], unique=False)

    op.create_table('consumer_alert',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('title', sa.String(length=120), nullable=False),
    sa.Column('method', sa.Text(), nullable=False),
    sa.Column('area', sa.String(length=200), nullable=False),
    sa.Column('phrases', sa.Text(), nullable=False),
    sa.Column('advice', sa.Text(), nullable=False),
    sa.Column('title_en', sa.String(length=200), nullable=False),
    sa.Column('advice_en', sa.Text(), nullable=False),
    sa.Column('status', sa.Enum('draft', 'review', 'published', 'archived', name='alertstatus', native_enum=False, create_constraint=True, length=20), nullable=False),
    sa.Column('ticket_id', sa.Integer(), nullable=True),
    sa.Column('author_id', sa.Integer(), nullable=True),
    sa.Column('approved_by_id', sa.Integer(), nullable=True),
    sa.Column('redaction_notes', sa.JSON(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('published_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('digest_sent_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['approved_by_id'], ['staff.id'], name=op.f('fk_consumer_alert_approved_by_id_staff')),
    sa.ForeignKeyConstraint(['author_id'], ['staff.id'], name=op.f('fk_consumer_alert_author_id_staff')),
    sa.ForeignKeyConstraint(['ticket_id'], ['ticket.id'], name=op.f('fk_consumer_alert_ticket_id_ticket')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_consumer_alert'))
    )
    with op.batch_alter_table('consumer_alert', schema=None) as batch_op:
        batch_op.create_index('ix_consumer_alert_status_published', ['status', 'published_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_consumer_alert_ticket_id'), ['ticket_id'], unique=False)




def downgrade():
    with op.batch_alter_table('consumer_alert', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_consumer_alert_ticket_id'))
        batch_op.drop_index('ix_consumer_alert_status_published')

    op.drop_table('consumer_alert')
    with op.batch_alter_table('line_subscription', schema=None) as batch_op:
        batch_op.drop_index('ix_line_subscription_segment')

    op.drop_table('line_subscription')
    with op.batch_alter_table('line_notice', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_line_notice_alert_id'))

    op.drop_table('line_notice')
