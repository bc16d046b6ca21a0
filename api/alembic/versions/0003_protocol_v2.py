"""protocol v2: offers on tasks, lock ids before the lock, displaceable products, bonds, ESP stakes

- tasks: the ESP's signed `offer` and its `opening` (JSON). The lock id (the offer's digest) is
  known before the lock is sent, so an intent row carries it from the start and the indexer
  completes intents by lock id (GenerationLocked / PurchaseLocked).
- products: `content_hash` is no longer unique (a registration with an earlier generation displaces
  the holder, and both rows stay); `lock_id` and `generation_seq` of the paid lock it came from;
  `bond_released`.
- esps: `stake_state`, kept from the exchange's ESP events.
- chain_meta: `protocol_version` (1 for rows recorded before this revision: their contracts are v1,
  which a v2 server refuses to serve).

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

#: Gives the unnamed unique constraint of 0001 on products.content_hash a name in SQLite's batch copy.
SQLITE_NAMES = {"uq": "uq_%(table_name)s_%(column_0_name)s"}


def _content_hash_unique(bind: sa.engine.Connection) -> str | None:
    for constraint in sa.inspect(bind).get_unique_constraints("products"):
        if constraint["column_names"] == ["content_hash"]:
            return constraint["name"] or "uq_products_content_hash"
    return None


def upgrade() -> None:
    bind = op.get_bind()
    with op.batch_alter_table("chain_meta") as batch:
        batch.add_column(sa.Column("protocol_version", sa.Integer(), server_default="1", nullable=False))
    with op.batch_alter_table("esps") as batch:
        batch.add_column(sa.Column("stake_state", sa.String(length=16), server_default="active", nullable=False))
    with op.batch_alter_table("tasks") as batch:
        batch.add_column(sa.Column("offer", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("opening", sa.JSON(), nullable=True))
    unique = _content_hash_unique(bind)
    naming = SQLITE_NAMES if bind.dialect.name == "sqlite" else {}
    with op.batch_alter_table("products", naming_convention=naming) as batch:
        if unique is not None:
            batch.drop_constraint(unique, type_="unique")
        batch.add_column(sa.Column("lock_id", sa.String(length=66), nullable=True))
        batch.add_column(sa.Column("generation_seq", sa.BigInteger(), nullable=True))
        batch.add_column(sa.Column("bond_released", sa.Boolean(), server_default=sa.false(), nullable=False))
        batch.create_index("ix_products_content_hash", ["content_hash"], unique=False)
        batch.create_index("ix_products_lock_id", ["lock_id"], unique=True)


def downgrade() -> None:
    # v1 knows one product per content hash: the displaced (revoked) copies go.
    op.execute(
        sa.text(
            "DELETE FROM products WHERE revoked AND content_hash IN "
            "(SELECT content_hash FROM products GROUP BY content_hash HAVING count(*) > 1)"
        )
    )
    with op.batch_alter_table("products") as batch:
        batch.drop_index("ix_products_lock_id")
        batch.drop_index("ix_products_content_hash")
        batch.drop_column("bond_released")
        batch.drop_column("generation_seq")
        batch.drop_column("lock_id")
        batch.create_unique_constraint("uq_products_content_hash", ["content_hash"])
    with op.batch_alter_table("tasks") as batch:
        batch.drop_column("opening")
        batch.drop_column("offer")
    with op.batch_alter_table("esps") as batch:
        batch.drop_column("stake_state")
    with op.batch_alter_table("chain_meta") as batch:
        batch.drop_column("protocol_version")
