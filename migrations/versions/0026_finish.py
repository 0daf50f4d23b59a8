"""finish of issues 16 and 20: the LINE profile's display name on the contact (searched);
API idempotency keys; the "api" channel

Revision ID: 0026_finish
Revises: 0022_api
Create Date: 2026-12-02 23:10:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0026_finish'
down_revision = '0022_api'
branch_labels = None
depends_on = None


def upgrade():
    # Plain ALTER TABLE on both databases (SQLite 3.35+ drops columns itself).
    op.add_column('line_contact', sa.Column('display_name', sa.String(length=100), nullable=True))
    op.add_column(
        'line_contact', sa.Column('profile_checked_at', sa.DateTime(timezone=True), nullable=True)
    )
    op.create_index(
        'ix_line_contact_profile_due',
        'line_contact',
        ['id'],
        unique=False,
        postgresql_where=sa.text('profile_checked_at IS NULL'),
        sqlite_where=sa.text('profile_checked_at IS NULL'),
    )


def downgrade():
    op.drop_index(
        'ix_line_contact_profile_due',
        table_name='line_contact',
        postgresql_where=sa.text('profile_checked_at IS NULL'),
        sqlite_where=sa.text('profile_checked_at IS NULL'),
    )
    op.drop_column('line_contact', 'profile_checked_at')
    op.drop_column('line_contact', 'display_name')
