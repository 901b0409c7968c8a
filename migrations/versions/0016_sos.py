"""SOS: incidents.sos, the live alarms and each person's stand-down/duress PINs (api/sos)

Revision ID: 0016_sos
Revises: 0015_checkin
Create Date: 2026-12-03 12:30:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0016_sos'
down_revision = '0015_checkin'
branch_labels = None
depends_on = None


def upgrade():
    # A plain ALTER TABLE (no batch copy): on SQLite, copying the incidents table
    # and dropping the old one would trip the foreign keys that refer to it
    # (as in 0010).
    op.add_column('incidents', sa.Column('sos', sa.Boolean(), server_default=sa.false(),
                                         nullable=False))

    op.create_table('sos_alarms',
    sa.Column('incident_id', sa.Uuid(), nullable=False),
    sa.Column('person_id', sa.Integer(), nullable=False),
    sa.Column('opened_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('state', sa.Enum('open', 'stood_down', name='sos_alarm_state', native_enum=False, create_constraint=True, length=16), nullable=False),
    sa.Column('stood_down_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('duress_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_lat', sa.Float(), nullable=True),
    sa.Column('last_lon', sa.Float(), nullable=True),
    sa.Column('last_accuracy_m', sa.Float(), nullable=True),
    sa.Column('last_fixed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_received_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('fixes', sa.Integer(), nullable=False),
    sa.Column('on_the_way_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('on_the_way_by_id', sa.Integer(), nullable=True),
    sa.Column('eta_minutes', sa.SmallInteger(), nullable=True),
    sa.Column('wrong_pins', sa.Integer(), nullable=False),
    sa.CheckConstraint('last_lat IS NULL OR last_lat BETWEEN -90 AND 90', name=op.f('ck_sos_alarms_last_lat_range')),
    sa.CheckConstraint('last_lon IS NULL OR last_lon BETWEEN -180 AND 180', name=op.f('ck_sos_alarms_last_lon_range')),
    sa.CheckConstraint('eta_minutes IS NULL OR eta_minutes BETWEEN 1 AND 240', name=op.f('ck_sos_alarms_eta_range')),
    sa.ForeignKeyConstraint(['incident_id'], ['incidents.id'], name=op.f('fk_sos_alarms_incident_id_incidents'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['on_the_way_by_id'], ['people.id'], name=op.f('fk_sos_alarms_on_the_way_by_id_people'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['person_id'], ['people.id'], name=op.f('fk_sos_alarms_person_id_people'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('incident_id', name=op.f('pk_sos_alarms'))
    )
    with op.batch_alter_table('sos_alarms', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_sos_alarms_person_id'), ['person_id'], unique=False)

    op.create_table('sos_pins',
    sa.Column('person_id', sa.Integer(), nullable=False),
    sa.Column('salt', sa.String(length=64), nullable=False),
    sa.Column('pin_hash', sa.String(length=255), nullable=False),
    sa.Column('duress_hash', sa.String(length=255), nullable=False),
    sa.Column('verifiers', sa.JSON(), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('failures', sa.Integer(), nullable=False),
    sa.Column('locked_until', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['person_id'], ['people.id'], name=op.f('fk_sos_pins_person_id_people'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('person_id', name=op.f('pk_sos_pins'))
    )


def downgrade():
    op.drop_table('sos_pins')
    with op.batch_alter_table('sos_alarms', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_sos_alarms_person_id'))
    op.drop_table('sos_alarms')
    op.execute("ALTER TABLE incidents DROP COLUMN sos")  # SQLite 3.35+, as in 0010
