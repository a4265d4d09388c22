"""destinations of exporters and the deliveries of their runs

Revision ID: 0010
Revises: 0009_secrets

Written by hand, portable to SQLite, PostgreSQL and MariaDB (see 0004).
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009_secrets"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "destination",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("task_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("label", sa.String(length=128), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False, server_default=sa.true()),
        sa.Column("settings", sa.JSON(), nullable=False),
        sa.Column("secrets", sa.Text(), nullable=True),
        sa.Column("learned", sa.JSON(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["task_id"], ["task.id"], name=op.f("fk_destination_task_id_task"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_destination")),
    )
    with op.batch_alter_table("destination", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_destination_task_id"), ["task_id"], unique=False)
    op.create_table(
        "delivery",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("destination_id", sa.Integer(), nullable=True),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("label", sa.String(length=128), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("started_at", sa.DateTime(), nullable=True),
        sa.Column("ended_at", sa.DateTime(), nullable=True),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("bytes", sa.BigInteger(), nullable=True),
        sa.Column("remote_name", sa.String(length=512), nullable=True),
        sa.Column("error", sa.String(length=512), nullable=True),
        sa.Column("next_attempt_at", sa.DateTime(), nullable=True),
        sa.Column("attempts", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["run_id"], ["run.id"], name=op.f("fk_delivery_run_id_run"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["destination_id"],
            ["destination.id"],
            name=op.f("fk_delivery_destination_id_destination"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_delivery")),
    )
    with op.batch_alter_table("delivery", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_delivery_run_id"), ["run_id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_delivery_destination_id"), ["destination_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_delivery_outcome"), ["outcome"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_delivery_next_attempt_at"), ["next_attempt_at"], unique=False
        )


def downgrade():
    # Dropping a table drops its indexes (MariaDB refuses to drop one that backs a foreign key).
    op.drop_table("delivery")
    op.drop_table("destination")
