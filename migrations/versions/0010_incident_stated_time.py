"""Incidents keep the tap's time apart from when it happened (issue 22)

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-03 08:30:00

occurred_at was the instant the server believed the tap was made. The crew
may now state when the incident happened, so that instant is kept, unchanged,
as logged_at (filled from occurred_at, which every incident stored so far
still has as its tap's believed time: tapped_at, or the skew-corrected time
when the device clock was flagged), and a stated time too long before the tap
waits in occurred_at_pending for a manager's confirmation. The station index
carries logged_at too, so the figures' tap-to-sync delay stays index-only.
"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None

# As in api.incidents.models (copied: a migration never imports application code).
REVIEW_INCLUDE_BEFORE = ['kind', 'legal_part', 'status', 'police_needed', 'reporter_id',
                         'post_id', 'received_at', 'victim_role', 'acknowledged_at']
REVIEW_INCLUDE = REVIEW_INCLUDE_BEFORE + ['logged_at']


def _station_index(include):
    if op.get_bind().dialect.name == "postgresql":
        op.drop_index('ix_incidents_station_occurred', table_name='incidents')
        op.create_index('ix_incidents_station_occurred', 'incidents',
                        ['station_id', 'occurred_at', 'id'], unique=False,
                        postgresql_include=include)


def upgrade():
    sqlite = op.get_bind().dialect.name == "sqlite"
    # Added NOT NULL with a placeholder default, then filled: on SQLite, making a
    # column NOT NULL afterwards would copy the incidents table, and dropping the
    # old copy would run the ON DELETE actions of every table that refers to it.
    # The placeholder is never read: every row is filled here, and the
    # application always writes logged_at. (PostgreSQL drops the default.)
    op.add_column('incidents', sa.Column(
        'logged_at', sa.DateTime(timezone=True), nullable=False,
        server_default=sa.text("'1970-01-01 00:00:00'" if sqlite
                               else "'1970-01-01 00:00:00+00'")))
    op.add_column('incidents', sa.Column('occurred_at_pending', sa.DateTime(timezone=True),
                                         nullable=True))
    op.execute("UPDATE incidents SET logged_at = occurred_at")
    if not sqlite:
        op.alter_column('incidents', 'logged_at', server_default=None)
    _station_index(REVIEW_INCLUDE)


def downgrade():
    _station_index(REVIEW_INCLUDE_BEFORE)
    # occurred_at keeps the stated time (the events hold the history, and the
    # tap's own time stays in tapped_at); only a correction still awaiting a
    # manager is lost, as 0008 has nowhere to keep it. Plain ALTER TABLE ...
    # DROP COLUMN (SQLite 3.35+), for the same reason as above.
    op.execute("ALTER TABLE incidents DROP COLUMN occurred_at_pending")
    op.execute("ALTER TABLE incidents DROP COLUMN logged_at")
