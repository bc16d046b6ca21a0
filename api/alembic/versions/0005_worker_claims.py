"""several workers: which worker claimed an Idempotency-Key

- idempotent_replies: `worker_id`, the id the supervisor of `serve --workers N` gave the worker that claimed the
  key (empty for a single server). When a worker dies, the supervisor releases the claims that worker still held
  `running` (none of them committed a write), so that a retry runs instead of answering 409
  `idempotency_in_progress` until the next start (docs/api.md#several-workers).

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("idempotent_replies") as batch:
        batch.add_column(sa.Column("worker_id", sa.String(length=32), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("idempotent_replies") as batch:
        batch.drop_column("worker_id")
