"""two-factor sign-in (TOTP secret, last step, recovery codes) and directory-managed staff

Revision ID: 0018_auth
Revises: 0017_desk_day
Create Date: 2026-12-02 20:00:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0021_auth'
down_revision = '0020_search'
branch_labels = None
depends_on = None


def upgrade():
    # Plain ALTER TABLE on both databases (SQLite 3.35+ drops columns itself): a batch copy of
    # `staff` would have to drop the table every other table points at.
    op.add_column('staff', sa.Column('totp_secret', sa.String(length=255), nullable=True))
    op.add_column('staff', sa.Column('totp_enabled_at', sa.DateTime(timezone=True), nullable=True))
    op.add_column('staff', sa.Column('totp_last_step', sa.BigInteger(), nullable=True))
    op.add_column('staff', sa.Column('directory_dn', sa.String(length=255), nullable=True))
    op.create_table(
        'recovery_code',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('staff_id', sa.Integer(), nullable=False),
        sa.Column('code_hash', sa.String(length=64), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('used_at', sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(['staff_id'], ['staff.id'], name=op.f('fk_recovery_code_staff_id_staff')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_recovery_code')),
    )
    op.create_index(op.f('ix_recovery_code_staff_id'), 'recovery_code', ['staff_id'], unique=False)


def downgrade():
    op.drop_index(op.f('ix_recovery_code_staff_id'), table_name='recovery_code')
    op.drop_table('recovery_code')
    for column in ('directory_dn', 'totp_last_step', 'totp_enabled_at', 'totp_secret'):
        op.drop_column('staff', column)
