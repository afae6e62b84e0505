"""Segment messages (identify, track, page, screen, group, alias) as leads, accounts and events.

Pure functions: no database, no clock. `map_message` turns one message of the Segment HTTP
Tracking API into rows for the same validated models the REST API uses (`LeadIn`, `AccountIn`,
`EventIn`), so both ways in store exactly the same things. Problems are reported with the
field spelled as Segment spells it (`traits.email`, `messageId`), not as leadscore stores it.

Decisions, in short (the module docs in docs/ repeat them for users):

- The lead is `userId`, else `anonymousId`. identify and alias naming two ids ask for a merge.
- Event types are the `event` name in snake_case: "Whitepaper Downloaded" becomes
  `whitepaper_downloaded`, "formSubmit" `form_submit`; pages are `page_view`, screens
  `screen_view`.
- Traits and properties with a canonical meaning become columns; the first spelling present
  wins (`job_title`, `jobTitle`, `title`) and any other spelling given too is kept as an
  attribute, so nothing sent is lost. All other scalars become custom attributes under their
  own names. Nested objects are flattened with `_` (`address.city` -> `address_city`; a dot
  would read as the `account.` prefix rules use), lists are skipped (rules test scalars).
- Attributes named like a canonical column (`lead_id`; an event's `type`, `ts`, `event_id`; a
  flattened `job.title`) are dropped: the column would hide them from rules anyway.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final
from urllib.parse import urlsplit

from pydantic import BaseModel, ValidationError

from leadscore import schema
from leadscore.service.inputs import AccountIn, EventIn, LeadIn, fields_set
from leadscore.timestamps import TimestampError, parse_timestamp

Message = Mapping[str, Any]
Row = dict[str, Any]

TYPES: Final = ("identify", "track", "page", "screen", "group", "alias")
PAGE_VIEW: Final = "page_view"
SCREEN_VIEW: Final = "screen_view"

# Canonical column <- Segment spellings, in order of preference.
LEAD_TRAITS: Final[dict[str, tuple[str, ...]]] = {
    "email": ("email",),
    "name": ("name",),
    "job_title": ("job_title", "jobTitle", "title"),
    "account_id": ("account_id",),
    "company": ("company",),
    "industry": ("industry",),
    "employees": ("employees", "employee_count", "employeeCount"),
    "annual_revenue": ("annual_revenue", "annualRevenue"),
    "country": ("country",),
    "source": ("source",),
    "created_at": ("created_at", "createdAt"),
    "stage": ("stage",),
}
ACCOUNT_TRAITS: Final[dict[str, tuple[str, ...]]] = {
    "name": ("name",),
    "domain": ("domain",),
    "industry": ("industry",),
    "employees": ("employees", "employee_count", "employeeCount"),
    "annual_revenue": ("annual_revenue", "annualRevenue"),
    "country": ("country",),
    "priority": ("priority", "tier"),
}
EVENT_PROPERTIES: Final[dict[str, tuple[str, ...]]] = {
    "url": ("url",),
    "asset": ("asset",),
    "campaign": ("campaign",),
    "channel": ("channel",),
    "content_stage": ("content_stage", "contentStage"),
    "topic": ("topic",),
    "value": ("value", "revenue"),
}
# Engine records put canonical columns before attributes, so an attribute named like a
# column (e.g. a flattened `job.title` -> `job_title`) could never be read: such are dropped.
LEAD_RESERVED: Final = frozenset(c.name for c in schema.LEADS)
ACCOUNT_RESERVED: Final = frozenset(c.name for c in schema.ACCOUNTS)
EVENT_RESERVED: Final = frozenset(c.name for c in schema.EVENTS)
FIRST_NAMES: Final = ("firstName", "first_name")
LAST_NAMES: Final = ("lastName", "last_name")
COMPANY_KEYS: Final[dict[str, tuple[str, ...]]] = {
    "company": ("name",),
    "industry": ("industry",),
    "employees": ("employee_count", "employees", "employeeCount"),
    "account_id": ("id",),
}


class MappingError(ValueError):
    """A message that cannot be taken; each problem names a field as Segment spells it."""

    def __init__(self, problems: Sequence[tuple[str, str]]) -> None:
        self.problems = tuple(problems)
        super().__init__("; ".join(f"field '{name}': {text}" for name, text in self.problems))

    @property
    def field(self) -> str:
        """The first field named."""
        return self.problems[0][0]


def _error(field: str, text: str) -> MappingError:
    return MappingError([(field, text)])


@dataclass(frozen=True)
class Mapped:
    """What one message becomes: rows to upsert, ids to merge and events to store."""

    leads: tuple[Row, ...] = ()
    accounts: tuple[Row, ...] = ()
    merges: tuple[tuple[str, str], ...] = ()  # (anonymous or previous id, user id)
    events: tuple[Row, ...] = ()


@dataclass
class _Draft:
    # A row being built, with where each column and attribute came from (for error messages).
    row: Row
    origin: dict[str, str]
    attributes: dict[str, Any]
    attribute_origin: dict[str, str]

    @classmethod
    def new(cls) -> _Draft:
        return cls({}, {}, {}, {})

    def put(self, column: str, value: Any, origin: str) -> None:
        self.row[column] = value
        self.origin[column] = origin

    def validate(self, model: type[BaseModel]) -> Row:
        if self.attributes:
            self.row["attributes"] = self.attributes
        try:
            return fields_set(model.model_validate(self.row))
        except ValidationError as exc:
            raise MappingError([self._problem(e["loc"], e["msg"]) for e in exc.errors()]) from None

    def _problem(self, loc: tuple[int | str, ...], text: str) -> tuple[str, str]:
        if len(loc) >= 2 and loc[0] == "attributes":
            name = str(loc[1])
            return self.attribute_origin.get(name, name), text
        if loc:
            name = str(loc[0])
            return self.origin.get(name, name), text
        return "body", text


# -- ids and times ----------------------------------------------------------------------------


def message_id(message: object) -> str | None:
    """The message's `messageId` if it is a string (to name it in a rejection)."""
    if isinstance(message, Mapping):
        value = message.get("messageId")
        if isinstance(value, str):
            return value
    return None


