"""Organisation reference data."""

from flask import Blueprint
from sqlalchemy import select

from api.extensions import db
from api.orgs.models import Region
from api.orgs.schemas import RegionSchema

bp = Blueprint("orgs", __name__)


@bp.get("/regions")
def regions():
    """The 20 ISO 3166-2:KZ units. Public reference data, like the law rules."""
    rows = db.session.scalars(select(Region).order_by(Region.code))
    return {"regions": RegionSchema(many=True).dump(rows)}
