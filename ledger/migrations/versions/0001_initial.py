"""initial ledger: requests, estimates, events

Revision ID: 0001_initial
Revises:
Create Date: 2026-12-02

Instants are BigInteger microseconds since the epoch, UTC (see ledger.schema).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


revision = "0001_initial"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "estimates",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("city", sa.String(length=32), nullable=False),
        sa.Column("request_id", sa.String(length=128), nullable=True),
        sa.Column("estimated_at", sa.BigInteger(), nullable=False, comment="microseconds since 1970-01-01 UTC"),
        sa.Column("created_at", sa.BigInteger(), nullable=False, comment="microseconds since 1970-01-01 UTC"),
        sa.Column("time_to_close_version", sa.String(length=64), nullable=True),
        sa.Column("department_version", sa.String(length=64), nullable=True),
        sa.Column("p10_hours", sa.Float(), nullable=False),
        sa.Column("p50_hours", sa.Float(), nullable=False),
        sa.Column("p90_hours", sa.Float(), nullable=False),
        sa.Column("p_closed_within", sa.JSON(), nullable=False),
        sa.Column("expected_close_at", sa.BigInteger(), nullable=False, comment="microseconds since 1970-01-01 UTC"),
        sa.Column("department", sa.String(length=200), nullable=True),
        sa.Column("department_probability", sa.Float(), nullable=True),
        sa.Column("message", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("estimates", schema=None) as batch_op:
        batch_op.create_index("ix_estimates_city_request_id", ["city", "request_id", "id"], unique=False)

    op.create_table(
        "events",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("city", sa.String(length=32), nullable=False),
        sa.Column("request_id", sa.String(length=128), nullable=False),
        sa.Column("received_at", sa.BigInteger(), nullable=False, comment="microseconds since 1970-01-01 UTC"),
        sa.Column("updated_at", sa.BigInteger(), nullable=True, comment="microseconds since 1970-01-01 UTC"),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("closed_at", sa.BigInteger(), nullable=True, comment="microseconds since 1970-01-01 UTC"),
        sa.Column("department", sa.String(length=200), nullable=True),
        sa.Column("previous_status", sa.String(length=16), nullable=True),
        sa.Column("previous_closed_at", sa.BigInteger(), nullable=True, comment="microseconds since 1970-01-01 UTC"),
        sa.Column("origin", sa.String(length=500), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.create_index("ix_events_city_request_id", ["city", "request_id"], unique=False)

    op.create_table(
        "requests",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("city", sa.String(length=32), nullable=False),
        sa.Column("request_id", sa.String(length=128), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False, comment="microseconds since 1970-01-01 UTC"),
        sa.Column("request_type", sa.String(length=200), nullable=True),
        sa.Column("source", sa.String(length=64), nullable=True),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("latitude", sa.Float(), nullable=True),
        sa.Column("longitude", sa.Float(), nullable=True),
        sa.Column("zip_code", sa.String(length=10), nullable=True),
        sa.Column("council_district", sa.String(length=64), nullable=True),
        sa.Column("neighborhood", sa.String(length=200), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("closed_at", sa.BigInteger(), nullable=True, comment="microseconds since 1970-01-01 UTC"),
        sa.Column("department", sa.String(length=200), nullable=True),
        sa.Column("sla_target_at", sa.BigInteger(), nullable=True, comment="microseconds since 1970-01-01 UTC"),
        sa.Column("source_format", sa.String(length=32), nullable=True),
        sa.Column("source_file", sa.String(length=500), nullable=True),
        sa.Column("source_row", sa.BigInteger(), nullable=True),
        sa.Column("first_seen_at", sa.BigInteger(), nullable=False, comment="microseconds since 1970-01-01 UTC"),
        sa.Column("last_updated_at", sa.BigInteger(), nullable=False, comment="microseconds since 1970-01-01 UTC"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("city", "request_id", name="uq_requests_city_request_id"),
    )
    with op.batch_alter_table("requests", schema=None) as batch_op:
        batch_op.create_index("ix_requests_city_created_at", ["city", "created_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("requests", schema=None) as batch_op:
        batch_op.drop_index("ix_requests_city_created_at")

    op.drop_table("requests")
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.drop_index("ix_events_city_request_id")

    op.drop_table("events")
    with op.batch_alter_table("estimates", schema=None) as batch_op:
        batch_op.drop_index("ix_estimates_city_request_id")

    op.drop_table("estimates")
