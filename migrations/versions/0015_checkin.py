"""Check-in timers and the escalation ladder (api/checkin, api/police/ladder.py, docs/checkin.md)

Revision ID: 0015_checkin
Revises: 0014_media
Create Date: 2026-12-03 12:15:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0015_checkin'
down_revision = '0014_media'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('escalation_steps',
    sa.Column('region_code', sa.String(length=2), nullable=False),
    sa.Column('level', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('after_seconds', sa.Integer(), nullable=False),
    sa.Column('targets', sa.JSON(), nullable=False),
    sa.ForeignKeyConstraint(['region_code'], ['regions.code'], name=op.f('fk_escalation_steps_region_code_regions'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('region_code', 'level', name=op.f('pk_escalation_steps'))
    )
    op.create_table('checkin_timers',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('person_id', sa.Integer(), nullable=False),
    sa.Column('station_id', sa.Integer(), nullable=False),
    sa.Column('address', sa.String(length=200), nullable=False),
    sa.Column('address_key', sa.String(length=200), nullable=False),
    sa.Column('lat', sa.Float(), nullable=True),
    sa.Column('lon', sa.Float(), nullable=True),
    sa.Column('accuracy_m', sa.Float(), nullable=True),
    sa.Column('minutes', sa.Integer(), nullable=False),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('registered_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('ends_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('reminded_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('overdue_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('police_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('incident_id', sa.Uuid(), nullable=True),
    sa.Column('closed_at', sa.DateTime(timezone=True), nullable=True),
    sa.CheckConstraint('minutes BETWEEN 1 AND 240', name=op.f('ck_checkin_timers_minutes_range')),
    sa.ForeignKeyConstraint(['incident_id'], ['incidents.id'], name=op.f('fk_checkin_timers_incident_id_incidents'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['person_id'], ['people.id'], name=op.f('fk_checkin_timers_person_id_people'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['station_id'], ['stations.id'], name=op.f('fk_checkin_timers_station_id_stations'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_checkin_timers'))
    )
    with op.batch_alter_table('checkin_timers', schema=None) as batch_op:
        batch_op.create_index('ix_checkin_timers_open', ['closed_at', 'ends_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_checkin_timers_person_id'), ['person_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_checkin_timers_station_id'), ['station_id'], unique=False)

    with op.batch_alter_table('police_alerts', schema=None) as batch_op:
        batch_op.add_column(sa.Column('escalation_level', sa.Integer(), server_default='0', nullable=False))
        batch_op.add_column(sa.Column('next_step_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.create_index('ix_police_alerts_next_step', ['next_step_at'], unique=False)
    # Alerts already escalated took the default ladder's one step; those still
    # waiting are looked at on the next tick (which schedules their first step).
    op.execute("UPDATE police_alerts SET escalation_level = 1 WHERE escalated_at IS NOT NULL")
    op.execute("UPDATE police_alerts SET next_step_at = routed_at "
               "WHERE acknowledged_at IS NULL AND escalated_at IS NULL AND post_id IS NOT NULL")


def downgrade():
    with op.batch_alter_table('police_alerts', schema=None) as batch_op:
        batch_op.drop_index('ix_police_alerts_next_step')
        batch_op.drop_column('next_step_at')
        batch_op.drop_column('escalation_level')
    with op.batch_alter_table('checkin_timers', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_checkin_timers_station_id'))
        batch_op.drop_index(batch_op.f('ix_checkin_timers_person_id'))
        batch_op.drop_index('ix_checkin_timers_open')
    op.drop_table('checkin_timers')
    op.drop_table('escalation_steps')
