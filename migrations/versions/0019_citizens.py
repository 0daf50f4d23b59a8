"""one citizen, one record: birth date, folded name keys for the match (backfilled), merge
pointers on citizens and tickets, merge records for undo, related tickets (関連する相談)

Revision ID: 0018_citizens
Revises: 0017_desk_day
Create Date: 2026-12-02 20:00:00

"""

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = "0019_citizens"
down_revision = "0018_basics"
branch_labels = None
depends_on = None

BATCH = 5000


def upgrade():
    # Plain ADD COLUMN: a batch copy of these referenced tables would trip their foreign keys
    # on SQLite (so the merge pointers carry none; the merge service is their only writer).
    op.add_column("citizen", sa.Column("birth_date", sa.Date(), nullable=True))
    op.add_column("citizen", sa.Column("name_fold", sa.String(length=80), nullable=True))
    op.add_column("citizen", sa.Column("kana_fold", sa.String(length=80), nullable=True))
    op.add_column("citizen", sa.Column("merged_into_id", sa.Integer(), nullable=True))
    op.create_index("ix_citizen_merged_into_id", "citizen", ["merged_into_id"], unique=False)
    op.add_column("ticket", sa.Column("merged_into_id", sa.Integer(), nullable=True))
    op.create_index("ix_ticket_merged_into_id", "ticket", ["merged_into_id"], unique=False)
    postgres = op.get_bind().dialect.name == "postgresql"
    for column in ("name_fold", "kana_fold"):
        op.create_index(
            f"ix_citizen_{column}",
            "citizen",
            [column],
            unique=False,
            postgresql_ops={column: "text_pattern_ops"} if postgres else {},
        )
    op.create_table(
        "merge_record",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("source_id", sa.Integer(), nullable=False),
        sa.Column("target_id", sa.Integer(), nullable=False),
        sa.Column("staff_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("reason", sa.String(length=200), nullable=False),
        sa.Column("moved", sa.JSON(), nullable=False),
        sa.Column("undone_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("undone_by_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["staff_id"], ["staff.id"], name=op.f("fk_merge_record_staff_id_staff")
        ),
        sa.ForeignKeyConstraint(
            ["undone_by_id"], ["staff.id"], name=op.f("fk_merge_record_undone_by_id_staff")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_merge_record")),
    )
    op.create_index("ix_merge_record_source", "merge_record", ["kind", "source_id"], unique=False)
    op.create_table(
        "ticket_link",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("ticket_id", sa.Integer(), nullable=False),
        sa.Column("related_id", sa.Integer(), nullable=False),
        sa.Column("staff_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("ticket_id < related_id", name=op.f("ck_ticket_link_ordered")),
        sa.ForeignKeyConstraint(
            ["related_id"], ["ticket.id"], name=op.f("fk_ticket_link_related_id_ticket")
        ),
        sa.ForeignKeyConstraint(
            ["staff_id"], ["staff.id"], name=op.f("fk_ticket_link_staff_id_staff")
        ),
        sa.ForeignKeyConstraint(
            ["ticket_id"], ["ticket.id"], name=op.f("fk_ticket_link_ticket_id_ticket")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ticket_link")),
        sa.UniqueConstraint("ticket_id", "related_id", name=op.f("uq_ticket_link_ticket_id_related_id")),
    )
    op.create_index("ix_ticket_link_related", "ticket_link", ["related_id"], unique=False)
    _backfill()


def _backfill():
    """Every citizen's folded keys, with the same fold_name() the match uses, in batches."""
    from consult.services.normalize import fold_name

    bind = op.get_bind()
    citizen = sa.table(
        "citizen",
        sa.column("id", sa.Integer),
        sa.column("name", sa.String),
        sa.column("kana", sa.String),
        sa.column("name_fold", sa.String),
        sa.column("kana_fold", sa.String),
    )
    last = 0
    while True:
        rows = bind.execute(
            sa.select(citizen.c.id, citizen.c.name, citizen.c.kana)
            .where(citizen.c.id > last)
            .order_by(citizen.c.id)
            .limit(BATCH)
        ).all()
        if not rows:
            return
        bind.execute(
            citizen.update()
            .where(citizen.c.id == sa.bindparam("b_id"))
            .values(name_fold=sa.bindparam("b_name"), kana_fold=sa.bindparam("b_kana")),
            [
                {"b_id": r.id, "b_name": fold_name(r.name), "b_kana": fold_name(r.kana)}
                for r in rows
            ],
        )
        last = rows[-1].id


def downgrade():
    op.drop_index("ix_ticket_link_related", table_name="ticket_link")
    op.drop_table("ticket_link")
    op.drop_index("ix_merge_record_source", table_name="merge_record")
    op.drop_table("merge_record")
    op.drop_index("ix_citizen_kana_fold", table_name="citizen")
    op.drop_index("ix_citizen_name_fold", table_name="citizen")
    op.drop_index("ix_ticket_merged_into_id", table_name="ticket")
    op.drop_column("ticket", "merged_into_id")
    op.drop_index("ix_citizen_merged_into_id", table_name="citizen")
    for column in ("merged_into_id", "kana_fold", "name_fold", "birth_date"):
        op.drop_column("citizen", column)
