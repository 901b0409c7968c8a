"""The SMS fallback: a crew session's SMS key, the received messages and the
replies' outbox (api/sms, docs/sms.md)

Revision ID: 0013_sms
Revises: 0012_review_status
Create Date: 2026-12-03 12:40:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0013_sms'
down_revision = '0012_review_status'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('auth_sessions', schema=None) as batch_op:
        batch_op.add_column(sa.Column('sms_key', sa.LargeBinary(length=32), nullable=True))

    op.create_table('sms_inbound',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('event_id', sa.String(length=64), nullable=True),
    sa.Column('received_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('sender', sa.String(length=32), nullable=False),
    sa.Column('text', sa.String(length=480), nullable=False),
    sa.Column('outcome', sa.Enum('created', 'merged', 'rejected', 'ignored', name='sms_outcome', native_enum=False, create_constraint=True, length=16), nullable=False),
    sa.Column('reason', sa.String(length=32), nullable=True),
    sa.Column('detail', sa.String(length=300), nullable=False),
    sa.Column('digest', sa.String(length=64), nullable=True),
    sa.Column('session_id', sa.Integer(), nullable=True),
    sa.Column('person_id', sa.Integer(), nullable=True),
    sa.Column('incident_id', sa.Uuid(), nullable=True),
    sa.Column('case_number', sa.String(length=32), nullable=True),
    sa.ForeignKeyConstraint(['incident_id'], ['incidents.id'], name=op.f('fk_sms_inbound_incident_id_incidents'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['person_id'], ['people.id'], name=op.f('fk_sms_inbound_person_id_people'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['session_id'], ['auth_sessions.id'], name=op.f('fk_sms_inbound_session_id_auth_sessions'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_sms_inbound')),
    sa.UniqueConstraint('digest', name=op.f('uq_sms_inbound_digest')),
    sa.UniqueConstraint('event_id', name=op.f('uq_sms_inbound_event_id'))
    )
    with op.batch_alter_table('sms_inbound', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_sms_inbound_incident_id'), ['incident_id'], unique=False)
        batch_op.create_index('ix_sms_inbound_outcome_received', ['outcome', 'received_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_sms_inbound_session_id'), ['session_id'], unique=False)

    op.create_table('sms_outbox',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('inbound_id', sa.Integer(), nullable=False),
    sa.Column('to_number', sa.String(length=32), nullable=False),
    sa.Column('text', sa.String(length=320), nullable=False),
    sa.Column('status', sa.Enum('pending', 'sent', 'failed', name='sms_reply_status', native_enum=False, create_constraint=True, length=16), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('next_attempt_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('sent_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_status', sa.Integer(), nullable=True),
    sa.Column('last_error', sa.String(length=300), nullable=True),
    sa.ForeignKeyConstraint(['inbound_id'], ['sms_inbound.id'], name=op.f('fk_sms_outbox_inbound_id_sms_inbound'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_sms_outbox')),
    sa.UniqueConstraint('inbound_id', name=op.f('uq_sms_outbox_inbound_id'))
    )
    with op.batch_alter_table('sms_outbox', schema=None) as batch_op:
        batch_op.create_index('ix_sms_outbox_status_due', ['status', 'next_attempt_at'], unique=False)


def downgrade():
    with op.batch_alter_table('sms_outbox', schema=None) as batch_op:
        batch_op.drop_index('ix_sms_outbox_status_due')
    op.drop_table('sms_outbox')
    with op.batch_alter_table('sms_inbound', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_sms_inbound_session_id'))
        batch_op.drop_index('ix_sms_inbound_outcome_received')
        batch_op.drop_index(batch_op.f('ix_sms_inbound_incident_id'))
    op.drop_table('sms_inbound')
    with op.batch_alter_table('auth_sessions', schema=None) as batch_op:
        batch_op.drop_column('sms_key')
