"""callbacks (折り返し) as rows of their own, from the phone log's due times; citizen name and
kana keys indexed for LIKE prefixes on PostgreSQL (text_pattern_ops)

Revision ID: 0017_desk_day
Revises: 0016_live_alerts
Create Date: 2026-12-02 18:30:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0017_desk_day'
down_revision = '0016_live_alerts'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'callback',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('ticket_id', sa.Integer(), nullable=False),
        sa.Column('due_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('staff_id', sa.Integer(), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('done_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('done_by_id', sa.Integer(), nullable=True),
        sa.Column('reminded_soon_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('reminded_overdue_at', sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(['done_by_id'], ['staff.id'], name=op.f('fk_callback_done_by_id_staff')),
        sa.ForeignKeyConstraint(['staff_id'], ['staff.id'], name=op.f('fk_callback_staff_id_staff')),
        sa.ForeignKeyConstraint(['ticket_id'], ['ticket.id'], name=op.f('fk_callback_ticket_id_ticket')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_callback')),
    )
    op.create_index('ix_callback_pending', 'callback', ['done_at', 'due_at'], unique=False)
    op.create_index('ix_callback_ticket', 'callback', ['ticket_id'], unique=False)
    # Callbacks promised before this release: pending while their ticket is open, made by
    # whoever owns or logged the call (an overdue one is reminded once after the upgrade).
    op.execute(
        """
        INSERT INTO callback (ticket_id, due_at, staff_id, created_at, done_at)
        SELECT phone_call.ticket_id, phone_call.callback_due_at,
               COALESCE(ticket.assignee_id, ticket.created_by_id), ticket.created_at,
               CASE WHEN ticket.is_open THEN NULL
                    ELSE COALESCE(ticket.closed_at, ticket.last_activity_at) END
        FROM phone_call JOIN ticket ON ticket.id = phone_call.ticket_id
        WHERE phone_call.callback_needed AND phone_call.callback_due_at IS NOT NULL
        """
    )


    _pattern_indexes('text_pattern_ops')


def _pattern_indexes(ops):
    """PostgreSQL only: under C.UTF-8 a plain btree cannot serve `LIKE '山田%'`."""
    if op.get_bind().dialect.name != 'postgresql':
        return
    for column in ('name_key', 'kana_key'):
        op.drop_index(f'ix_citizen_{column}', table_name='citizen')
        op.create_index(
            f'ix_citizen_{column}',
            'citizen',
            [column],
            unique=False,
            postgresql_ops={column: ops} if ops else {},
        )


def downgrade():
    _pattern_indexes(None)
    op.drop_index('ix_callback_ticket', table_name='callback')
    op.drop_index('ix_callback_pending', table_name='callback')
    op.drop_table('callback')
