"""A seeded generator of realistic B2B and B2C lead data in the canonical tables.

All randomness comes from NumPy generators seeded from `seed` (one stream for people, one per
fixed-size chunk of leads for their events), and strings are built with Arrow compute kernels,
so the output is identical for a given seed and a million leads take seconds, not minutes.

The story the data tells: B2B accounts with one to six stakeholders, personas from CEO to intern,
B2C consumers without accounts; sessions of several events in bursts, leads that go quiet for
months, unsubscribes and bounces; outcomes decided some time after a lead's last activity, with
a win probability that rises with fit, bottom-of-funnel activity and engaged stakeholders.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final, Literal

import ibis
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from leadscore.errors import DataError
from leadscore.io.readers import arrow_table
from leadscore.schema import TABLES, Dataset

__all__ = [
    "DEFAULT_AS_OF",
    "GenerationSummary",
    "generate",
    "generate_dataset",
    "generate_tables",
]

#: The default reference time: data covers the 365 days before it.
DEFAULT_AS_OF: Final = datetime(2026, 1, 1)

Kind = Literal["b2b", "b2c", "mixed"]
OutputFormat = Literal["parquet", "csv"]

# Events are generated per chunk of this many leads, each chunk from its own seeded stream; it is
# a constant (not tuned to the machine) because changing it changes the data.
_CHUNK: Final = 50_000
_DAY_US: Final = 86_400_000_000
_HOUR_US: Final = 3_600_000_000
_WINDOW_DAYS: Final = 365
_TARGET_WIN_RATE: Final = 0.15

Array = Any  # numpy arrays; numpy's generic annotations add noise without catching much here

# ---------------------------------------------------------------------------------------------
# Vocabulary

TOPICS: Final = ("analytics", "crm", "automation")

# title, weight, decision power, engagement factor, is student or intern
B2B_PERSONAS: Final = (
    ("CEO", 4, 1.0, 0.6, False),
    ("CTO", 4, 0.9, 0.8, False),
    ("CFO", 3, 0.9, 0.5, False),
    ("CIO", 3, 0.9, 0.7, False),
    ("COO", 2, 0.8, 0.6, False),
    ("VP Sales", 5, 0.8, 0.9, False),
    ("VP Marketing", 5, 0.8, 1.0, False),
    ("Head of IT", 5, 0.7, 1.0, False),
    ("Marketing Manager", 12, 0.5, 1.2, False),
    ("Sales Manager", 8, 0.5, 1.0, False),
    ("Product Manager", 7, 0.45, 1.1, False),
    ("Operations Manager", 6, 0.45, 0.9, False),
    ("Data Analyst", 8, 0.3, 1.2, False),
    ("Engineer", 8, 0.3, 1.0, False),
    ("Software Developer", 7, 0.25, 1.1, False),
    ("Consultant", 5, 0.3, 1.0, False),
    ("Intern", 3, 0.0, 1.3, True),
    ("Student", 5, 0.0, 1.4, True),
)
B2C_TITLES: Final = (
    ("Student", 18, True),
    ("Teacher", 8, False),
    ("Nurse", 6, False),
    ("Self-employed", 10, False),
    ("Retired", 7, False),
    ("Office Worker", 16, False),
    ("Freelancer", 9, False),
    ("Engineer", 6, False),
)
INDUSTRIES: Final = (
    ("Software", 14, 0.8),
    ("Financial Services", 10, 0.6),
    ("Manufacturing", 12, 0.5),
    ("Healthcare", 9, 0.3),
    ("Retail", 10, 0.3),
    ("Logistics", 6, 0.2),
    ("Telecommunications", 5, 0.3),
    ("Energy", 4, 0.2),
    ("Consulting", 8, 0.1),
    ("Media", 6, 0.0),
    ("Education", 8, -0.3),
    ("Public Sector", 8, -0.4),
)
COUNTRIES: Final = (
    ("United States", 30, 0.4),
    ("Germany", 12, 0.4),
    ("United Kingdom", 10, 0.4),
    ("France", 7, 0.2),
    ("Netherlands", 4, 0.3),
    ("Canada", 5, 0.3),
    ("India", 8, -0.2),
    ("Australia", 4, 0.2),
    ("Spain", 4, 0.0),
    ("Italy", 4, 0.0),
    ("Brazil", 4, -0.2),
    ("Sweden", 3, 0.2),
    ("Poland", 3, 0.0),
    ("Japan", 2, -0.1),
)
B2B_SOURCES: Final = (
    ("organic", 25),
    ("paid", 18),
    ("social", 12),
    ("email", 8),
    ("referral", 10),
    ("direct", 10),
    ("event", 9),
    ("partner", 8),
)
B2C_SOURCES: Final = (
    ("organic", 30),
    ("paid", 25),
    ("social", 25),
    ("email", 5),
    ("direct", 10),
    ("affiliate", 5),
)
AGE_BANDS: Final = ("18-24", "25-34", "35-44", "45-54", "55-64", "65+")
AGE_WEIGHTS: Final = (18, 27, 22, 15, 11, 7)
POWER_LEVELS: Final = ("low", "medium", "high")
FIRST_NAMES: Final = (
    "Anna", "Ben", "Carla", "David", "Elena", "Farid", "Grace", "Hiro", "Ines", "Jonas",
    "Kara", "Luis", "Maya", "Nils", "Olivia", "Pedro", "Quinn", "Rosa", "Sam", "Tara",
    "Umar", "Vera", "Will", "Xenia", "Yusuf", "Zoe", "Aiko", "Bruno", "Chloe", "Dmitri",
    "Emma", "Felix", "Greta", "Hugo", "Ivy", "Jamal", "Lena", "Marco", "Nora", "Oscar",
)  # fmt: skip
LAST_NAMES: Final = (
    "Smith", "Müller", "Garcia", "Rossi", "Kowalski", "Nguyen", "Johnson", "Schmidt",
    "Martin", "Silva", "Brown", "Kim", "Larsen", "Dubois", "Patel", "Novak", "Fischer",
    "Lopez", "Wilson", "Tanaka", "Jansen", "Costa", "Weber", "Moreau", "Khan", "Berg",
    "Popescu", "Murphy", "Svensson", "Haddad",
)  # fmt: skip
COMPANY_WORDS: Final = (
    "Acme", "Nordic", "Blue", "Vertex", "Granite", "Silver", "Apex", "Quantum", "Pioneer",
    "Summit", "Harbor", "Cedar", "Atlas", "Nimbus", "Orion", "Falcon", "Maple", "Crescent",
    "Iron", "Lumen", "Polar", "Redwood", "Sterling", "Tidal",
)  # fmt: skip
COMPANY_KINDS: Final = (
    "Systems", "Logistics", "Health", "Capital", "Foods", "Labs", "Energy", "Retail",
    "Media", "Works", "Partners", "Analytics", "Motors", "Textiles", "Networks", "Group",
)  # fmt: skip
WEBMAIL: Final = ("gmail.com", "outlook.com", "yahoo.com", "web.de", "icloud.com")

EVENT_TYPES: Final = (
    "page_view",  # 0
    "email_open",  # 1
    "email_click",  # 2
    "download",  # 3
    "webinar_attended",  # 4
    "form_submit",  # 5
    "demo_request",  # 6
    "newsletter_subscribe",  # 7
    "unsubscribe",  # 8
    "email_bounce",  # 9
    "chat",  # 10
    "add_to_cart",  # 11
    "cart_abandoned",  # 12
    "ad_click",  # 13
    "social_like",  # 14
)
_E = {name: i for i, name in enumerate(EVENT_TYPES)}
CHANNELS: Final = ("email", "organic", "direct", "paid", "social", "referral")
_CHANNEL_WEIGHTS: Final = (30, 25, 15, 12, 12, 6)
STAGES: Final = ("TOFU", "MOFU", "BOFU")

# Pages per funnel stage; "{t}" is the topic. B2C shoppers see shop pages instead of docs.
B2B_PAGES: Final = (
    ("/", "/blog/{t}-trends", "/blog/what-is-{t}", "/blog/{t}-best-practices", "/about"),
    ("/product/{t}", "/customers", "/docs/{t}/getting-started", "/integrations", "/webinars"),
    ("/pricing", "/demo", "/contact", "/product/{t}/pricing"),
)
B2C_PAGES: Final = (
    ("/", "/blog/{t}-tips", "/blog/how-to-{t}", "/app", "/about"),
    ("/product/{t}", "/reviews", "/compare/{t}-plans", "/features"),
    ("/pricing", "/cart", "/checkout", "/product/{t}/buy"),
)
B2B_FORMS: Final = ("/contact", "/resources/download", "/webinars/register", "/newsletter")
B2C_FORMS: Final = ("/signup", "/newsletter", "/contact")
ASSETS: Final = (
    ("ebook-{t}-101", "checklist-{t}-basics", "guide-{t}-for-beginners"),
    ("whitepaper-{t}-roi", "comparison-{t}-tools", "report-state-of-{t}"),
    ("case-study-{t}", "pricing-sheet-{t}", "implementation-guide-{t}"),
)

# Non-first events in a session: probabilities over EVENT_TYPES by (segment, intent tier).
_B2B_MIX: Final = (
    # low intent
    {"page_view": 70, "download": 12, "webinar_attended": 2, "newsletter_subscribe": 4,
     "chat": 2, "form_submit": 3, "email_click": 6, "demo_request": 1},
    # medium
    {"page_view": 62, "download": 14, "webinar_attended": 5, "newsletter_subscribe": 2,
     "chat": 4, "form_submit": 5, "email_click": 5, "demo_request": 3},
    # high
    {"page_view": 55, "download": 14, "webinar_attended": 6, "newsletter_subscribe": 1,
     "chat": 6, "form_submit": 7, "email_click": 4, "demo_request": 7},
)  # fmt: skip
_B2C_MIX: Final = (
    {"page_view": 68, "add_to_cart": 6, "cart_abandoned": 4, "newsletter_subscribe": 5,
     "chat": 3, "email_click": 7, "download": 3, "form_submit": 4},
    {"page_view": 62, "add_to_cart": 11, "cart_abandoned": 6, "newsletter_subscribe": 4,
     "chat": 4, "email_click": 6, "download": 3, "form_submit": 4},
    {"page_view": 55, "add_to_cart": 16, "cart_abandoned": 7, "newsletter_subscribe": 3,
     "chat": 6, "email_click": 5, "download": 2, "form_submit": 6},
)  # fmt: skip
# Funnel-stage probabilities of content (pages, downloads) by intent tier.
_STAGE_BY_TIER: Final = ((0.70, 0.25, 0.05), (0.45, 0.38, 0.17), (0.25, 0.40, 0.35))


_ARROW_TYPES: Final = {
    "string": pa.string(),
    "int64": pa.int64(),
    "float64": pa.float64(),
    "timestamp": pa.timestamp("us"),
    "boolean": pa.bool_(),
}
EVENTS_SCHEMA: Final = pa.schema([(c.name, _ARROW_TYPES[c.type]) for c in TABLES["events"]])


@dataclass(frozen=True)
class GenerationSummary:
    """What `generate` produced: row counts per table, outcome counts and the files written."""

    counts: dict[str, int]
    won: int
    lost: int
    open: int
    files: dict[str, Path]

    def __str__(self) -> str:
        tables = ", ".join(f"{n:,} {table}" for table, n in self.counts.items())
        return f"{tables} ({self.won:,} won, {self.lost:,} lost, {self.open:,} open)"


# ---------------------------------------------------------------------------------------------
# Small vectorised helpers


def _p(weights: Sequence[float]) -> Array:
    w = np.asarray(weights, dtype=np.float64)
    return w / w.sum()


def _strings(vocab: Sequence[str], codes: Array, present: Array | None = None) -> pa.Array:
    """Arrow strings vocab[codes], null where `present` is False."""
    mask = None if present is None else ~np.asarray(present, dtype=bool)
    return pa.array(list(vocab), pa.string()).take(pa.array(codes, pa.int64(), mask=mask))


def _ids(prefix: str, numbers: Array, width: int) -> pa.Array:
    digits = pc.utf8_lpad(pc.cast(pa.array(numbers, pa.int64()), pa.string()), width, "0")
    return pc.binary_join_element_wise(prefix, digits, "")


def _join(*parts: pa.Array | str) -> pa.Array:
    return pc.binary_join_element_wise(*parts, "")


def _ts(micros: Array, present: Array | None = None) -> pa.Array:
    mask = None if present is None else ~np.asarray(present, dtype=bool)
    return pa.array(micros, pa.int64(), mask=mask).cast(pa.timestamp("us"))


def _floats(values: Array, present: Array | None = None) -> pa.Array:
    mask = None if present is None else ~np.asarray(present, dtype=bool)
    return pa.array(values, pa.float64(), mask=mask)


def _templated(
    templates: Sequence[str], codes: Array, topics: Array, present: Array | None = None
) -> pa.Array:
    """Strings templates[codes] with "{t}" replaced by TOPICS[topics], built once per pair."""
    keys = codes * len(TOPICS) + topics
    vocab = [tpl.replace("{t}", topic) for tpl in templates for topic in TOPICS]
    return _strings(vocab, keys, present)


def _occurrence(codes: Array) -> Array:
    """For each element, how many earlier elements have the same code (0 for the first)."""
    order = np.argsort(codes, kind="stable")
    sorted_codes = codes[order]
    starts = np.r_[True, sorted_codes[1:] != sorted_codes[:-1]]
    group_start = np.maximum.accumulate(np.where(starts, np.arange(len(codes)), 0))
    out = np.empty(len(codes), dtype=np.int64)
    out[order] = np.arange(len(codes)) - group_start
    return out


def _sigmoid(x: Array) -> Array:
    return 1.0 / (1.0 + np.exp(-x))


# ---------------------------------------------------------------------------------------------
# People: accounts and leads


@dataclass
class _People:
    n: int
    b2b: Array
    account: Array  # account index or -1
    n_accounts: int
    persona: Array  # index into B2B_PERSONAS or B2C_TITLES
    junior: Array  # student or intern
    power: Array
    engagement: Array
    intent: Array  # 0..1
    fit: Array
    topic: Array
    created: Array  # microseconds since epoch
    active_end: Array
    quiet: Array
    email_ok: Array  # False: the address bounces
    unsubscribes: Array
    account_fit: Array
    account_size: Array
    account_effect: Array
    leads: pa.Table
    accounts: pa.Table
    lead_ids: pa.Array


def _make_people(rng: np.random.Generator, n: int, kind: Kind, as_of_us: int) -> _People:
    share = {"b2b": 1.0, "b2c": 0.0, "mixed": 0.6}[kind]
    b2b = rng.random(n) < share
    n_b2b = int(b2b.sum())

    # Accounts: sizes 1..6 stakeholders, drawn until every B2B lead has one.
    sizes = rng.choice(np.arange(1, 7), size=max(n_b2b, 1), p=_p((34, 24, 17, 12, 8, 5)))
    cum = np.cumsum(sizes)
    n_acc = int(np.searchsorted(cum, n_b2b) + 1) if n_b2b else 0
    sizes = sizes[:n_acc].copy()
    if n_acc:
        sizes[-1] -= int(cum[n_acc - 1] - n_b2b)
    acc_of_b2b = np.repeat(np.arange(n_acc), sizes)
    # Stakeholders of one account are spread over the lead list, as they arrive over time.
    acc_of_b2b = acc_of_b2b[rng.permutation(n_b2b)]
    account = np.full(n, -1, dtype=np.int64)
    account[b2b] = acc_of_b2b

    industry = rng.choice(len(INDUSTRIES), size=n_acc, p=_p([w for _, w, _ in INDUSTRIES]))
    country_acc = rng.choice(len(COUNTRIES), size=n_acc, p=_p([w for _, w, _ in COUNTRIES]))
    employees = np.maximum(2, np.round(np.exp(rng.normal(5.0, 1.6, size=n_acc)))).astype(np.int64)
    employees = np.minimum(employees, 250_000)
    revenue = np.round(employees * np.exp(rng.normal(np.log(160_000), 0.5, size=n_acc)), -3)
    log_emp = np.log10(employees)
    acc_fit = (
        np.array([f for _, _, f in INDUSTRIES])[industry]
        + np.array([f for _, _, f in COUNTRIES])[country_acc]
        + np.where((log_emp > 2.3) & (log_emp < 3.8), 0.5, np.where(log_emp < 1.3, -0.6, 0.0))
        + rng.normal(0.0, 0.3, size=n_acc)
    )
    acc_effect = rng.normal(0.0, 0.6, size=n_acc)
    rank = np.argsort(np.argsort(-acc_fit)) / max(n_acc, 1)
    priority = np.where(rank < 0.15, 0, np.where(rank < 0.45, 1, 2))
    priority_known = rng.random(n_acc) < 0.8
    word = rng.integers(0, len(COMPANY_WORDS), size=n_acc)
    ckind = rng.integers(0, len(COMPANY_KINDS), size=n_acc)
    name_code = word * len(COMPANY_KINDS) + ckind
    dup = _occurrence(name_code)
    company_names = _strings([f"{w} {k}" for w in COMPANY_WORDS for k in COMPANY_KINDS], name_code)
    slug = _strings([f"{w}{k}".lower() for w in COMPANY_WORDS for k in COMPANY_KINDS], name_code)
    dup_text = pc.if_else(
        pa.array(dup > 0), pc.cast(pa.array(dup, pa.int64()), pa.string()), pa.scalar("")
    )
    tld = _strings((".com", ".de", ".co.uk", ".io"), rng.choice(4, size=n_acc, p=_p((6, 2, 1, 1))))
    domains = _join(slug, dup_text, tld)
    accounts = pa.table(
        {
            "account_id": _ids("A", np.arange(1, n_acc + 1), 6),
            "name": company_names,
            "domain": domains,
            "industry": _strings([i for i, _, _ in INDUSTRIES], industry),
            "employees": pa.array(employees, pa.int64()),
            "annual_revenue": _floats(revenue),
            "country": _strings([c for c, _, _ in COUNTRIES], country_acc),
            "priority": _strings(("tier1", "tier2", "tier3"), priority, priority_known),
        }
    )

    # Personas.
    persona = np.zeros(n, dtype=np.int64)
    persona[b2b] = rng.choice(
        len(B2B_PERSONAS), size=n_b2b, p=_p([w for _, w, _, _, _ in B2B_PERSONAS])
    )
    persona[~b2b] = rng.choice(len(B2C_TITLES), size=n - n_b2b, p=_p([w for _, w, _ in B2C_TITLES]))
    junior = np.where(
        b2b,
        np.array([j for *_, j in B2B_PERSONAS])[np.where(b2b, persona, 0)],
        np.array([j for *_, j in B2C_TITLES])[np.where(b2b, 0, persona)],
    )
    power = np.where(b2b, np.array([p for _, _, p, _, _ in B2B_PERSONAS])[persona * b2b], 0.5)
    persona_engagement = np.where(
        b2b, np.array([e for _, _, _, e, _ in B2B_PERSONAS])[persona * b2b], 1.0
    )
    age = rng.choice(len(AGE_BANDS), size=n, p=_p(AGE_WEIGHTS))
    purchasing = rng.choice(3, size=n, p=_p((35, 45, 20)))
    fit = np.where(
        b2b,
        # Index -1 (no account) picks the appended 0.0.
        np.append(acc_fit, 0.0)[account],
        0.5 * (purchasing - 1) + np.where((age >= 1) & (age <= 3), 0.3, -0.2),
    ) - np.where(junior, 0.8, 0.0)

    engagement = np.exp(rng.normal(-0.1, 0.8, size=n)) * persona_engagement
    intent = _sigmoid(rng.normal(0.0, 1.0, size=n) + 0.8 * fit + 1.2 * power - 1.0 * junior)
    topic = rng.integers(0, len(TOPICS), size=n)

    # Creation times: more leads recently; activity may stop months before as_of.
    age_days = _WINDOW_DAYS * rng.random(n) ** 1.3
    created = as_of_us - (age_days * _DAY_US).astype(np.int64) - rng.integers(0, _HOUR_US, size=n)
    created = np.maximum(created, as_of_us - _WINDOW_DAYS * _DAY_US) // 1_000_000 * 1_000_000
    quiet_for = (rng.uniform(60, 200, size=n) * _DAY_US).astype(np.int64)
    quiet = (rng.random(n) < 0.3) & (as_of_us - quiet_for > created + 7 * _DAY_US)
    active_end = np.where(quiet, as_of_us - quiet_for, as_of_us)
    email_ok = rng.random(n) >= 0.03
    unsubscribes = email_ok & (rng.random(n) < 0.06)

    # Lead attributes as a CRM would hold them: often incomplete.
    first = rng.integers(0, len(FIRST_NAMES), size=n)
    last = rng.integers(0, len(LAST_NAMES), size=n)
    names = _join(_strings(FIRST_NAMES, first), " ", _strings(LAST_NAMES, last))
    local = pc.utf8_lower(_join(_strings(FIRST_NAMES, first), ".", _strings(LAST_NAMES, last)))
    webmail = ~b2b | (junior & (rng.random(n) < 0.7))
    acc_idx = np.maximum(account, 0)
    domain_arr = domains.take(pa.array(acc_idx)) if n_acc else pa.nulls(n, pa.string())
    number = pc.cast(pa.array(rng.integers(1, 99, size=n), pa.int64()), pa.string())
    personal = _join(local, number, "@", _strings(WEBMAIL, rng.integers(0, len(WEBMAIL), size=n)))
    work = _join(local, "@", domain_arr) if n_acc else personal
    email = pc.if_else(pa.array(webmail), personal, work)
    title_b2b = [t for t, *_ in B2B_PERSONAS]
    title_b2c = [t for t, _, _ in B2C_TITLES]
    job_vocab = title_b2b + title_b2c
    job_code = np.where(b2b, persona, len(title_b2b) + persona)
    job_known = np.where(b2b, rng.random(n) < 0.85, rng.random(n) < 0.4)
    has_acc = account >= 0
    company = pc.if_else(
        pa.array(has_acc & (rng.random(n) < 0.9)),
        company_names.take(pa.array(acc_idx)) if n_acc else pa.nulls(n, pa.string()),
        pa.scalar(None, pa.string()),
    )
    ind_lead = np.where(has_acc, industry[acc_idx] if n_acc else 0, 0)
    emp_lead = np.where(has_acc, employees[acc_idx] if n_acc else 0, 0)
    rev_lead = np.where(has_acc, revenue[acc_idx] if n_acc else 0.0, 0.0)
    country_lead = np.where(
        has_acc & (rng.random(n) < 0.9),
        country_acc[acc_idx] if n_acc else 0,
        rng.choice(len(COUNTRIES), size=n, p=_p([w for _, w, _ in COUNTRIES])),
    )
    src_b2b = rng.choice(len(B2B_SOURCES), size=n, p=_p([w for _, w in B2B_SOURCES]))
    src_b2c = rng.choice(len(B2C_SOURCES), size=n, p=_p([w for _, w in B2C_SOURCES]))
    source_vocab = [s for s, _ in B2B_SOURCES] + [s for s, _ in B2C_SOURCES]
    source = np.where(b2b, src_b2b, len(B2B_SOURCES) + src_b2c)
    stage = np.where(intent > 0.75, 2, np.where(rng.random(n) < 0.3, 0, 1))
    leads = pa.table(
        {
            "lead_id": _ids("L", np.arange(1, n + 1), max(7, len(str(n)))),
            "email": email,
            "name": names,
            "job_title": _strings(job_vocab, job_code, job_known),
            "account_id": pc.if_else(
                pa.array(has_acc), _ids("A", acc_idx + 1, 6), pa.scalar(None, pa.string())
            ),
            "company": company,
            "industry": _strings(
                [i for i, _, _ in INDUSTRIES], ind_lead, has_acc & (rng.random(n) < 0.7)
            ),
            "employees": pa.array(emp_lead, pa.int64(), mask=~(has_acc & (rng.random(n) < 0.5))),
            "annual_revenue": _floats(rev_lead, has_acc & (rng.random(n) < 0.35)),
            "country": _strings([c for c, _, _ in COUNTRIES], country_lead, rng.random(n) < 0.85),
            "source": _strings(source_vocab, source),
            "created_at": _ts(created),
            "stage": _strings(("subscriber", "lead", "mql"), stage),
            "segment": _strings(("b2c", "b2b"), b2b.astype(np.int64)),
            "age_band": _strings(AGE_BANDS, age, ~b2b),
            "purchasing_power": _strings(POWER_LEVELS, purchasing, ~b2b),
        }
    )
    return _People(
        n=n,
        b2b=b2b,
        account=account,
        n_accounts=n_acc,
        persona=persona,
        junior=junior,
        power=power,
        engagement=engagement,
        intent=intent,
        fit=fit,
        topic=topic,
        created=created,
        active_end=active_end,
        quiet=quiet,
        email_ok=email_ok,
        unsubscribes=unsubscribes,
        account_fit=acc_fit,
        account_size=sizes,
        account_effect=acc_effect,
        leads=leads,
        accounts=accounts,
        lead_ids=leads.column("lead_id").combine_chunks(),
    )


# ---------------------------------------------------------------------------------------------
# Events


@dataclass
class _Activity:
    """Per-lead aggregates of the generated events, used to decide outcomes."""

    n_events: Array
    bofu: Array
    recent_bofu: Array
    last_ts: Array


def _session_times(
    rng: np.random.Generator, lead: Array, start: Array, end: Array, n_bursts: Array
) -> Array:
    """Session start times in [start, end) per lead: most in a few bursts, the rest anywhere."""
    span = np.maximum(end - start, 1)
    uniform = start[lead] + (rng.random(len(lead)) * span[lead]).astype(np.int64)
    burst_offsets = np.r_[0, np.cumsum(n_bursts)]
    centres = start[np.repeat(np.arange(len(start)), n_bursts)] + (
        rng.random(int(n_bursts.sum())) * np.repeat(span, n_bursts)
    ).astype(np.int64)
    pick = burst_offsets[lead] + (rng.random(len(lead)) * n_bursts[lead]).astype(np.int64)
    jitter = (rng.normal(0.0, 2.5, size=len(lead)) * _DAY_US).astype(np.int64)
    in_burst = (rng.random(len(lead)) < 0.6) & (n_bursts[lead] > 0)
    bursty = (
        centres[np.minimum(pick, max(len(centres) - 1, 0))] + jitter if len(centres) else uniform
    )
    times = np.where(in_burst, bursty, uniform)
    return np.clip(times, start[lead], end[lead] - 1)


def _chunk_events(
    rng: np.random.Generator, people: _People, lo: int, hi: int, as_of_us: int
) -> tuple[dict[str, pa.Array], Array, Array, Array]:
    """Events of leads lo..hi-1: Arrow columns (without event_id), lead index, ts, type code."""
    m = hi - lo
    sl = slice(lo, hi)
    eng = people.engagement[sl]
    intent = people.intent[sl]
    b2b = people.b2b[sl]
    junior = people.junior[sl]
    created = people.created[sl]
    end = np.maximum(people.active_end[sl], created + _HOUR_US)

    # Sessions per lead, then events per session.
    n_sess = rng.poisson(2.55 * eng)
    n_bursts = np.where(n_sess > 0, 1 + rng.poisson(0.8, size=m), 0)
    s_lead = np.repeat(np.arange(m), n_sess)
    s_start = _session_times(rng, s_lead, created, end, n_bursts)
    s_channel = rng.choice(len(CHANNELS), size=len(s_lead), p=_p(_CHANNEL_WEIGHTS))
    s_len = 1 + rng.poisson(1.9, size=len(s_lead))
    e_sess = np.repeat(np.arange(len(s_lead)), s_len)
    first_in = np.r_[0, np.cumsum(s_len)[:-1]]
    pos = np.arange(len(e_sess)) - first_in[e_sess]
    e_lead = s_lead[e_sess]
    gaps = rng.exponential(90.0, size=len(e_sess)) * 1_000_000
    cum = np.cumsum(gaps)
    e_ts = s_start[e_sess] + (cum - (cum[first_in] - gaps[first_in])[e_sess]).astype(np.int64)
    e_channel = s_channel[e_sess]

    # Event types: the first one in a session follows the channel, the rest the content mix.
    tier = np.digitize(intent, (0.4, 0.7))[e_lead]
    etype = np.full(len(e_sess), _E["page_view"], dtype=np.int64)
    for seg, mixes in ((True, _B2B_MIX), (False, _B2C_MIX)):
        for t, mix in enumerate(mixes):
            mask = (pos > 0) & (tier == t) & (b2b[e_lead] == seg)
            codes = [_E[k] for k in mix]
            etype[mask] = np.array(codes)[
                rng.choice(len(codes), size=int(mask.sum()), p=_p(list(mix.values())))
            ]
    first = pos == 0
    ch = np.array(CHANNELS)[e_channel]
    etype[first & (ch == "email")] = _E["email_open"]
    etype[first & (ch == "paid")] = _E["ad_click"]
    social = first & (ch == "social")
    etype[social] = np.where(rng.random(int(social.sum())) < 0.5, _E["social_like"], _E["ad_click"])
    # An email session usually goes on with a click.
    after_open = (pos == 1) & (ch == "email")
    etype[after_open & (rng.random(len(e_sess)) < 0.5)] = _E["email_click"]

    # Lead creation is a form submission or newsletter sign-up, at created_at.
    signup = rng.random(m) < 0.7
    sign_lead = np.nonzero(signup)[0]
    sign_type = np.where(
        rng.random(len(sign_lead)) < 0.75, _E["form_submit"], _E["newsletter_subscribe"]
    )

    # Bounces: no opens or clicks, one bounce. Unsubscribes: no email events after it.
    is_email = (etype == _E["email_open"]) | (etype == _E["email_click"])
    ok = people.email_ok[sl]
    unsub = people.unsubscribes[sl]
    unsub_ts = created + (rng.random(m) * (end - created)).astype(np.int64)
    keep = ~(is_email & ~ok[e_lead]) & ~(is_email & unsub[e_lead] & (e_ts > unsub_ts[e_lead]))
    bounce_lead = np.nonzero(~ok & (n_sess > 0))[0]
    unsub_lead = np.nonzero(unsub & (n_sess > 0))[0]

    lead_all = np.concatenate([e_lead[keep], sign_lead, bounce_lead, unsub_lead])
    ts_all = np.concatenate(
        [
            e_ts[keep],
            created[sign_lead],
            created[bounce_lead] + (rng.random(len(bounce_lead)) * 7 * _DAY_US).astype(np.int64),
            unsub_ts[unsub_lead],
        ]
    )
    type_all = np.concatenate(
        [
            etype[keep],
            sign_type,
            np.full(len(bounce_lead), _E["email_bounce"]),
            np.full(len(unsub_lead), _E["unsubscribe"]),
        ]
    )
    chan_all = np.concatenate(
        [
            e_channel[keep],
            rng.choice(len(CHANNELS), size=len(sign_lead), p=_p(_CHANNEL_WEIGHTS)),
            np.zeros(len(bounce_lead) + len(unsub_lead), dtype=np.int64),
        ]
    )
    # Whole seconds, as exports have them; still strictly before as_of.
    ts_all = np.minimum(ts_all, as_of_us - 1) // 1_000_000 * 1_000_000
    order = np.argsort(ts_all, kind="stable")
    lead_all, ts_all, type_all, chan_all = (
        lead_all[order],
        ts_all[order],
        type_all[order],
        chan_all[order],
    )
    k = len(lead_all)

    # Content: funnel stage, topic, URL, asset, campaign, value.
    tier_all = np.digitize(intent, (0.4, 0.7))[lead_all]
    stage = np.zeros(k, dtype=np.int64)
    for t, probs in enumerate(_STAGE_BY_TIER):
        mask = tier_all == t
        stage[mask] = rng.choice(3, size=int(mask.sum()), p=probs)
    topic = np.where(
        rng.random(k) < 0.7, people.topic[sl][lead_all], rng.integers(0, len(TOPICS), size=k)
    )
    seg_b2b = b2b[lead_all]
    is_page = type_all == _E["page_view"]
    is_download = type_all == _E["download"]
    is_webinar = type_all == _E["webinar_attended"]
    is_demo = type_all == _E["demo_request"]
    is_cart = (type_all == _E["add_to_cart"]) | (type_all == _E["cart_abandoned"])
    stage[is_demo | is_cart] = 2
    stage[is_webinar] = np.maximum(stage[is_webinar], 1)

    # Page views, and the landing pages of e-mail and ad clicks, get a page of their stage.
    is_click = (type_all == _E["email_click"]) | (type_all == _E["ad_click"])
    with_page = is_page | is_click
    junior_ev = junior[lead_all]
    careers = rng.random(k) < np.where(junior_ev, 0.35, 0.02)
    careers &= is_page
    stage[careers] = 0
    urls: pa.Array = pa.nulls(k, pa.string())
    for seg, pages in ((True, B2B_PAGES), (False, B2C_PAGES)):
        flat = [*(tpl for group in pages for tpl in group), "/careers"]
        base = np.cumsum([0] + [len(g) for g in pages[:-1]])
        sizes = np.array([len(g) for g in pages])
        mask = with_page & (seg_b2b == seg)
        within = (rng.random(k) * sizes[stage]).astype(np.int64)
        idx = np.where(careers, len(flat) - 1, base[stage] + within)
        part = _templated(flat, np.where(mask, idx, 0), topic, mask)
        urls = pc.if_else(pa.array(mask), part, urls)
    # Forms: sign-ups and contact forms, or, for job seekers, a job application.
    is_form = type_all == _E["form_submit"]
    job_application = is_form & (rng.random(k) < np.where(junior_ev, 0.5, 0.01))
    form_code = np.where(
        seg_b2b,
        rng.integers(0, len(B2B_FORMS), size=k),
        len(B2B_FORMS) + rng.integers(0, len(B2C_FORMS), size=k),
    )
    form_code = np.where(job_application, len(B2B_FORMS) + len(B2C_FORMS), form_code)
    form_urls = _strings((*B2B_FORMS, *B2C_FORMS, "/careers/apply"), form_code)
    urls = pc.if_else(pa.array(is_form), form_urls, urls)
    urls = pc.if_else(pa.array(is_demo), pa.scalar("/demo"), urls)
    urls = pc.if_else(pa.array(is_cart), pa.scalar("/cart"), urls)
    asset_choice = rng.integers(0, 3, size=k)
    asset_codes = stage * 3 + asset_choice
    asset_tpl = [tpl for group in ASSETS for tpl in group]
    assets = _templated(asset_tpl, asset_codes, topic, is_download)
    months = _month_names(ts_all)
    webinar_assets = _join("webinar-", _strings(TOPICS, topic), "-", months)
    assets = pc.if_else(pa.array(is_webinar), webinar_assets, assets)

    is_mail = (
        (type_all == _E["email_open"])
        | (type_all == _E["email_click"])
        | (type_all == _E["email_bounce"])
    )
    is_ad = (type_all == _E["ad_click"]) | (type_all == _E["social_like"])
    nurture = rng.random(k) < 0.5
    mail_campaign = pc.if_else(
        pa.array(nurture),
        _join("nurture-", _strings(TOPICS, topic)),
        _join("newsletter-", months),
    )
    ad_campaign = _join(_strings(CHANNELS, chan_all), "-", _strings(TOPICS, topic), "-", months)
    campaign = pc.if_else(
        pa.array(is_mail),
        mail_campaign,
        pc.if_else(pa.array(is_ad), ad_campaign, pa.scalar(None, pa.string())),
    )
    value = np.full(k, np.nan)
    value[is_page] = np.round(rng.lognormal(3.6, 0.9, size=int(is_page.sum())))
    value[is_cart] = np.round(rng.lognormal(4.3, 0.8, size=int(is_cart.sum())), 2)
    value[is_webinar] = np.round(rng.uniform(5, 60, size=int(is_webinar.sum())))
    has_value = ~np.isnan(value)
    has_stage = is_page | is_download | is_webinar | is_demo | is_cart
    has_topic = has_stage | is_mail | is_ad
    columns = {
        "lead_id": people.lead_ids.slice(lo, m).take(pa.array(lead_all)),
        "type": _strings(EVENT_TYPES, type_all),
        "ts": _ts(ts_all),
        "url": urls,
        "asset": assets,
        "campaign": campaign,
        "channel": _strings(CHANNELS, chan_all),
        "content_stage": _strings(STAGES, stage, has_stage),
        "topic": _strings(TOPICS, topic, has_topic),
        "value": _floats(np.where(has_value, value, 0.0), has_value),
    }
    later_form = is_form & ~job_application & (ts_all > created[lead_all])
    bofu = ((stage == 2) & has_stage) | later_form
    return columns, lead_all, ts_all, bofu


def _month_names(ts_us: Array) -> pa.Array:
    months = ts_us.astype("datetime64[us]").astype("datetime64[M]")
    first = months.min() if len(months) else np.datetime64("2000-01", "M")
    offset = (months - first).astype(np.int64)
    count = int(offset.max()) + 1 if len(offset) else 1
    vocab = [str(first + i) for i in range(count)]
    return _strings(vocab, offset)


def _activity(m: int, lead: Array, ts: Array, bofu: Array) -> _Activity:
    n_events = np.bincount(lead, minlength=m)
    last_ts = np.full(m, np.iinfo(np.int64).min, dtype=np.int64)
    np.maximum.at(last_ts, lead, ts)
    bofu_count = np.bincount(lead, weights=bofu, minlength=m)
    recent = bofu & (ts > last_ts[lead] - 30 * _DAY_US)
    recent_count = np.bincount(lead, weights=recent, minlength=m)
    return _Activity(n_events, bofu_count, recent_count, last_ts)


# ---------------------------------------------------------------------------------------------
# Outcomes


def _outcomes(
    rng: np.random.Generator, people: _People, act: _Activity, as_of_us: int
) -> tuple[pa.Table, Array]:
    n = people.n
    has_events = act.n_events > 0
    base_ts = np.where(has_events, act.last_ts, people.created)
    delay = rng.exponential(np.where(has_events, 20.0, 60.0)) * _DAY_US + _HOUR_US
    decided_ts = (base_ts + delay.astype(np.int64)) // 1_000_000 * 1_000_000
    stalled = rng.random(n) < 0.1
    decided = (decided_ts < as_of_us) & ~stalled

    engaged = (act.n_events >= 5).astype(np.float64)
    account = people.account
    has_acc = account >= 0
    stakeholders = np.zeros(n)
    effect = np.zeros(n)
    if people.n_accounts:
        per_acc = np.bincount(
            account[has_acc], weights=engaged[has_acc], minlength=people.n_accounts
        )
        stakeholders[has_acc] = per_acc[account[has_acc]]
        effect[has_acc] = people.account_effect[account[has_acc]]
    x = (
        1.1 * people.fit
        + 0.9 * np.log1p(act.bofu)
        + 0.6 * np.log1p(act.recent_bofu)
        + 0.2 * np.log1p(act.n_events)
        + 0.6 * np.log1p(np.maximum(stakeholders - 1, 0))
        + 0.6 * people.power * people.b2b
        - 1.4 * people.junior
        - 0.8 * people.unsubscribes
        - 0.5 * people.quiet
        + effect
        + rng.normal(0.0, 0.5, size=n)
    )
    # The intercept is solved for so that about 15 % of decided leads are won, at any size.
    lo, hi = -15.0, 10.0
    for _ in range(60):
        mid = (lo + hi) / 2
        rate = float(_sigmoid(x[decided] + mid).mean()) if decided.any() else _TARGET_WIN_RATE
        lo, hi = (mid, hi) if rate < _TARGET_WIN_RATE else (lo, mid)
    p = _sigmoid(x + (lo + hi) / 2)
    won = rng.random(n) < p
    idx = np.nonzero(decided)[0]
    acc_rev = np.zeros(n)
    if people.n_accounts:
        employees = people.accounts.column("employees").to_numpy()
        acc_rev[has_acc] = employees[account[has_acc]]
    deal = np.where(
        people.b2b,
        np.round(np.exp(rng.normal(np.log(8_000), 0.6, size=n)) * (1 + np.log1p(acc_rev) / 4), -2),
        np.round(np.exp(rng.normal(np.log(120), 0.5, size=n)), 2),
    )
    table = pa.table(
        {
            "lead_id": people.lead_ids.take(pa.array(idx)),
            "outcome": _strings(("lost", "won"), won[idx].astype(np.int64)),
            "ts": _ts(decided_ts[idx]),
            "value": _floats(deal[idx], won[idx]),
        }
    )
    return table, won & decided


# ---------------------------------------------------------------------------------------------
# Public API


def _as_of_micros(as_of: datetime) -> int:
    if as_of.tzinfo is not None:
        as_of = as_of.astimezone(UTC).replace(tzinfo=None)
    return (as_of - datetime(1970, 1, 1)) // timedelta(microseconds=1)


def _check(n_leads: int, seed: int, kind: str) -> None:
    if n_leads < 1:
        raise DataError(f"n_leads must be at least 1, got {n_leads}")
    if seed < 0:
        raise DataError(f"seed must be zero or positive, got {seed}")
    if kind not in ("b2b", "b2c", "mixed"):
        raise DataError(f"kind must be b2b, b2c or mixed, got {kind!r}")


def _iter_generate(
    n_leads: int, seed: int, kind: Kind, as_of: datetime
) -> tuple[_People, Any, Any]:
    as_of_us = _as_of_micros(as_of)
    people = _make_people(np.random.default_rng([seed, 0]), n_leads, kind, as_of_us)
    acts: list[_Activity] = []
    counter = [0]

    def chunks() -> Any:
        for c, lo in enumerate(range(0, n_leads, _CHUNK)):
            hi = min(lo + _CHUNK, n_leads)
            rng = np.random.default_rng([seed, 1, c])
            cols, lead, ts, bofu = _chunk_events(rng, people, lo, hi, as_of_us)
            acts.append(_activity(hi - lo, lead, ts, bofu))
            k = len(lead)
            ids = _ids("E", np.arange(counter[0] + 1, counter[0] + k + 1), 10)
            counter[0] += k
            yield pa.table({"event_id": ids, **cols})

    def finish() -> tuple[pa.Table, Array]:
        act = _Activity(
            np.concatenate([a.n_events for a in acts]),
            np.concatenate([a.bofu for a in acts]),
            np.concatenate([a.recent_bofu for a in acts]),
            np.concatenate([a.last_ts for a in acts]),
        )
        return _outcomes(np.random.default_rng([seed, 2]), people, act, as_of_us)

    return people, chunks, finish


def _conform(table: pa.Table, name: str) -> pa.Table:
    """Put columns in canonical order with canonical types, custom columns after."""
    canonical = [c.name for c in TABLES[name]]
    rest = [c for c in table.column_names if c not in canonical]
    return table.select(canonical + rest)


def generate_tables(
    n_leads: int,
    *,
    seed: int = 0,
    kind: Kind = "mixed",
    as_of: datetime = DEFAULT_AS_OF,
) -> dict[str, pa.Table]:
    """Generate leads, accounts, events and outcomes in memory as Arrow tables."""
    _check(n_leads, seed, kind)
    people, chunks, finish = _iter_generate(n_leads, seed, kind, as_of)
    events = pa.concat_tables(list(chunks()))
    outcomes, _ = finish()
    return {
        "leads": _conform(people.leads, "leads"),
        "accounts": _conform(people.accounts, "accounts"),
        "events": _conform(events, "events"),
        "outcomes": _conform(outcomes, "outcomes"),
    }


def generate_dataset(
    n_leads: int,
    *,
    seed: int = 0,
    kind: Kind = "mixed",
    as_of: datetime = DEFAULT_AS_OF,
    con: ibis.BaseBackend | None = None,
) -> Dataset:
    """Generate a dataset straight into DuckDB tables (no files, no validation needed)."""
    if con is None:
        con = ibis.duckdb.connect()
    token = uuid.uuid4().hex[:8]
    tables: dict[str, Any] = {}
    for name, table in generate_tables(n_leads, seed=seed, kind=kind, as_of=as_of).items():
        tables[name] = arrow_table(con, f"{name}_{token}", table)
    return Dataset(
        leads=tables["leads"],
        events=tables["events"],
        accounts=tables["accounts"],
        outcomes=tables["outcomes"],
        validated=True,
    )


def generate(
    n_leads: int,
    *,
    seed: int = 0,
    kind: Kind = "mixed",
    out: Path | None = None,
    as_of: datetime = DEFAULT_AS_OF,
    format: OutputFormat = "parquet",
) -> GenerationSummary:
    """Generate a dataset and write leads/accounts/events/outcomes files into directory `out`.

    Deterministic for a given (n_leads, seed, kind, as_of). All timestamps fall in the 365 days
    before `as_of` (naive UTC). With `out=None` nothing is written and only the summary returned.
    """
    _check(n_leads, seed, kind)
    if format not in ("parquet", "csv"):
        raise DataError(f"format must be parquet or csv, got {format!r}")
    people, chunks, finish = _iter_generate(n_leads, seed, kind, as_of)
    files: dict[str, Path] = {}
    suffix = ".parquet" if format == "parquet" else ".csv"
    if out is not None:
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        files = {t: out / f"{t}{suffix}" for t in ("leads", "accounts", "events", "outcomes")}
    n_events = 0
    writer: Any = None
    try:
        for chunk in chunks():
            chunk = _conform(chunk, "events")
            n_events += chunk.num_rows
            if out is None:
                continue
            if writer is None:
                writer = _open_writer(files["events"], chunk.schema, format)
            writer.write_table(chunk)
        if out is not None and writer is None:
            writer = _open_writer(files["events"], EVENTS_SCHEMA, format)
    finally:
        if writer is not None:
            writer.close()
    outcomes, won = finish()
    tables = {
        "leads": _conform(people.leads, "leads"),
        "accounts": _conform(people.accounts, "accounts"),
        "outcomes": _conform(outcomes, "outcomes"),
    }
    for name, table in tables.items():
        if out is not None:
            _write_arrow(table, files[name], format)
    n_out = outcomes.num_rows
    n_won = int(won.sum())
    return GenerationSummary(
        counts={
            "leads": people.n,
            "accounts": people.n_accounts,
            "events": n_events,
            "outcomes": n_out,
        },
        won=n_won,
        lost=n_out - n_won,
        open=people.n - n_out,
        files=files,
    )


def _open_writer(path: Path, schema: pa.Schema, format: OutputFormat) -> Any:
    if format == "parquet":
        return pq.ParquetWriter(path, schema, compression="zstd")
    return pacsv.CSVWriter(path, schema)


def _write_arrow(table: pa.Table, path: Path, format: OutputFormat) -> None:
    if format == "parquet":
        pq.write_table(table, path, compression="zstd")
    else:
        pacsv.write_csv(table, path)
