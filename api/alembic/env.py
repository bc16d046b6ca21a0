"""Alembic environment: runs on the connection that `api.db.migrate` hands over."""

from __future__ import annotations

from alembic import context

from api.models import Base

connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - only `api.db.migrate` runs migrations
    raise RuntimeError("run migrations through api.db.migrate(engine)")
context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
