"""Incidents carry the police acknowledgement time (for the managers' figures)

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02 07:00:00

The figures' sync-to-acknowledgement delay read police_alerts through a join
over every incident in scope; with the time on the incident and in the
station index it is an index-only scan. Filled from police_alerts here.
"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None

# As in api.incidents.models (copied: a migration never imports application code).
REVIEW_INCLUDE_BEFORE = ['kind', 'legal_part', 'status', 'police_needed', 'reporter_id',
                         'post_id', 'received_at', 'victim_role']
REVIEW_INCLUDE = REVIEW_INCLUDE_BEFORE + ['acknowledged_at']


def _station_index(include):
    if op.get_bind().dialect.name == "postgresql":
        op.drop_index('ix_incidents_station_occurred', table_name='incidents')
        op.create_index('ix_incidents_station_occurred', 'incidents',
                        ['station_id', 'occurred_at', 'id'], unique=False,
                        postgresql_include=include)


def upgrade():
    with op.batch_alter_table('incidents', schema=None) as batch_op:
        batch_op.add_column(sa.Column('acknowledged_at', sa.DateTime(timezone=True),
                                      nullable=True))
    op.execute("UPDATE incidents SET acknowledged_at = ("
               " SELECT a.acknowledged_at FROM police_alerts a"
               " WHERE a.incident_id = incidents.id)"
               " WHERE EXISTS (SELECT 1 FROM police_alerts a"
               " WHERE a.incident_id = incidents.id AND a.acknowledged_at IS NOT NULL)")
    _station_index(REVIEW_INCLUDE)


def downgrade():
    _station_index(REVIEW_INCLUDE_BEFORE)
    with op.batch_alter_table('incidents', schema=None) as batch_op:
        batch_op.drop_column('acknowledged_at')