def _id(message: Message, field: str) -> str | None:
    # Segment ids are strings; numbers are allowed by some SDKs and mean their decimal form.
    value = message.get(field)
    if value is None or value == "":
        return None
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise _error(field, "must be a string")
    return str(value)


def lead_id(message: Message) -> tuple[str, str]:
    """The lead a message is about and the field it came from: `userId`, else `anonymousId`."""
    for field in ("userId", "anonymousId"):
        value = _id(message, field)
        if value is not None:
            return value, field
    raise _error("userId", "required: every message needs a userId or an anonymousId")


def parse_time(value: object, field: str) -> datetime:
    """An ISO-8601 time as naive UTC (a time without offset is taken as UTC)."""
    if not isinstance(value, str):
        raise _error(field, "must be an ISO-8601 time string")
    try:
        # the one rule of files, mappings and the REST API (leadscore.timestamps)
        return parse_timestamp(value)
    except TimestampError as exc:
        raise _error(field, str(exc)) from None


def event_time(
    message: Message, received: datetime, sent_at: object = None
) -> tuple[datetime, str]:
    """When the event happened, and which field said so.

    `timestamp` as given; else `originalTimestamp` corrected for the device's clock skew by
    `sentAt` (the message's, else the batch's) the way Segment does it
    (received - (sentAt - originalTimestamp)), or as given without `sentAt`; else `received`.
    """
    if message.get("timestamp") is not None:
        return parse_time(message["timestamp"], "timestamp"), "timestamp"
    if message.get("originalTimestamp") is not None:
        original = parse_time(message["originalTimestamp"], "originalTimestamp")
        sent = message.get("sentAt", sent_at)
        if sent is None:
            return original, "originalTimestamp"
        # Device clocks are often wrong; the delay between the two device times is not.
        delay = parse_time(sent, "sentAt") - original
        try:
            return received - delay, "originalTimestamp"
        except OverflowError:
            raise _error("originalTimestamp", "too far from sentAt") from None
    return received, "timestamp"


