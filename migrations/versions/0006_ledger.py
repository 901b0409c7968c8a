"""Ledger: per-incident hash chains over incident_events, signed receipts

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-26 05:00:00

Existing events are chained in the order they were stored (by id) within each
incident, with the same canonical form as api.ledger.service (copied here: a
migration never imports application code). The append-only triggers are set
aside for the backfill only, and are in place again when it commits.
"""
import hashlib
import json
import uuid
from datetime import UTC, datetime
from decimal import Decimal

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None

GENESIS = "0" * 64


def _iso(instant):
    if instant.tzinfo is None:
        instant = instant.replace(tzinfo=UTC)
    return instant.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _normalise(value):
    if isinstance(value, bool) or value is None or isinstance(value, int | str):
        return value
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, Decimal):
        return repr(float(value))
    if isinstance(value, datetime):
        return _iso(value)
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, dict):
        return {str(k): _normalise(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_normalise(v) for v in value]
    return str(value)


def _hash(prev, row, seq):
    document = {"v": 1, "incident_id": str(row.incident_id), "seq": seq, "kind": row.kind,
                "actor_id": row.actor_id, "revision": row.revision, "at": _iso(row.at),
                "changes": row.changes}
    data = json.dumps(_normalise(document), sort_keys=True, separators=(",", ":"),
                      ensure_ascii=False, allow_nan=False).encode("utf-8", "surrogatepass")
    return hashlib.sha256(bytes.fromhex(prev) + data).hexdigest()


def _sqlite_triggers(create):
    for operation in ("UPDATE", "DELETE"):
        if create:
            op.execute(f"""
                CREATE TRIGGER incident_events_no_{operation.lower()}
                BEFORE {operation} ON incident_events
                BEGIN SELECT RAISE(ABORT, 'incident_events is append-only'); END""")
        else:
            op.execute(f"DROP TRIGGER IF EXISTS incident_events_no_{operation.lower()}")


def _backfill(bind):
    events = sa.table('incident_events', sa.column('id', sa.Integer),
                      sa.column('incident_id', sa.Uuid), sa.column('at', sa.DateTime),
                      sa.column('actor_id', sa.Integer), sa.column('kind', sa.String),
                      sa.column('revision', sa.Integer), sa.column('changes', sa.JSON),
                      sa.column('seq', sa.Integer), sa.column('prev_hash', sa.String),
                      sa.column('hash', sa.String))
    rows = bind.execute(sa.select(events).order_by(events.c.incident_id, events.c.id)).all()
    current, seq, prev, updates = None, 0, GENESIS, []
    for row in rows:
        if row.incident_id != current:
            current, seq, prev = row.incident_id, 0, GENESIS
        seq += 1
        digest = _hash(prev, row, seq)
        updates.append({"b_id": row.id, "seq": seq, "prev_hash": prev, "hash": digest})
        prev = digest
    if updates:
        bind.execute(events.update().where(events.c.id == sa.bindparam("b_id"))
                     .values(seq=sa.bindparam("seq"), prev_hash=sa.bindparam("prev_hash"),
                             hash=sa.bindparam("hash")), updates)


def upgrade():
    bind = op.get_bind()
    postgres = bind.dialect.name == "postgresql"
    op.create_table('ledger_receipts',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('incident_id', sa.Uuid(), nullable=False),
    sa.Column('revision', sa.Integer(), nullable=False),
    sa.Column('event_hash', sa.String(length=64), nullable=False),
    sa.Column('received_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('key_id', sa.String(length=32), nullable=False),
    sa.Column('payload', sa.Text(), nullable=False),
    sa.Column('signature', sa.String(length=100), nullable=False),
    sa.ForeignKeyConstraint(['incident_id'], ['incidents.id'],
                            name=op.f('fk_ledger_receipts_incident_id_incidents'),
                            ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_ledger_receipts')),
    sa.UniqueConstraint('incident_id', 'revision', name=op.f('uq_ledger_receipts_incident_id'))
    )
    with op.batch_alter_table('incident_events', schema=None) as batch_op:
        batch_op.add_column(sa.Column('seq', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('prev_hash', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('hash', sa.String(length=64), nullable=True))

    if postgres:
        op.execute("ALTER TABLE incident_events DISABLE TRIGGER incident_events_append_only")
    else:
        _sqlite_triggers(create=False)
    _backfill(bind)
    with op.batch_alter_table('incident_events', schema=None) as batch_op:
        batch_op.alter_column('seq', existing_type=sa.Integer(), nullable=False)
        batch_op.alter_column('prev_hash', existing_type=sa.String(length=64), nullable=False)
        batch_op.alter_column('hash', existing_type=sa.String(length=64), nullable=False)
        batch_op.create_unique_constraint(batch_op.f('uq_incident_events_incident_id'),
                                          ['incident_id', 'seq'])
    if postgres:
        op.execute("ALTER TABLE incident_events ENABLE TRIGGER incident_events_append_only")
    else:
        _sqlite_triggers(create=True)


def downgrade():
    postgres = op.get_bind().dialect.name == "postgresql"
    if not postgres:
        _sqlite_triggers(create=False)
    with op.batch_alter_table('incident_events', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('uq_incident_events_incident_id'), type_='unique')
        batch_op.drop_column('hash')
        batch_op.drop_column('prev_hash')
        batch_op.drop_column('seq')
    if not postgres:
        _sqlite_triggers(create=True)
    op.drop_table('ledger_receipts')
