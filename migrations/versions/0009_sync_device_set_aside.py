"""Devices report how many records they set aside (the server failed on each alone)

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-03 08:30:00

A phone never lets one record hold its queue hostage: a record the server fails
on again and again, sent alone, is set aside on the phone, and the phone says
how many in every sync request; the managers' device health shows it.
"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('sync_devices', schema=None) as batch_op:
        batch_op.add_column(sa.Column('set_aside', sa.Integer(), nullable=False,
                                      server_default='0'))


def downgrade():
    with op.batch_alter_table('sync_devices', schema=None) as batch_op:
        batch_op.drop_column('set_aside')
