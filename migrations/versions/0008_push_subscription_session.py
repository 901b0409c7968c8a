"""Push subscriptions name the session that made them

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-04 09:00:00

Revoking a session (a lost or stolen phone) deletes the subscriptions it made,
so the phone stops getting pushes. Subscriptions already stored have no known
session (NULL); they go when all of the person's devices are revoked.
"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('push_subscriptions', schema=None) as batch_op:
        batch_op.add_column(sa.Column('session_id', sa.Integer(), nullable=True))
        batch_op.create_index(batch_op.f('ix_push_subscriptions_session_id'), ['session_id'],
                              unique=False)
        batch_op.create_foreign_key(
            batch_op.f('fk_push_subscriptions_session_id_auth_sessions'), 'auth_sessions',
            ['session_id'], ['id'], ondelete='SET NULL')


def downgrade():
    with op.batch_alter_table('push_subscriptions', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_push_subscriptions_session_id_auth_sessions'),
                                 type_='foreignkey')
        batch_op.drop_index(batch_op.f('ix_push_subscriptions_session_id'))
        batch_op.drop_column('session_id')