# -- names and values -----------------------------------------------------------------------------

_LOWER_UPPER: Final = re.compile(r"(?<=[a-z])(?=[A-Z])")
_ACRONYM_WORD: Final = re.compile(r"(?<=[A-Z])(?=[A-Z][a-z])")
_SEPARATORS: Final = re.compile(r"[\W_]+")


def event_type(name: str) -> str:
    """An event name in snake_case: "Whitepaper Downloaded" -> "whitepaper_downloaded"."""
    # Segment names events in Title Case ("Order Completed") or camelCase; model rules name
    # event types in snake_case, so both spellings must meet in one form.
    text = _ACRONYM_WORD.sub("_", _LOWER_UPPER.sub("_", name))
    return _SEPARATORS.sub("_", text).strip("_").lower()


def _object(message: Message, field: str) -> Mapping[str, Any]:
    value = message.get(field)
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise _error(field, "must be an object")
    return value


def _nested(message: Message, *path: str) -> Any:
    value: Any = message
    for step in path:
        if not isinstance(value, Mapping):
            return None
        value = value.get(step)
    return value


def flatten(
    values: Mapping[str, Any], prefix: str = "", path: str = ""
) -> dict[str, tuple[Any, str]]:
    """Scalars under `_`-joined names (`address_city`), each with its path; lists skipped."""
    out: dict[str, tuple[Any, str]] = {}
    for key, value in values.items():
        name = f"{prefix}_{key}" if prefix else str(key)
        where = f"{path}.{key}" if path else str(key)
        if isinstance(value, Mapping):
            out.update(flatten(value, name, where))
        elif value is None or isinstance(value, str | int | float | bool):
            out[name] = (value, where)
        # Lists are skipped: rules compare one value, and a list has no single one.
    return out


def _take(
    draft: _Draft,
    values: Mapping[str, Any],
    spellings: Mapping[str, tuple[str, ...]],
    path: str,
    used: set[str],
) -> None:
    # The first spelling present fills the column; later ones stay for the attributes.
    for column, names in spellings.items():
        if column in draft.row:
            continue
        for name in names:
            if name in values:
                draft.put(column, values[name], f"{path}.{name}")
                used.add(name)
                break


def _rest(
    draft: _Draft,
    values: Mapping[str, Any],
    path: str,
    used: set[str],
    reserved: frozenset[str],
    *,
    keep_null: bool,
) -> None:
    rest = {k: v for k, v in values.items() if k not in used}
    for name, (value, where) in flatten(rest, path="").items():
        if name in reserved or name in draft.row or (value is None and not keep_null):
            continue
        draft.attributes[name] = value
        draft.attribute_origin[name] = f"{path}.{where}"


def _website_domain(website: object) -> object:
    # "https://www.acme.com/about" -> "acme.com"; anything that is no URL is kept as given.
    if not isinstance(website, str) or not website.strip():
        return website
    text = website.strip()
    host = urlsplit(text if "//" in text else f"//{text}").hostname
    if not host:
        return website
    return host.removeprefix("www.")


# -- the message types ----------------------------------------------------------------------------


