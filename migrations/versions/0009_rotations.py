"""Rotations (ordered agents with weights; the weighted round-robin's state per member) and
auto-assignment settings on ticket types

Revision ID: 0009
Revises: 0008
"""
import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "rotations",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("account_id", sa.BigInteger(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("version", sa.Integer(), server_default="1", nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(["account_id"], ["accounts.id"], name=op.f("fk_rotations_account_id_accounts")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rotations")),
        sa.UniqueConstraint("account_id", "name", name=op.f("uq_rotations_account_id")),
    )
    op.create_index(op.f("ix_rotations_account_id"), "rotations", ["account_id"], unique=False)
    op.create_table(
        "rotation_members",
        sa.Column("rotation_id", sa.BigInteger(), nullable=False),
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("weight", sa.Integer(), nullable=False),
        sa.Column("paused", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("current", sa.BigInteger(), server_default="0", nullable=False),
        sa.CheckConstraint("weight BETWEEN 1 AND 100", name=op.f("ck_rotation_members_weight_range")),
        sa.ForeignKeyConstraint(["rotation_id"], ["rotations.id"], ondelete="CASCADE",
                                name=op.f("fk_rotation_members_rotation_id_rotations")),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="CASCADE",
                                name=op.f("fk_rotation_members_user_id_users")),
        sa.PrimaryKeyConstraint("rotation_id", "user_id", name=op.f("pk_rotation_members")),
    )
    op.create_index(op.f("ix_rotation_members_user_id"), "rotation_members", ["user_id"], unique=False)
    op.add_column("ticket_types", sa.Column("auto_assignment_enabled", sa.Boolean(),
                                            server_default=sa.text("false"), nullable=False))
    op.add_column("ticket_types", sa.Column("rotation_id", sa.BigInteger(), nullable=True))
    op.create_foreign_key(op.f("fk_ticket_types_rotation_id_rotations"), "ticket_types", "rotations",
                          ["rotation_id"], ["id"])


def downgrade() -> None:
    op.drop_constraint(op.f("fk_ticket_types_rotation_id_rotations"), "ticket_types", type_="foreignkey")
    op.drop_column("ticket_types", "rotation_id")
    op.drop_column("ticket_types", "auto_assignment_enabled")
    op.drop_index(op.f("ix_rotation_members_user_id"), table_name="rotation_members")
    op.drop_table("rotation_members")
    op.drop_index(op.f("ix_rotations_account_id"), table_name="rotations")
    op.drop_table("rotations")
