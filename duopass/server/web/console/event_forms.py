"""The events pages' forms, checked field by field before a service sees them: each field's
refusal is a code the templates put in the page's language (`_event_field.html`), beside the
field. The services check again (and refuse what only the database knows: an id taken, a venue
unknown)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Final
from zoneinfo import ZoneInfo

from duopass.server.limits import (
    ENTRIES_MAX,
    ID_CHARS_MAX,
    NAME_CHARS_MAX,
    TICKET_QUOTA_MAX,
    TIME_MAX,
)
from duopass.server.services import events
from duopass.server.web.console.holder_forms import minor_units

__all__ = ["EventForm", "Fields", "TicketTypeForm", "TicketTypeIn", "VenueForm"]

_PUBLIC_ID: Final = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_CONTROL: Final = re.compile(r"[\x00-\x1f\x7f]")
_WHOLE: Final = re.compile(r"^[0-9]{1,9}$")
_LOCAL: Final = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}$")
VENUES_MAX: Final = 16


@dataclass
class Fields:
    """What was typed (shown again) and each refused field's code."""

    typed: dict[str, str]
    errors: dict[str, str] = field(default_factory=dict)

    def public_id(self, name: str) -> str:
        value = self.typed.get(name, "").strip()
        if not value:
            self.errors[name] = "required"
        elif len(value) > ID_CHARS_MAX or not _PUBLIC_ID.match(value):
            self.errors[name] = "bad_id"
        return value

    def text(self, name: str) -> str:
        value = self.typed.get(name, "").strip()
        if not value:
            self.errors[name] = "required"
        elif len(value) > NAME_CHARS_MAX or _CONTROL.search(value):
            self.errors[name] = "bad_name"
        return value

    def whole(self, name: str, low: int, high: int) -> int:
        value = self.typed.get(name, "").strip()
        if not _WHOLE.match(value) or not low <= int(value) <= high:
            self.errors[name] = "bad_whole"
            return low
        return int(value)

    def moment(self, name: str, zone: ZoneInfo) -> int:
        """A `datetime-local` value read in the issuer's time zone, as Unix seconds."""
        value = self.typed.get(name, "").strip()
        try:
            if not _LOCAL.match(value):
                raise ValueError(value)
            at = int(datetime.fromisoformat(value).replace(tzinfo=zone).timestamp())
        except ValueError:
            self.errors[name] = "bad_time"
            return 0
        if not 0 < at <= TIME_MAX:
            self.errors[name] = "bad_time"
        return at


@dataclass
class VenueForm:
    fields: Fields

    def spec(self) -> events.VenueIn:
        return events.VenueIn(self.fields.public_id("venue_id"), self.fields.text("venue_name"))


@dataclass
class EventForm:
    fields: Fields
    venues: list[str]

    def spec(self, zone: ZoneInfo) -> events.EventIn:
        found = self.fields
        event_id, name = found.public_id("id"), found.text("name")
        doors, ends = found.moment("doors", zone), found.moment("ends", zone)
        if "doors" not in found.errors and "ends" not in found.errors and ends <= doors:
            found.errors["ends"] = "ends_before_doors"
        chosen = list(dict.fromkeys(self.venues))
        if not 1 <= len(chosen) <= VENUES_MAX:
            found.errors["venues"] = "no_venue"
        return events.EventIn(event_id, name, doors, ends, tuple(chosen))


@dataclass(frozen=True)
class TicketTypeIn:
    name: str
    price: int
    entries: int
    quota: int
    static_allowed: bool


@dataclass
class TicketTypeForm:
    fields: Fields
    static_allowed: bool

    def read(self) -> TicketTypeIn:
        found = self.fields
        name = found.text("type_name")
        price_text = found.typed.get("price", "").strip()
        price = 0 if price_text in ("0", "0.0", "0.00") else minor_units(price_text)
        if price is None:
            found.errors["price"] = "bad_price"
        return TicketTypeIn(
            name=name,
            price=price or 0,
            entries=found.whole("entries", 1, ENTRIES_MAX),
            quota=found.whole("quota", 1, TICKET_QUOTA_MAX),
            static_allowed=self.static_allowed,
        )
