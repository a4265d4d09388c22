"""schedules, notifications, retention

Revision ID: 0004
Revises: 0003

Written by hand, portable to SQLite, PostgreSQL and MariaDB: columns added to existing tables
go through batch_alter_table (SQLite rebuilds the table), new NOT NULL columns carry a server
default so existing rows get a value.
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("task", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("schedule", sa.String(length=128), nullable=False, server_default="none")
        )
        batch_op.add_column(sa.Column("timezone", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("next_run_at", sa.DateTime(), nullable=True))
        batch_op.add_column(
            sa.Column("notify_success", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch_op.add_column(sa.Column("notify_emails", sa.String(length=512), nullable=True))
        batch_op.add_column(sa.Column("webhook_url", sa.String(length=512), nullable=True))
        batch_op.add_column(sa.Column("webhook_secret", sa.String(length=128), nullable=True))
        batch_op.create_index(batch_op.f("ix_task_next_run_at"), ["next_run_at"], unique=False)

    with op.batch_alter_table("run", schema=None) as batch_op:
        batch_op.add_column(sa.Column("reason", sa.String(length=255), nullable=True))
        batch_op.add_column(sa.Column("scheduled_for", sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column("log", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("file_removed_at", sa.DateTime(), nullable=True))

    op.create_table(
        "notification",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("task_id", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=True),
        sa.Column("event", sa.String(length=32), nullable=False),
        sa.Column("level", sa.String(length=16), nullable=False),
        sa.Column("title", sa.String(length=255), nullable=False),
        sa.Column("message", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("read_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["task_id"], ["task.id"], name=op.f("fk_notification_task_id_task"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["run_id"], ["run.id"], name=op.f("fk_notification_run_id_run"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notification")),
    )
    with op.batch_alter_table("notification", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_notification_task_id"), ["task_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_notification_run_id"), ["run_id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_notification_created_at"), ["created_at"], unique=False
        )

    op.create_table(
        "notification_delivery",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("notification_id", sa.Integer(), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("target", sa.String(length=512), nullable=False),
        sa.Column("payload", sa.Text(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("next_attempt_at", sa.DateTime(), nullable=True),
        sa.Column("sent_at", sa.DateTime(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["notification_id"],
            ["notification.id"],
            name=op.f("fk_notification_delivery_notification_id_notification"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notification_delivery")),
    )
    with op.batch_alter_table("notification_delivery", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_notification_delivery_notification_id"),
            ["notification_id"],
            unique=False,
        )
        batch_op.create_index(
            batch_op.f("ix_notification_delivery_status"), ["status"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_notification_delivery_next_attempt_at"),
            ["next_attempt_at"],
            unique=False,
        )

    op.create_table(
        "scheduler_chore",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("next_run_at", sa.DateTime(), nullable=False),
        sa.Column("last_run_at", sa.DateTime(), nullable=True),
        sa.Column("last_result", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_scheduler_chore")),
    )


def downgrade():
    # Dropping a table drops its indexes (MariaDB refuses to drop one that backs a foreign key).
    op.drop_table("scheduler_chore")
    op.drop_table("notification_delivery")
    op.drop_table("notification")

    with op.batch_alter_table("run", schema=None) as batch_op:
        batch_op.drop_column("file_removed_at")
        batch_op.drop_column("log")
        batch_op.drop_column("scheduled_for")
        batch_op.drop_column("reason")

    with op.batch_alter_table("task", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_task_next_run_at"))
        batch_op.drop_column("webhook_secret")
        batch_op.drop_column("webhook_url")
        batch_op.drop_column("notify_emails")
        batch_op.drop_column("notify_success")
        batch_op.drop_column("next_run_at")
        batch_op.drop_column("timezone")
        batch_op.drop_column("schedule")
