"""run liveness (worker, attempt, retries) and the full companion of incremental exporters

Revision ID: 0007
Revises: 0006

Written by hand, portable to SQLite, PostgreSQL and MariaDB (see 0004).
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("run", schema=None) as batch_op:
        batch_op.add_column(sa.Column("worker", sa.String(length=128), nullable=True))
        batch_op.add_column(sa.Column("attempt", sa.Integer(), nullable=False, server_default="1"))
    with op.batch_alter_table("task", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("max_retries", sa.Integer(), nullable=False, server_default="0")
        )
        batch_op.add_column(sa.Column("full_companion_id", sa.Integer(), nullable=True))
        batch_op.create_foreign_key(
            batch_op.f("fk_task_full_companion_id_task"),
            "task",
            ["full_companion_id"],
            ["id"],
            ondelete="SET NULL",
        )


def downgrade():
    with op.batch_alter_table("task", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_task_full_companion_id_task"), type_="foreignkey")
        batch_op.drop_column("full_companion_id")
        batch_op.drop_column("max_retries")
    with op.batch_alter_table("run", schema=None) as batch_op:
        batch_op.drop_column("attempt")
        batch_op.drop_column("worker")
