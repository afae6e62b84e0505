"""Segment messages as leadscore rows: traits, properties, ids and times, and the refusals."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest

from leadscore.service import segment
from leadscore.service.segment import Mapped, MappingError, map_message

NOW = datetime(2026, 3, 2, 9, 0, 0)


def mapped(message: dict[str, Any], **kw: Any) -> Mapped:
    return map_message(message, received=NOW, **kw)


def refused(message: object, **kw: Any) -> MappingError:
    with pytest.raises(MappingError) as info:
        map_message(message, received=NOW, **kw)
    return info.value


def track(**kw: Any) -> dict[str, Any]:
    return {"type": "track", "userId": "u1", "event": "Demo Requested", "messageId": "m1", **kw}


# -- event names ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("Whitepaper Downloaded", "whitepaper_downloaded"),
        ("Order Completed", "order_completed"),
        ("formSubmit", "form_submit"),
        ("demo_request", "demo_request"),
        ("Demo-Request!", "demo_request"),
        ("  webinar   attended ", "webinar_attended"),
        ("HTTPRequest Sent", "http_request_sent"),
        ("B2B Lead", "b2b_lead"),
        ("DEMO REQUEST", "demo_request"),
        ("Anmeldung für Webinar", "anmeldung_für_webinar"),
    ],
)
def test_event_names_become_snake_case_types(name: str, expected: str) -> None:
    assert segment.event_type(name) == expected


# -- identify -------------------------------------------------------------------------------------


def test_identify_maps_traits_to_lead_columns_and_the_rest_to_attributes() -> None:
    out = mapped(
        {
            "type": "identify",
            "userId": "u1",
            "traits": {
                "email": "ada@example.com",
                "firstName": "Ada",
                "lastName": "Lovelace",
                "title": "CTO",
                "company": {"name": "Acme", "id": "acme", "employee_count": 500, "plan": "pro"},
                "industry": "Software",
                "annualRevenue": 1.5e6,
                "address": {"country": "DE", "city": "Berlin"},
                "source": "organic",
                "createdAt": "2026-01-01T12:00:00+01:00",
                "stage": "MQL",
                "plan": "trial",
                "logins": 7,
                "beta": True,
                "tags": ["a", "b"],
            },
        }
    )
    assert out.leads == (
        {
            "lead_id": "u1",
            "email": "ada@example.com",
            "name": "Ada Lovelace",
            "job_title": "CTO",
            "account_id": "acme",
            "company": "Acme",
            "industry": "Software",
            "employees": 500,
            "annual_revenue": 1.5e6,
            "country": "DE",
            "source": "organic",
            "created_at": datetime(2026, 1, 1, 11, 0, 0),
            "stage": "MQL",
            # lists are skipped; nested objects are flattened with "_"
            "attributes": {
                "company_plan": "pro",
                "address_city": "Berlin",
                "plan": "trial",
                "logins": 7,
                "beta": True,
            },
        },
    )
    assert out.merges == () and out.events == () and out.accounts == ()


def test_identify_prefers_canonical_spellings_and_keeps_the_others() -> None:
    out = mapped(
        {
            "type": "identify",
            "userId": "u1",
            "traits": {
                "job_title": "VP Sales",
                "title": "Mr",
                "name": "Grace Hopper",
                "firstName": "Grace",
                "company": "Navy",
                "employees": "250",
                "employee_count": 300,
            },
        }
    )
    (lead,) = out.leads
    assert lead["job_title"] == "VP Sales" and lead["name"] == "Grace Hopper"
    assert lead["company"] == "Navy" and lead["employees"] == 250
    assert lead["attributes"] == {"title": "Mr", "firstName": "Grace", "employee_count": 300}


def test_a_null_trait_clears_the_column_and_the_attribute() -> None:
    (lead,) = mapped(
        {"type": "identify", "userId": "u1", "traits": {"email": None, "x": None}}
    ).leads
    assert lead == {"lead_id": "u1", "email": None, "attributes": {"x": None}}


def test_attributes_named_like_a_column_are_dropped() -> None:
    traits = {"lead_id": "other", "job": {"title": "hidden"}, "jobs": 2}
    (lead,) = mapped({"type": "identify", "userId": "u1", "traits": traits}).leads
    assert lead == {"lead_id": "u1", "attributes": {"jobs": 2}}


def test_identify_with_both_ids_merges_the_anonymous_visitor_into_the_user() -> None:
    out = mapped({"type": "identify", "userId": "u1", "anonymousId": "a1", "traits": {}})
    assert out.leads == ({"lead_id": "u1"},) and out.merges == (("a1", "u1"),)
    only_anonymous = mapped({"type": "identify", "anonymousId": "a1", "traits": {"plan": "x"}})
    assert only_anonymous.leads == ({"lead_id": "a1", "attributes": {"plan": "x"}},)
    assert only_anonymous.merges == ()


def test_numeric_ids_mean_their_decimal_form() -> None:
    assert mapped({"type": "identify", "userId": 42}).leads == ({"lead_id": "42"},)


def identify(**traits: Any) -> dict[str, Any]:
    return {"type": "identify", "userId": "u", "traits": traits}


@pytest.mark.parametrize(
    ("message", "field", "text"),
    [
        ({"type": "identify", "traits": {}}, "userId", "required"),
        ({"type": "identify", "userId": "", "anonymousId": ""}, "userId", "required"),
        ({"type": "identify", "userId": True}, "userId", "must be a string"),
        ({"type": "identify", "userId": "u", "traits": []}, "traits", "must be an object"),
        (identify(email=5), "traits.email", "string"),
        (identify(employees="many"), "traits.employees", "integer"),
        (identify(employees=2**70), "traits.employees", "less than"),
        (identify(title="a\x00b"), "traits.title", "NUL"),
        (identify(createdAt="soon"), "traits.createdAt", "cannot parse 'soon' as a timestamp"),
        (identify(company={"id": ""}), "traits.company.id", "at least 1"),
        ({"type": "identify", "userId": "u" * 201}, "userId", "at most 200"),
        (identify(**{"x" * 201: 1}), "traits." + "x" * 201, "at most 200"),
    ],
)
def test_bad_identify_messages_name_the_segment_field(
    message: dict[str, Any], field: str, text: str
) -> None:
    error = refused(message)
    assert error.field == field
    assert f"field '{field}'" in str(error) and text in str(error)


# -- track, page, screen --------------------------------------------------------------------------


def test_track_maps_properties_and_context_to_event_columns() -> None:
    out = mapped(
        track(
            event="Whitepaper Downloaded",
            timestamp="2026-03-01T10:00:00+02:00",
            properties={
                "asset": "wp-pricing",
                "channel": "email",
                "contentStage": "MOFU",
                "topic": "pricing",
                "revenue": "19.5",
                "pages": 12,
                "type": "ebook",  # would be hidden by the event type
                "meta": {"lang": "de", "tags": ["x"]},
                "empty": None,
            },
            context={"page": {"url": "https://x.test/pricing"}, "campaign": {"name": "spring"}},
        )
    )
    assert out.events == (
        {
            "event_id": "m1",
            "lead_id": "u1",
            "type": "whitepaper_downloaded",
            "ts": datetime(2026, 3, 1, 8, 0, 0),
            "url": "https://x.test/pricing",
            "asset": "wp-pricing",
            "campaign": "spring",
            "channel": "email",
            "content_stage": "MOFU",
            "topic": "pricing",
            "value": 19.5,
            "attributes": {"pages": 12, "meta_lang": "de"},
        },
    )
    assert out.leads == () and out.merges == ()


def test_properties_win_over_context_and_value_over_revenue() -> None:
    (event,) = mapped(
        track(
            properties={"url": "/own", "campaign": "c1", "value": 3, "revenue": 9},
            context={"page": {"url": "/ctx"}, "campaign": {"name": "c2"}},
        )
    ).events
    assert (event["url"], event["campaign"], event["value"]) == ("/own", "c1", 3.0)
    assert event["attributes"] == {"revenue": 9}


def test_the_lead_is_the_user_else_the_anonymous_visitor() -> None:
    (event,) = mapped(track(userId=None, anonymousId="a1")).events
    assert event["lead_id"] == "a1"
    (event,) = mapped(track(anonymousId="a1")).events
    assert event["lead_id"] == "u1"


def test_event_times_follow_segment() -> None:
    def ts(**kw: Any) -> datetime:
        (event,) = mapped(track(**kw)).events
        return event["ts"]  # type: ignore[no-any-return]

    assert ts(timestamp="2026-03-01T10:00:00Z") == datetime(2026, 3, 1, 10, 0, 0)
    assert ts(timestamp="2026-03-01T10:00:00") == datetime(2026, 3, 1, 10, 0, 0)  # naive is UTC
    assert ts() == NOW  # nothing given: when it was received
    # Without sentAt, originalTimestamp is taken as is ...
    assert ts(originalTimestamp="2026-03-01T10:00:00Z") == datetime(2026, 3, 1, 10, 0, 0)
    # ... with it, the device's clock skew is corrected: received - (sentAt - original).
    skewed = {"originalTimestamp": "2030-01-01T00:00:00Z", "sentAt": "2030-01-01T00:00:05Z"}
    assert ts(**skewed) == NOW - timedelta(seconds=5)
    (event,) = mapped(
        track(originalTimestamp="2030-01-01T00:00:00Z"), sent_at="2030-01-01T00:01:00Z"
    ).events
    assert event["ts"] == NOW - timedelta(minutes=1)  # the batch's sentAt
    assert ts(timestamp="2026-03-01T10:00:00Z", originalTimestamp="2020-01-01T00:00:00Z") == (
        datetime(2026, 3, 1, 10, 0, 0)
    )


def test_page_and_screen_are_views_with_name_and_category() -> None:
    message = {
        "type": "page",
        "anonymousId": "a1",
        "messageId": "p1",
        "timestamp": "2026-03-01T10:00:00Z",
        "name": "Pricing",
        "category": "Docs",
        "properties": {"path": "/pricing", "name": "ignored", "title": "Pricing - X"},
        "context": {"page": {"url": "https://x.test/pricing"}},
    }
    (page,) = mapped(message).events
    assert page["type"] == "page_view" and page["url"] == "https://x.test/pricing"
    assert page["attributes"] == {
        "path": "/pricing",
        "name": "Pricing",
        "title": "Pricing - X",
        "category": "Docs",
    }
    (screen,) = mapped({**message, "type": "screen"}).events
    assert screen["type"] == "screen_view"
    # a single-message endpoint says what the message is, whatever its `type`
    (forced,) = mapped({**message, "type": "track"}, kind="page").events
    assert forced["type"] == "page_view"


@pytest.mark.parametrize(
    ("message", "field", "text"),
    [
        (track(messageId=None), "messageId", "required"),
        (track(messageId="m" * 201), "messageId", "at most 200"),
        (track(event=None), "event", "required"),
        (track(event=7), "event", "must be a string"),
        (track(event="!!!"), "event", "no letter or digit"),
        (track(event="x" * 201), "event", "at most 200"),
        (track(userId=None), "userId", "required"),
        (track(timestamp="yesterday"), "timestamp", "ISO 8601"),
        (track(timestamp=1700000000), "timestamp", "ISO-8601"),
        (track(originalTimestamp="2026-03-01T00:00:00Z", sentAt="later"), "sentAt", "ISO 8601"),
        (track(properties="x"), "properties", "must be an object"),
        (track(properties={"value": "lots"}), "properties.value", "number"),
        (track(properties={"revenue": "NaN"}), "properties.revenue", "finite"),
        (track(properties={"url": 5}), "properties.url", "string"),
        (track(context={"page": {"url": ["/x"]}}), "context.page.url", "string"),
        ({"type": "page", "userId": "u", "messageId": "p", "name": 3}, "name", "must be a string"),
    ],
)
def test_bad_events_name_the_segment_field(message: dict[str, Any], field: str, text: str) -> None:
    error = refused(message)
    assert error.field == field
    assert text in str(error)


# -- group and alias ------------------------------------------------------------------------------


def test_group_maps_traits_to_the_account_and_joins_the_lead() -> None:
    out = mapped(
        {
            "type": "group",
            "userId": "u1",
            "groupId": "acme",
            "traits": {
                "name": "Acme",
                "website": "https://www.acme.example/about",
                "industry": "Software",
                "employees": 800,
                "annualRevenue": 2e7,
                "address": {"country": "DE", "city": "Hamburg"},
                "tier": "tier1",
                "plan": "enterprise",
            },
        }
    )
    assert out.accounts == (
        {
            "account_id": "acme",
            "name": "Acme",
            "domain": "acme.example",
            "industry": "Software",
            "employees": 800,
            "annual_revenue": 2e7,
            "country": "DE",
            "priority": "tier1",
            "attributes": {"address_city": "Hamburg", "plan": "enterprise"},
        },
    )
    assert out.leads == ({"lead_id": "u1", "account_id": "acme"},)


def test_group_keeps_a_domain_and_prefers_priority_over_tier() -> None:
    traits = {"domain": "acme.example", "website": "https://acme.example", "priority": "p1"}
    (account,) = mapped(
        {"type": "group", "userId": "u1", "groupId": "g", "traits": {**traits, "tier": "t"}}
    ).accounts
    assert account["domain"] == "acme.example" and account["priority"] == "p1"
    assert account["attributes"] == {"website": "https://acme.example", "tier": "t"}


def test_alias_merges_the_previous_id_into_the_user() -> None:
    out = mapped({"type": "alias", "previousId": "a1", "userId": "u1"})
    assert out == Mapped(merges=(("a1", "u1"),))
    assert mapped({"type": "alias", "previousId": "u1", "userId": "u1"}) == Mapped()


group = {"type": "group", "userId": "u1", "groupId": "g"}


@pytest.mark.parametrize(
    ("message", "field"),
    [
        ({"type": "group", "userId": "u1"}, "groupId"),
        ({"type": "group", "groupId": "g"}, "userId"),
        ({**group, "traits": {"employees": 1.5}}, "traits.employees"),
        ({"type": "alias", "userId": "u1"}, "previousId"),
        ({"type": "alias", "previousId": "a1"}, "userId"),
        ({"type": "alias", "previousId": "a" * 201, "userId": "u1"}, "previousId"),
    ],
)
def test_bad_group_and_alias_messages_name_the_field(message: dict[str, Any], field: str) -> None:
    assert refused(message).field == field


# -- any message ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("message", "field", "text"),
    [
        ({"userId": "u1"}, "type", "missing"),
        ({"type": "screenview", "userId": "u1"}, "type", "'screenview'; expected one of"),
        ({"type": 5}, "type", "expected one of"),
        (["identify"], "body", "JSON object"),
    ],
)
def test_messages_need_a_known_type(message: object, field: str, text: str) -> None:
    error = refused(message)
    assert error.field == field and text in str(error)


def test_message_ids_are_named_only_when_they_are_strings() -> None:
    assert segment.message_id({"messageId": "m1"}) == "m1"
    assert segment.message_id({"messageId": 5}) is None
    assert segment.message_id("x") is None


def test_batch_context_fills_in_what_a_message_lacks() -> None:
    item = {"type": "track", "context": {"page": {"url": "/own"}}}
    merged = segment.with_batch_context(item, {"page": {"url": "/b"}, "campaign": {"name": "c"}})
    assert merged == {
        "type": "track",
        "context": {"page": {"url": "/own"}, "campaign": {"name": "c"}},
    }
    assert segment.with_batch_context(item, None) is item


def test_merges_resolve_through_chains_and_stop_at_cycles() -> None:
    assert segment.resolve([("a", "b"), ("b", "c"), ("x", "x")]) == {"a": "c", "b": "c"}
    assert segment.resolve([("a", "b"), ("b", "a")]) == {"a": "b", "b": "a"}
    assert segment.resolve([("a", "b"), ("a", "d")]) == {"a": "d"}


def test_flatten_joins_nested_names_and_skips_lists() -> None:
    assert segment.flatten({"a": {"b": {"c": 1}, "l": [1]}, "d": None}) == {
        "a_b_c": (1, "a.b.c"),
        "d": (None, "d"),
    }
