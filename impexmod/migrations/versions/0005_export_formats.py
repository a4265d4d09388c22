"""export formats, selections, field-mapping templates, stylesheets

Revision ID: 0005
Revises: 0004

Written by hand, portable to SQLite, PostgreSQL and MariaDB (see 0004).
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

LongText = sa.Text().with_variant(mysql.MEDIUMTEXT(), "mysql", "mariadb")


def upgrade():
    with op.batch_alter_table("task", schema=None) as batch_op:
        # The selection: [{"field", "op", "value"}, ...] and how they combine.
        batch_op.add_column(sa.Column("filters", sa.JSON(), nullable=True))
        batch_op.add_column(
            sa.Column("filter_match", sa.String(length=8), nullable=False, server_default="all")
        )
        # A predefined template (shopify, ...) or a saved field template, by name.
        batch_op.add_column(sa.Column("template", sa.String(length=64), nullable=True))
        # A shipped (xslt/) or uploaded stylesheet, by name.
        batch_op.add_column(sa.Column("stylesheet", sa.String(length=64), nullable=True))

    op.create_table(
        "field_template",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("entity", sa.String(length=32), nullable=False),
        sa.Column("description", sa.String(length=255), nullable=True),
        sa.Column("columns", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_field_template")),
        sa.UniqueConstraint("name", name=op.f("uq_field_template_name")),
    )
    op.create_table(
        "stylesheet",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("content", LongText, nullable=False),
        sa.Column("record_wise", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_stylesheet")),
        sa.UniqueConstraint("name", name=op.f("uq_stylesheet_name")),
    )


def downgrade():
    op.drop_table("stylesheet")
    op.drop_table("field_template")
    with op.batch_alter_table("task", schema=None) as batch_op:
        batch_op.drop_column("stylesheet")
        batch_op.drop_column("template")
        batch_op.drop_column("filter_match")
        batch_op.drop_column("filters")
