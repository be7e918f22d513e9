"""job_runs.error becomes job_runs.message: it holds what a successful run did as well as
why a failed one failed. The values are kept; on SQLite the table is copied (batch mode).

The store's old ``schema_version`` goes to 3, so that a release from before migrations,
which reads ``error``, refuses this database with "upgrade Veille" instead of failing on
its first job.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

meta = sa.table("meta", sa.column("key", sa.String), sa.column("value", sa.Text))


def _schema_version(value: str) -> None:
    op.execute(meta.update().where(meta.c.key == "schema_version").values(value=value))


def upgrade() -> None:
    with op.batch_alter_table("job_runs") as batch:
        batch.alter_column(
            "error", new_column_name="message", existing_type=sa.Text, existing_nullable=False
        )
    _schema_version("3")


def downgrade() -> None:
    with op.batch_alter_table("job_runs") as batch:
        batch.alter_column(
            "message", new_column_name="error", existing_type=sa.Text, existing_nullable=False
        )
    _schema_version("2")
