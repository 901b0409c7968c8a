"""Every domain's models, imported once so the metadata is complete."""

from api.auth.models import AuthSession, Challenge, Invitation, Passkey, RateLimitHit  # noqa: F401
from api.orgs.models import Person, PolicePost, Region, Station  # noqa: F401
