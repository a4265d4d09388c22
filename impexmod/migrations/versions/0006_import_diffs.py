"""import diffs: what a dry run would change, kept with its run

Revision ID: 0006
Revises: 0005

Written by hand, portable to SQLite, PostgreSQL and MariaDB (see 0004).
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "import_diff",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("file", sa.String(length=255), nullable=False),
        sa.Column("entity", sa.String(length=32), nullable=False),
        sa.Column("label", sa.String(length=255), nullable=False),
        sa.Column("action", sa.String(length=16), nullable=False),
        # {"field": [old, new], ...}: JSON on PostgreSQL and MariaDB, TEXT on SQLite.
        sa.Column("changes", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["run_id"], ["run.id"], name=op.f("fk_import_diff_run_id_run"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_import_diff")),
    )
    with op.batch_alter_table("import_diff", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_import_diff_run_id"), ["run_id"], unique=False)


def downgrade():
    with op.batch_alter_table("import_diff", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_import_diff_run_id"))
    op.drop_table("import_diff")
