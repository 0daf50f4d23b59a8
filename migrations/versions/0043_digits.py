"""digits: on PostgreSQL, each search document's 4-digit windows in a narrow table whose B-tree
answers a part of a phone or a number by an index-only scan (consult.services.search)

Revision ID: 0043_digits
Revises: 0042_relay2
Create Date: 2026-12-03 10:20:00.000000

"""
from alembic import op


# revision identifiers, used by Alembic.
revision = '0043_digits'
down_revision = '0042_relay2'
branch_labels = None
depends_on = None

TABLE = 'ticket_search_digits'


def upgrade():
    if op.get_bind().dialect.name != 'postgresql':
        return  # SQLite's FTS5 answers digits from its own index
    op.execute(
        f'CREATE TABLE {TABLE} (gram smallint NOT NULL, ticket_id integer NOT NULL, '
        'score real NOT NULL)'
    )
    # Filled from the documents already written (a 4-digit lexeme is always a window), then
    # indexed: building the B-trees once is faster than keeping them during the insert.
    op.execute(
        f"INSERT INTO {TABLE} (gram, ticket_id, score) "
        "SELECT CAST(t.lexeme AS smallint), s.ticket_id, "
        "sum(CASE w.weight WHEN 'A' THEN 1.0 WHEN 'B' THEN 0.4 WHEN 'C' THEN 0.1 ELSE 0.05 END) "
        "FROM ticket_search AS s "
        "CROSS JOIN LATERAL unnest(s.document) AS t "
        "CROSS JOIN LATERAL unnest(t.weights) AS w(weight) "
        "WHERE t.lexeme ~ '^[0-9]{4}$' "
        "GROUP BY s.ticket_id, t.lexeme"
    )
    op.execute(
        f'ALTER TABLE {TABLE} ADD CONSTRAINT pk_{TABLE} PRIMARY KEY (gram, ticket_id) '
        'INCLUDE (score)'
    )
    op.execute(f'CREATE INDEX ix_{TABLE}_ticket_id ON {TABLE} (ticket_id)')
    op.execute(
        f'ALTER TABLE {TABLE} ADD CONSTRAINT fk_{TABLE}_ticket_id FOREIGN KEY (ticket_id) '
        'REFERENCES ticket_search (ticket_id) ON DELETE CASCADE'
    )
    op.execute(f'ANALYZE {TABLE}')


def downgrade():
    if op.get_bind().dialect.name != 'postgresql':
        return
    op.execute(f'DROP TABLE {TABLE}')