def lead_row(lead: str, lead_field: str, traits: Mapping[str, Any]) -> Row:
    """A `LeadIn` row from identify traits; raises MappingError naming the trait."""
    draft = _Draft.new()
    draft.put("lead_id", lead, lead_field)
    used: set[str] = set()
    company = traits.get("company")
    if isinstance(company, Mapping):
        used.add("company")  # its parts are taken below, not the object itself
    plain = {k: v for k, v in traits.items() if k not in used}
    _take(draft, plain, LEAD_TRAITS, "traits", used)
    if "name" not in draft.row:
        first = next((n for n in FIRST_NAMES if isinstance(traits.get(n), str)), None)
        last = next((n for n in LAST_NAMES if isinstance(traits.get(n), str)), None)
        parts = [traits[n].strip() for n in (first, last) if n is not None]
        if any(parts):
            origin = f"traits.{first or last}"
            draft.put("name", " ".join(p for p in parts if p), origin)
            used.update(n for n in (first, last) if n is not None)
    if isinstance(company, Mapping):
        # Segment's company object: {name, id, industry, employee_count, plan, ...}.
        company_used: set[str] = set()
        _take(draft, company, COMPANY_KEYS, "traits.company", company_used)
        rest = {k: v for k, v in company.items() if k not in company_used}
        _rest(draft, {"company": rest}, "traits", set(), LEAD_RESERVED, keep_null=True)
    address = traits.get("address")
    if isinstance(address, Mapping) and "country" not in draft.row and "country" in address:
        draft.put("country", address["country"], "traits.address.country")
        used.add("address")
        rest = {k: v for k, v in address.items() if k != "country"}
        _rest(draft, {"address": rest}, "traits", set(), LEAD_RESERVED, keep_null=True)
    # A null trait clears the attribute, as it clears a column.
    _rest(draft, traits, "traits", used, LEAD_RESERVED, keep_null=True)
    return draft.validate(LeadIn)


def account_row(account: str, traits: Mapping[str, Any]) -> Row:
    """An `AccountIn` row from group traits; raises MappingError naming the trait."""
    draft = _Draft.new()
    draft.put("account_id", account, "groupId")
    used: set[str] = set()
    _take(draft, traits, ACCOUNT_TRAITS, "traits", used)
    if "domain" not in draft.row and "website" in traits:
        draft.put("domain", _website_domain(traits["website"]), "traits.website")
        used.add("website")
    address = traits.get("address")
    if isinstance(address, Mapping) and "country" not in draft.row and "country" in address:
        draft.put("country", address["country"], "traits.address.country")
        used.add("address")
        rest = {k: v for k, v in address.items() if k != "country"}
        _rest(draft, {"address": rest}, "traits", set(), ACCOUNT_RESERVED, keep_null=True)
    _rest(draft, traits, "traits", used, ACCOUNT_RESERVED, keep_null=True)
    return draft.validate(AccountIn)


def event_row(
    message: Message,
    type_: str,
    type_field: str,
    received: datetime,
    sent_at: object = None,
    extra: Mapping[str, tuple[Any, str]] | None = None,
) -> Row:
    """An `EventIn` row from a track, page or screen message; raises MappingError."""
    draft = _Draft.new()
    event_id = _id(message, "messageId")
    if event_id is None:
        raise _error("messageId", "required: it is the event's id and makes resending harmless")
    draft.put("event_id", event_id, "messageId")
    lead, lead_field = lead_id(message)
    draft.put("lead_id", lead, lead_field)
    draft.put("type", type_, type_field)
    ts, ts_field = event_time(message, received, sent_at)
    draft.put("ts", ts, ts_field)
    properties = _object(message, "properties")
    used: set[str] = set()
    _take(draft, properties, EVENT_PROPERTIES, "properties", used)
    # Where the properties are silent, the context knows the page and the UTM campaign.
    page_url = _nested(message, "context", "page", "url")
    if "url" not in draft.row and page_url is not None:
        draft.put("url", page_url, "context.page.url")
    campaign = _nested(message, "context", "campaign", "name")
    if "campaign" not in draft.row and campaign is not None:
        draft.put("campaign", campaign, "context.campaign.name")
    _rest(draft, properties, "properties", used, EVENT_RESERVED, keep_null=False)
    for name, (value, origin) in (extra or {}).items():
        if value is not None:
            draft.attributes[name] = value
            draft.attribute_origin[name] = origin
    return draft.validate(EventIn)


def _identify(message: Message) -> Mapped:
    lead, field = lead_id(message)
    row = lead_row(lead, field, _object(message, "traits"))
    anonymous = _id(message, "anonymousId")
    # Both ids: the visitor has just become a known user, so their history moves with them.
    merges = ((anonymous, lead),) if anonymous is not None and anonymous != lead else ()
    return Mapped(leads=(row,), merges=merges)


