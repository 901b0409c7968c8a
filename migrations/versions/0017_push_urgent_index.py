"""push_outbox: an index for the worker's first claim, the urgent rows that are due

Revision ID: 0017_push_urgent_index
Revises: 0016_sos
Create Date: 2026-12-03 19:00:00

"""
from alembic import op


# revision identifiers, used by Alembic.
revision = '0017_push_urgent_index'
down_revision = '0016_sos'
branch_labels = None
depends_on = None


def upgrade():
    op.create_index('ix_push_outbox_due_urgency', 'push_outbox',
                    ['status', 'urgency', 'next_attempt_at'], unique=False)


def downgrade():
    op.drop_index('ix_push_outbox_due_urgency', table_name='push_outbox')
