"""Every domain's models, imported once so the metadata is complete."""

from api.access_log import AccessLog  # noqa: F401
from api.auth.models import AuthSession, Challenge, Invitation, Passkey, RateLimitHit  # noqa: F401
from api.checkin.models import CheckinTimer  # noqa: F401
from api.hazards.models import HazardFlag  # noqa: F401
from api.incidents.models import CaseCounter, Incident, IncidentEvent, SyncDevice  # noqa: F401
from api.ledger.models import Receipt  # noqa: F401
from api.media.models import Attachment, MediaChunk, MediaDevice  # noqa: F401
from api.orgs.models import Person, PolicePost, Region, Station  # noqa: F401
from api.police.ladder import EscalationStep  # noqa: F401
from api.police.models import PoliceAlert  # noqa: F401
from api.push.models import PushAttempt, PushOutbox, PushSubscription  # noqa: F401
from api.review.models import ManagerNote  # noqa: F401
from api.sms.models import SmsInbound, SmsReply  # noqa: F401
from api.sos.models import SosAlarm, SosPin  # noqa: F401
