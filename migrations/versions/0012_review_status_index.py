"""Review: an index for the managers' working filters (status, police needed) per station

Revision ID: 0012_review_status
Revises: 0011_hazard_flags
Create Date: 2026-12-03 12:30:00

Across ten stations and three years (bench/review_queries.py, 1,000,000
incidents) the list's total for police_needed+status read every incident in
scope from ix_incidents_station_occurred (107 ms); from this index it is a
range scan of the matching rows (3 ms).
"""
from alembic import op


revision = '0012_review_status'
down_revision = '0011_hazard_flags'
branch_labels = None
depends_on = None


def upgrade():
    op.create_index('ix_incidents_station_status', 'incidents',
                    ['station_id', 'status', 'police_needed', 'occurred_at', 'id'], unique=False)


def downgrade():
    op.drop_index('ix_incidents_station_status', table_name='incidents')
