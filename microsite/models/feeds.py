"""Staff calendar feeds: one secret, revocable URL per clinician (or the whole clinic).

Only a hash of each token is stored, so a copy of the database does not hand out working feed
URLs. A feed is never deleted: revoking sets `revoked_at`, and "renew" is revoke + create.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from .. import clock
from ..database import UTCDateTime
from ..extensions import db
from .booking import Booking


class FeedToken(db.Model):
    __tablename__ = "feed_token"
    __table_args__ = (Index("ix_feed_token_clinician_id", "clinician_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    # sha256 hex of the token in the URL; the token itself is shown once and never stored.
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    # NULL: the whole clinic's feed.
    clinician_id: Mapped[int | None] = mapped_column(ForeignKey("clinician.id", ondelete="CASCADE"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=lambda: clock.now())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


# A feed's validator reads the newest change to any booking; this index makes that max()
# a single index lookup, so answering "304 Not Modified" costs almost nothing. It lives here,
# beside its only reader, rather than in the booking module.
BOOKING_UPDATED_AT_INDEX = Index("ix_booking_updated_at", Booking.updated_at)
