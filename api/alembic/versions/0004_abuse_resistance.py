"""abuse resistance: faucet grants, idempotency claims without secrets, storage and simulation quotas

- faucet_grants: what the faucet gave each new account and from which client (the budgets sum them).
- idempotent_replies: `state` (running, committed, done: a key is claimed before its request runs and
  marked committed in its write's own transaction), `withheld` (a reply that carried a secret is never
  stored), `created_at`; `status_code` and `body` are empty until the reply is known.
- tasks: `stored_bytes` (prompt, ciphertext and content of the task, for the storage quota).
- simulations: `output_bytes`, `finished_at`, `purged` (the run's folder removed by retention).

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "faucet_grants",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("client", sa.String(length=64), nullable=False),
        sa.Column("account_id", sa.Integer(), sa.ForeignKey("accounts.id"), nullable=False),
        sa.Column("amount_wei", sa.String(length=80), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("account_id"),
    )
    op.create_index("ix_faucet_grants_client", "faucet_grants", ["client"])
    with op.batch_alter_table("idempotent_replies") as batch:
        batch.add_column(sa.Column("state", sa.String(length=16), server_default="done", nullable=False))
        batch.add_column(sa.Column("withheld", sa.Boolean(), server_default=sa.false(), nullable=False))
        batch.add_column(sa.Column("created_at", sa.DateTime(timezone=True), nullable=True))
        batch.alter_column("status_code", existing_type=sa.Integer(), nullable=True)
        batch.alter_column("body", existing_type=sa.LargeBinary(), nullable=True)
    with op.batch_alter_table("tasks") as batch:
        batch.add_column(sa.Column("stored_bytes", sa.BigInteger(), server_default="0", nullable=False))
    with op.batch_alter_table("simulations") as batch:
        batch.add_column(sa.Column("output_bytes", sa.BigInteger(), server_default="0", nullable=False))
        batch.add_column(sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("purged", sa.Boolean(), server_default=sa.false(), nullable=False))


def downgrade() -> None:
    with op.batch_alter_table("simulations") as batch:
        batch.drop_column("purged")
        batch.drop_column("finished_at")
        batch.drop_column("output_bytes")
    with op.batch_alter_table("tasks") as batch:
        batch.drop_column("stored_bytes")
    # Claims without a reply (and withheld replies, which have no body) cannot be kept by 0003's schema.
    op.execute(sa.text("DELETE FROM idempotent_replies WHERE status_code IS NULL OR body IS NULL OR withheld"))
    with op.batch_alter_table("idempotent_replies") as batch:
        batch.alter_column("body", existing_type=sa.LargeBinary(), nullable=False)
        batch.alter_column("status_code", existing_type=sa.Integer(), nullable=False)
        batch.drop_column("created_at")
        batch.drop_column("withheld")
        batch.drop_column("state")
    op.drop_index("ix_faucet_grants_client", table_name="faucet_grants")
    op.drop_table("faucet_grants")
