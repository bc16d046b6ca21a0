"""lock intents: tasks and trades are recorded, with their hashlock, before their lock is sent

A server killed between a lock transaction and its database commit used to leave a fee or a
price locked on chain with no row to refund it through. Now the row is committed first, in state
`pending` with the hashlock and no lock id; the indexer completes it from the Locked event.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

TABLES = ("tasks", "trades")


def upgrade() -> None:
    for table in TABLES:
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column("hashlock", sa.String(length=66), nullable=True))
            batch.alter_column("lock_id", existing_type=sa.String(length=66), nullable=True)
            batch.create_index(f"ix_{table}_hashlock", ["hashlock"], unique=True)


def downgrade() -> None:
    for table in TABLES:
        op.execute(sa.text(f"DELETE FROM {table} WHERE lock_id IS NULL"))
        with op.batch_alter_table(table) as batch:
            batch.drop_index(f"ix_{table}_hashlock")
            batch.alter_column("lock_id", existing_type=sa.String(length=66), nullable=False)
            batch.drop_column("hashlock")
