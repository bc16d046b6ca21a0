"""ESP nodes and self-custodied accounts (issue #17, docs/api.md#esp-nodes)

- accounts: `custody` (server: the server holds the sealed key; self: Sign-In with Ethereum), and
  `api_key_hash` and `encrypted_key` nullable (a self-custodied account has neither).
- esps: `operator` (node: its own process; server: a simulated profile), `profile` nullable.
- tasks: the coordinator's states (requested, offered; fulfilled renamed delivered; registered), the ESP's
  `offer_signature`, the measured `generation_s`; ciphertext, sealed key and predicted cost nullable
  (a requested task has none yet, a node keeps its own keys).
- sign_in_nonces and account_sessions: EIP-4361 nonces and the sessions they open.

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

NULLABLE_TASK_COLUMNS: dict[str, sa.types.TypeEngine[Any]] = {
    "ciphertext_sha256": sa.String(length=64),
    "encrypted_content_key": sa.LargeBinary(),
    "latency_s": sa.Float(),
    "energy_j": sa.Float(),
    "completed": sa.Boolean(),
    "quality": sa.Float(),
    "breakdown": sa.JSON(),
}


def upgrade() -> None:
    with op.batch_alter_table("accounts") as batch:
        batch.add_column(sa.Column("custody", sa.String(length=8), nullable=False, server_default="server"))
        batch.alter_column("api_key_hash", existing_type=sa.String(length=64), nullable=True)
        batch.alter_column("encrypted_key", existing_type=sa.LargeBinary(), nullable=True)
    with op.batch_alter_table("esps") as batch:
        batch.add_column(sa.Column("operator", sa.String(length=8), nullable=False, server_default="server"))
        batch.alter_column("profile", existing_type=sa.String(length=16), nullable=True)
    with op.batch_alter_table("tasks") as batch:
        batch.add_column(sa.Column("offer_signature", sa.String(length=132), nullable=True))
        batch.add_column(sa.Column("generation_s", sa.Float(), nullable=True))
        for name, kind in NULLABLE_TASK_COLUMNS.items():
            batch.alter_column(name, existing_type=kind, nullable=True)
    op.execute("UPDATE tasks SET state = 'delivered' WHERE state = 'fulfilled'")
    op.execute("UPDATE tasks SET state = 'registered' WHERE state = 'delivered' AND token_id IS NOT NULL")
    op.create_table(
        "sign_in_nonces",
        sa.Column("nonce", sa.String(length=32), primary_key=True),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used", sa.Boolean(), nullable=False, server_default=sa.false()),
    )
    op.create_table(
        "account_sessions",
        sa.Column("token_hash", sa.String(length=64), primary_key=True),
        sa.Column("account_id", sa.Integer(), sa.ForeignKey("accounts.id"), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_account_sessions_account_id", "account_sessions", ["account_id"])


def downgrade() -> None:
    op.drop_index("ix_account_sessions_account_id", "account_sessions")
    op.drop_table("account_sessions")
    op.drop_table("sign_in_nonces")
    op.execute("UPDATE tasks SET state = 'delivered' WHERE state = 'registered'")
    op.execute("UPDATE tasks SET state = 'fulfilled' WHERE state = 'delivered'")
    with op.batch_alter_table("tasks") as batch:
        batch.drop_column("generation_s")
        batch.drop_column("offer_signature")
    with op.batch_alter_table("esps") as batch:
        batch.drop_column("operator")
    with op.batch_alter_table("accounts") as batch:
        batch.drop_column("custody")
