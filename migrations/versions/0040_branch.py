"""branch: sessions from a branch office (支所からのオンライン相談): branch offices, the
"branch" role and its office, the "branch_video" booking mode and the booking's office

Revision ID: 0040_branch
Revises: 0039_alerts
Create Date: 2026-12-03 03:50:00

"""
import re

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0040_branch'
down_revision = '0039_alerts'
branch_labels = None
depends_on = None

OLD_ROLES = ['consultant', 'supervisor', 'officer', 'support', 'admin']
NEW_ROLES = [*OLD_ROLES, 'branch']
OLD_MODES = ['counter', 'phone', 'video']
NEW_MODES = [*OLD_MODES, 'branch_video']
# (table, column, the enum's name) of every CHECK that lists the values.
CHECKS = (
    ('staff', 'role', 'role'),
    ('booking_slot', 'mode', 'mode'),
    ('session_kind', 'mode', 'mode'),
    ('booking', 'mode', 'mode'),
    ('booking_capacity', 'mode', 'mode'),
)


def _listed(values):
    return ', '.join(f"'{value}'" for value in values)


def _set_checks(roles, modes):
    """Widen (or narrow back) the CHECKs of the enums, as 0033_finish does for channels.

    PostgreSQL changes the constraints in place. SQLite cannot alter a constraint, and
    rebuilding `staff` or `booking` would copy the tables others point at; a CHECK that only
    admits more values changes nothing on disk, so its text is replaced in the schema itself
    (sqlite.org/lang_altertable.html, 7).
    """
    values = {'role': roles, 'mode': modes}
    bind = op.get_bind()
    if bind.dialect.name == 'postgresql':
        for table, column, name in CHECKS:
            op.drop_constraint(op.f(f'ck_{table}_{name}'), table, type_='check')
            op.create_check_constraint(
                op.f(f'ck_{table}_{name}'), table, f'{column} IN ({_listed(values[name])})'
            )
        return
    version = bind.exec_driver_sql('PRAGMA schema_version').scalar()
    bind.exec_driver_sql('PRAGMA writable_schema=ON')
    for table, column, name in CHECKS:
        sql = bind.exec_driver_sql(
            "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?", (table,)
        ).scalar()
        pattern = re.compile(
            rf"(CONSTRAINT\s+\"?ck_{table}_{name}\"?\s+CHECK\s*\(\s*{column}\s+IN\s*\()[^)]*\)"
        )
        changed, count = pattern.subn(lambda m: m.group(1) + _listed(values[name]) + ')', sql)
        if count != 1:
            raise RuntimeError(f'the {name} CHECK of {table} was not found')
        bind.exec_driver_sql(
            "UPDATE sqlite_master SET sql = ? WHERE type = 'table' AND name = ?", (changed, table)
        )
    bind.exec_driver_sql(f'PRAGMA schema_version={int(version) + 1}')
    bind.exec_driver_sql('PRAGMA writable_schema=OFF')


def upgrade():
    _set_checks(NEW_ROLES, NEW_MODES)
    op.create_table(
        'branch_office',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('name', sa.String(length=80), nullable=False),
        sa.Column('name_en', sa.String(length=120), nullable=True),
        sa.Column('address', sa.String(length=200), nullable=True),
        sa.Column('active', sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_branch_office')),
        sa.UniqueConstraint('name', name=op.f('uq_branch_office_name')),
    )
    for table in ('staff', 'booking'):
        _add_office_column(table)
    op.create_index(
        op.f('ix_booking_branch_office_id'), 'booking', ['branch_office_id'], unique=False
    )


def _add_office_column(table):
    """A nullable column pointing at branch_office. On SQLite in place, with the reference
    written in the column (a rebuild of `staff` would drop a table others point at)."""
    name = op.f(f'fk_{table}_branch_office_id_branch_office')
    if op.get_bind().dialect.name == 'sqlite':
        op.add_column(
            table,
            sa.Column(
                'branch_office_id', sa.Integer(), sa.ForeignKey('branch_office.id', name=name)
            ),
            inline_references=True,
        )
        return
    op.add_column(table, sa.Column('branch_office_id', sa.Integer(), nullable=True))
    op.create_foreign_key(name, table, 'branch_office', ['branch_office_id'], ['id'])


def downgrade():
    op.drop_index(op.f('ix_booking_branch_office_id'), table_name='booking')
    for table in ('booking', 'staff'):
        if op.get_bind().dialect.name != 'sqlite':
            op.drop_constraint(
                op.f(f'fk_{table}_branch_office_id_branch_office'), table, type_='foreignkey'
            )
        # SQLite 3.35+ drops a column in place (its inline reference with it).
        op.drop_column(table, 'branch_office_id')
    op.drop_table('branch_office')
    op.execute("DELETE FROM booking_slot WHERE mode = 'branch_video'")
    op.execute("DELETE FROM booking_capacity WHERE mode = 'branch_video'")
    op.execute("UPDATE booking SET mode = 'video' WHERE mode = 'branch_video'")
    op.execute("UPDATE staff SET active = false, role = 'support' WHERE role = 'branch'")
    _set_checks(OLD_ROLES, OLD_MODES)