def _track(message: Message, received: datetime, sent_at: object) -> Mapped:
    name = message.get("event")
    if name is None or name == "":
        raise _error("event", "required: the name of the event, e.g. 'Demo Requested'")
    if not isinstance(name, str):
        raise _error("event", "must be a string")
    type_ = event_type(name)
    if not type_:
        raise _error("event", f"{name[:50]!r} has no letter or digit to name an event type")
    return Mapped(events=(event_row(message, type_, "event", received, sent_at),))


def _view(message: Message, received: datetime, sent_at: object, type_: str) -> Mapped:
    # A page's (or screen's) own name and category matter more than same-named properties.
    extra = {k: (message.get(k), k) for k in ("name", "category") if message.get(k) is not None}
    for key, (value, _) in extra.items():
        if not isinstance(value, str):
            raise _error(key, "must be a string")
    return Mapped(events=(event_row(message, type_, "type", received, sent_at, extra),))


def _group(message: Message) -> Mapped:
    lead, field = lead_id(message)
    account = _id(message, "groupId")
    if account is None:
        raise _error("groupId", "required: the id of the account (company)")
    account_data = account_row(account, _object(message, "traits"))
    membership = _Draft.new()
    membership.put("lead_id", lead, field)
    membership.put("account_id", account, "groupId")
    return Mapped(leads=(membership.validate(LeadIn),), accounts=(account_data,))


def _alias(message: Message) -> Mapped:
    previous = _id(message, "previousId")
    if previous is None:
        raise _error("previousId", "required: the id to merge into userId")
    user = _id(message, "userId")
    if user is None:
        raise _error("userId", "required: the id that previousId becomes")
    for value, field in ((previous, "previousId"), (user, "userId")):
        # The same limits as every id, checked here because alias builds no row.
        if len(value) > 200 or "\x00" in value:
            raise _error(field, "must be 1 to 200 characters without NUL")
    return Mapped(merges=((previous, user),) if previous != user else ())


def map_message(
    message: object,
    *,
    received: datetime,
    kind: str | None = None,
    sent_at: object = None,
) -> Mapped:
    """What a message becomes; `kind` overrides its `type` (single-message endpoints)."""
    if not isinstance(message, Mapping):
        raise _error("body", f"a message must be a JSON object, not {type(message).__name__}")
    if kind is None:
        kind = message.get("type")
        if not isinstance(kind, str) or kind not in TYPES:
            shown = repr(kind)[:50] if kind is not None else "missing"
            raise _error("type", f"{shown}; expected one of {', '.join(TYPES)}")
    if kind == "identify":
        return _identify(message)
    if kind == "track":
        return _track(message, received, sent_at)
    if kind == "page":
        return _view(message, received, sent_at, PAGE_VIEW)
    if kind == "screen":
        return _view(message, received, sent_at, SCREEN_VIEW)
    if kind == "group":
        return _group(message)
    if kind == "alias":
        return _alias(message)
    raise _error("type", f"{kind!r}; expected one of {', '.join(TYPES)}")


def with_batch_context(message: object, context: object) -> object:
    """A batch item with the batch's `context` under its own (the item's keys win)."""
    if not isinstance(message, Mapping) or not isinstance(context, Mapping) or not context:
        return message
    own = message.get("context")
    if own is not None and not isinstance(own, Mapping):
        return message  # reported by the mapping; nothing sensible to merge into
    return {**message, "context": {**context, **(own or {})}}


def resolve(merges: Sequence[tuple[str, str]]) -> dict[str, str]:
    """Where each merged id ends up after all merges (chains followed, cycles cut)."""
    step: dict[str, str] = {}
    for source, target in merges:
        if source != target:
            step[source] = target
    final: dict[str, str] = {}
    for source in step:
        seen = {source}
        current = source
        while current in step and step[current] not in seen:
            current = step[current]
            seen.add(current)
        if current != source:
            final[source] = current
    return final
