"""Extensions are made once here and bound to an app in create_app."""

from flask import g, has_app_context
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from flask_sqlalchemy.session import Session
from sqlalchemy import MetaData, Select

# Named constraints so Alembic can drop and alter them on every backend.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class ReplicaAwareSession(Session):
    """Plain SELECTs go to the read replica inside a view that asked for it
    (api/replica.py `reads_from_replica` sets g.qorgau_replica); everything else,
    writes and SELECT ... FOR UPDATE included, to the primary."""

    def get_bind(self, mapper=None, clause=None, bind=None, **kwargs):
        if bind is None and has_app_context():
            replica = g.get("qorgau_replica")
            if (replica is not None and isinstance(clause, Select)
                    and clause._for_update_arg is None):
                return replica
        return super().get_bind(mapper=mapper, clause=clause, bind=bind, **kwargs)


db = SQLAlchemy(metadata=MetaData(naming_convention=NAMING_CONVENTION),
                session_options={"class_": ReplicaAwareSession})
migrate = Migrate(compare_type=True, render_as_batch=True)
