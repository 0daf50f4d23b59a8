"""relay: the transfer between the relay (internet zone) and the core (LGWAN zone): items
waiting to cross, ids applied, nonces of signed requests

Revision ID: 0036_relay
Revises: 0035_retention
Create Date: 2026-12-02 23:30:00

"""

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = "0036_relay"
down_revision = "0035_retention"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "transfer_item",
        sa.Column("id", sa.String(length=120), nullable=False),
        sa.Column("kind", sa.String(length=40), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_transfer_item")),
    )
    with op.batch_alter_table("transfer_item", schema=None) as batch_op:
        batch_op.create_index("ix_transfer_item_order", ["created_at", "id"], unique=False)

    op.create_table(
        "transfer_nonce",
        sa.Column("nonce", sa.String(length=64), nullable=False),
        sa.Column("seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("nonce", name=op.f("pk_transfer_nonce")),
    )
    with op.batch_alter_table("transfer_nonce", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_transfer_nonce_seen_at"), ["seen_at"], unique=False)

    op.create_table(
        "transfer_received",
        sa.Column("id", sa.String(length=120), nullable=False),
        sa.Column("kind", sa.String(length=40), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_transfer_received")),
    )
    with op.batch_alter_table("transfer_received", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_transfer_received_received_at"), ["received_at"], unique=False
        )


def downgrade():
    with op.batch_alter_table("transfer_received", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_transfer_received_received_at"))

    op.drop_table("transfer_received")
    with op.batch_alter_table("transfer_nonce", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_transfer_nonce_seen_at"))

    op.drop_table("transfer_nonce")
    with op.batch_alter_table("transfer_item", schema=None) as batch_op:
        batch_op.drop_index("ix_transfer_item_order")

    op.drop_table("transfer_item")
