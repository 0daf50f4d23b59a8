"""finish of issues 16 and 20: the LINE profile's display name on the contact (searched);
API idempotency keys; the "api" channel

Revision ID: 0033_finish
Revises: 0032_sanitise
Create Date: 2026-12-02 23:10:00

"""
import re

from alembic import op
import sqlalchemy as sa

OLD_CHANNELS = ['counter', 'phone', 'email', 'line', 'booking']
NEW_CHANNELS = [*OLD_CHANNELS, 'api']
CHANNEL_TABLES = ('ticket', 'report_daily', 'report_session_daily')


# revision identifiers, used by Alembic.
revision = '0033_finish'
down_revision = '0032_sanitise'
branch_labels = None
depends_on = None


def _listed(values):
    return ', '.join(f"'{value}'" for value in values)


def _set_channels(old, new):
    """Tickets may come from the API ('api'): widen the CHECK of every channel column.

    PostgreSQL changes the constraints in place. SQLite cannot alter a constraint, and rebuilding
    `ticket` would copy every case and drop the table the others point at; a CHECK that only
    admits more values changes nothing on disk, so its text is replaced in the schema itself,
    the procedure SQLite documents for such changes (sqlite.org/lang_altertable.html, 7).
    """
    bind = op.get_bind()
    if bind.dialect.name == 'postgresql':
        for table in CHANNEL_TABLES:
            op.drop_constraint(op.f(f'ck_{table}_channel'), table, type_='check')
            op.create_check_constraint(
                op.f(f'ck_{table}_channel'), table, f'channel IN ({_listed(new)})'
            )
        return
    version = bind.exec_driver_sql('PRAGMA schema_version').scalar()
    bind.exec_driver_sql('PRAGMA writable_schema=ON')
    for table in CHANNEL_TABLES:
        sql = bind.exec_driver_sql(
            "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?", (table,)
        ).scalar()
        pattern = re.compile(
            rf"(CONSTRAINT\s+\"?ck_{table}_channel\"?\s+CHECK\s*\(\s*channel\s+IN\s*\()[^)]*\)"
        )
        changed, count = pattern.subn(lambda m: m.group(1) + _listed(new) + ')', sql)
        if count != 1:
            raise RuntimeError(f'the channel CHECK of {table} was not found')
        bind.exec_driver_sql(
            "UPDATE sqlite_master SET sql = ? WHERE type = 'table' AND name = ?", (changed, table)
        )
    bind.exec_driver_sql(f'PRAGMA schema_version={int(version) + 1}')
    bind.exec_driver_sql('PRAGMA writable_schema=OFF')


def upgrade():
    _set_channels(OLD_CHANNELS, NEW_CHANNELS)
    op.create_table(
        'api_idempotency_key',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('integration_id', sa.Integer(), nullable=False),
        sa.Column('key', sa.String(length=255), nullable=False),
        sa.Column('fingerprint', sa.String(length=64), nullable=False),
        sa.Column('status_code', sa.Integer(), nullable=True),
        sa.Column('body', sa.Text(), nullable=True),
        sa.Column('location', sa.String(length=500), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ['integration_id'],
            ['api_integration.id'],
            name=op.f('fk_api_idempotency_key_integration_id_api_integration'),
        ),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_api_idempotency_key')),
        sa.UniqueConstraint('integration_id', 'key', name='uq_api_idempotency_key_key'),
    )
    op.create_index(
        'ix_api_idempotency_key_created', 'api_idempotency_key', ['created_at'], unique=False
    )
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
    op.drop_index('ix_api_idempotency_key_created', table_name='api_idempotency_key')
    op.drop_table('api_idempotency_key')
    # The old CHECK cannot hold 'api': such cases count as mail again (the borrowed channel
    # before this revision), their rollup rows are added to mail's.
    op.execute("UPDATE ticket SET channel = 'email' WHERE channel = 'api'")
    for table, keys, counts in (
        ('report_daily', ('grain', 'day'), ('tickets', 'sessions', 'session_seconds')),
        ('report_session_daily', ('grain', 'day', 'minutes'), ('sessions',)),
    ):
        same = ' AND '.join(f'a.{k} = {table}.{k}' for k in keys)
        sums = ', '.join(
            f"{c} = {c} + (SELECT a.{c} FROM {table} a WHERE {same} AND a.channel = 'api')"
            for c in counts
        )
        op.execute(
            f"UPDATE {table} SET {sums} WHERE channel = 'email' AND EXISTS "
            f"(SELECT 1 FROM {table} a WHERE {same} AND a.channel = 'api')"
        )
        email_row = ' AND '.join(f'e.{k} = {table}.{k}' for k in keys)
        op.execute(
            f"UPDATE {table} SET channel = 'email' WHERE channel = 'api' AND NOT EXISTS "
            f"(SELECT 1 FROM {table} e WHERE {email_row} AND e.channel = 'email')"
        )
        op.execute(f"DELETE FROM {table} WHERE channel = 'api'")  # added to mail's above
    _set_channels(NEW_CHANNELS, OLD_CHANNELS)
    op.drop_index(
        'ix_line_contact_profile_due',
        table_name='line_contact',
        postgresql_where=sa.text('profile_checked_at IS NULL'),
        sqlite_where=sa.text('profile_checked_at IS NULL'),
    )
    op.drop_column('line_contact', 'profile_checked_at')
    op.drop_column('line_contact', 'display_name')
