"""search across every case: one search document per ticket (ticket_search), indexed by FTS5 on
SQLite and by GIN over a weighted tsvector on PostgreSQL; filled from the existing tickets

Revision ID: 0018_search
Revises: 0017_desk_day
Create Date: 2026-12-02 20:30:00

"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql


# revision identifiers, used by Alembic.
revision = '0020_search'
down_revision = '0019_citizens'
branch_labels = None
depends_on = None

FTS = 'ticket_search_fts'


def upgrade():
    bind = op.get_bind()
    op.create_table(
        'ticket_search',
        sa.Column('ticket_id', sa.Integer(), autoincrement=False, nullable=False),
        sa.Column('who', sa.Text(), nullable=True),
        sa.Column('what', sa.Text(), nullable=True),
        sa.Column('body', sa.Text(), nullable=True),
        sa.Column('reading', sa.Text(), nullable=True),
        sa.Column('document', sa.Text().with_variant(postgresql.TSVECTOR(), 'postgresql'), nullable=True),
        sa.ForeignKeyConstraint(['ticket_id'], ['ticket.id'], name=op.f('fk_ticket_search_ticket_id_ticket'), ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('ticket_id', name=op.f('pk_ticket_search')),
    )
    if bind.dialect.name == 'postgresql':
        op.create_index('ix_ticket_search_document', 'ticket_search', ['document'], unique=False, postgresql_using='gin')
    else:
        # FTS5 over the grams kept in ticket_search (external content), kept in step by
        # triggers. The ascii tokenizer splits on ASCII spaces and punctuation only, so each
        # of our space-separated grams (kana and kanji included) is one token as written.
        op.execute(
            f"CREATE VIRTUAL TABLE {FTS} USING fts5(who, what, body, reading, "
            "content='ticket_search', content_rowid='ticket_id', tokenize='ascii')"
        )
        op.execute(
            f"CREATE TRIGGER ticket_search_ai AFTER INSERT ON ticket_search BEGIN "
            f"INSERT INTO {FTS}(rowid, who, what, body, reading) "
            "VALUES (new.ticket_id, new.who, new.what, new.body, new.reading); END"
        )
        op.execute(
            f"CREATE TRIGGER ticket_search_ad AFTER DELETE ON ticket_search BEGIN "
            f"INSERT INTO {FTS}({FTS}, rowid, who, what, body, reading) "
            "VALUES ('delete', old.ticket_id, old.who, old.what, old.body, old.reading); END"
        )
        op.execute(
            f"CREATE TRIGGER ticket_search_au AFTER UPDATE ON ticket_search BEGIN "
            f"INSERT INTO {FTS}({FTS}, rowid, who, what, body, reading) "
            "VALUES ('delete', old.ticket_id, old.who, old.what, old.body, old.reading); "
            f"INSERT INTO {FTS}(rowid, who, what, body, reading) "
            "VALUES (new.ticket_id, new.who, new.what, new.body, new.reading); END"
        )
    # The tickets already there get their documents (`madoguchi ticket reindex` does the same).
    # Sources of text added by later revisions ask `search.schema_has` and read only what this
    # schema already has (the code is today's, the tables are this revision's).
    from consult.services import search

    bind.info[search.MIGRATING] = True
    try:
        search.rebuild(bind)
    finally:
        bind.info.pop(search.MIGRATING, None)


def downgrade():
    bind = op.get_bind()
    if bind.dialect.name == 'postgresql':
        op.drop_index('ix_ticket_search_document', table_name='ticket_search', postgresql_using='gin')
    else:
        for trigger in ('ticket_search_ai', 'ticket_search_ad', 'ticket_search_au'):
            op.execute(f'DROP TRIGGER IF EXISTS {trigger}')
        op.execute(f'DROP TABLE IF EXISTS {FTS}')
    op.drop_table('ticket_search')
