"""Webhooks: subscriptions, a transactional outbox, and signed delivery with retries.

A change that should be announced (a score, temperature or stage change, an SLA event) is
written to `webhook_deliveries` in the same transaction as the change itself, one row per
subscribed webhook, so nothing is announced that did not happen and nothing that happened
is lost. The `Deliverer` sends pending rows afterwards and records every attempt in the
same row, which makes the table the delivery log as well. Delivery is at least once: after
a crash the deliveries that were in flight are sent again, byte for byte, so receivers
should ignore a payload `id` they have already seen. Webhook URLs, and the addresses they
resolve to at delivery, are checked by `leadscore.service.urls`.

Every request is a POST whose body is the JSON payload
``{"id": <event uuid>, "topic": ..., "created_at": "...Z", "data": {...}}`` with the headers

- ``Content-Type: application/json``
- ``X-Leadscore-Topic``: the topic, as in the payload
- ``X-Leadscore-Delivery``: the delivery id (changes per webhook, constant across retries
  and resends after a crash; its number in the delivery log)
- ``X-Leadscore-Timestamp``: unix seconds when this attempt was sent
- ``X-Leadscore-Signature``: ``sha256=`` and the hex HMAC-SHA256, keyed with the webhook's
  secret, of ``timestamp + "." + body``

To verify a request, a receiver:

1. takes the raw request body bytes, before any JSON parsing;
2. recomputes ``hmac.new(secret.encode(), timestamp.encode() + b"." + body,
   hashlib.sha256).hexdigest()``;
3. compares ``"sha256=" + that`` with the signature header using ``hmac.compare_digest``
   (a plain ``==`` leaks by timing how much of a forged signature is right);
4. rejects the request if the timestamp is more than a few minutes from its own clock,
   so that a captured request cannot be replayed later.

`verify_signature` does exactly this. Any 2xx answer counts as delivered; anything else,
including redirects, is retried with exponential backoff until `max_attempts`. Of an error
answer only the status and a short printable excerpt are kept.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import random
import secrets
import threading
import time
import uuid
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, Final, NamedTuple

import httpx
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from leadscore import __version__
from leadscore.service import urls
from leadscore.service.clock import Clock
from leadscore.store import tables as t
from leadscore.store.database import Store

TOPICS: Final = (
    "score_changed",
    "temperature_changed",
    "stage_changed",
    "sla_opened",
    "sla_met",
    "sla_breached",
)
STATUSES: Final = ("pending", "delivered", "failed")
SIGNATURE_PREFIX: Final = "sha256="

log = logging.getLogger(__name__)

_W = t.webhooks
_D = t.webhook_deliveries
# Enough of an error answer to tell what went wrong, not so much that the log bloats.
_ERROR_BODY_LIMIT: Final = 500


# ---------------------------------------------------------------- payloads and signatures


def _iso(value: datetime) -> str:
    if value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    return value.isoformat() + "Z"


def _json_default(value: object) -> object:
    if isinstance(value, datetime):
        return _iso(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, (set, frozenset)):
        return sorted(value, key=str)
    raise TypeError(f"cannot encode {type(value).__name__} in a webhook payload")


def payload(topic: str, data: Mapping[str, Any], now: datetime) -> str:
    """The JSON text of one event: a fresh id, the topic, when it happened and its data."""
    return json.dumps(
        {"id": str(uuid.uuid4()), "topic": topic, "created_at": _iso(now), "data": data},
        default=_json_default,
        separators=(",", ":"),
    )


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """The hex HMAC-SHA256 of `timestamp + "." + body` keyed with `secret`."""
    return hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()


def verify_signature(
    secret: str,
    timestamp: str,
    body: bytes,
    signature: str,
    *,
    tolerance: float = 300.0,
    now: float | None = None,
) -> bool:
    """Whether a received request is authentic and recent (the receiver's side of `sign`)."""
    try:
        sent = int(timestamp)
    except ValueError:
        return False
    if abs((time.time() if now is None else now) - sent) > tolerance:
        return False
    expected = SIGNATURE_PREFIX + sign(secret, timestamp, body)
    return hmac.compare_digest(expected.encode(), signature.encode())


# ---------------------------------------------------------------- webhooks


def _check_topics(topics: Iterable[str] | None) -> list[str]:
    if topics is None:
        return list(TOPICS)
    chosen = list(topics)
    unknown = sorted({str(x) for x in chosen} - set(TOPICS))
    if unknown:
        raise ValueError(
            f"topics: unknown {', '.join(map(repr, unknown))}; choose from {', '.join(TOPICS)}"
        )
    if not chosen:
        raise ValueError(f"topics: choose at least one of {', '.join(TOPICS)}")
    # Canonical order, no duplicates: the stored list reads the same however it was sent.
    return [x for x in TOPICS if x in chosen]


def _webhook(row: Mapping[Any, Any], *, secret: bool) -> dict[str, Any]:
    out = {
        "id": row["id"],
        # Rows stored before URLs were checked may hold credentials: never shown.
        "url": urls.redact(row["url"]),
        "topics": list(row["topics"]),
        "active": bool(row["active"]),
        "created_at": row["created_at"],
    }
    if secret:
        out["secret"] = row["secret"]
    return out


def create_webhook(
    conn: Connection,
    url: str,
    topics: Iterable[str] | None,
    secret: str | None,
    now: datetime,
    *,
    policy: urls.Policy = urls.STRICT,
) -> dict[str, Any]:
    """Store a webhook (all topics if `topics` is None) and return it with its secret; the
    URL must be one `policy` lets the server call (`urls.UrlRefused` otherwise)."""
    url = policy.check(url)
    chosen = _check_topics(topics)
    if secret is None:
        secret = secrets.token_urlsafe(32)
    elif len(secret) < 16:
        # A short shared secret can be brute-forced from a single signed request.
        raise ValueError("secret: must be at least 16 characters (omit it to have one generated)")
    values = {"url": url, "secret": secret, "topics": chosen, "active": True, "created_at": now}
    key = conn.execute(_W.insert().values(**values)).inserted_primary_key
    assert key is not None  # always set for a single-row insert
    return _webhook({"id": key[0], **values}, secret=True)


def get_webhook(
    conn: Connection, webhook_id: int, *, include_secret: bool = False
) -> dict[str, Any] | None:
    """One webhook, or None if there is no such webhook."""
    row = conn.execute(sa.select(_W).where(_W.c.id == webhook_id)).mappings().first()
    return None if row is None else _webhook(row, secret=include_secret)


def list_webhooks(conn: Connection, *, include_secret: bool = False) -> list[dict[str, Any]]:
    """Every webhook, oldest first, without secrets unless asked."""
    rows = conn.execute(sa.select(_W).order_by(_W.c.id)).mappings()
    return [_webhook(r, secret=include_secret) for r in rows]


def delete_webhook(conn: Connection, webhook_id: int) -> bool:
    """Delete a webhook and all its deliveries, sent or not; False if there is no such webhook."""
    conn.execute(_D.delete().where(_D.c.webhook_id == webhook_id))
    return conn.execute(_W.delete().where(_W.c.id == webhook_id)).rowcount > 0


def deliveries(
    conn: Connection,
    webhook_id: int,
    limit: int = 100,
    status: str | None = None,
    before: int | None = None,
) -> list[dict[str, Any]]:
    """A webhook's delivery log, newest first, optionally only those with `status`, and only
    those older than delivery `before` (the next page)."""
    if status is not None and status not in STATUSES:
        raise ValueError(f"status: must be one of {', '.join(STATUSES)}; got {status!r}")
    if limit < 1:
        raise ValueError(f"limit: must be at least 1; got {limit}")
    query = sa.select(_D).where(_D.c.webhook_id == webhook_id)
    if status is not None:
        query = query.where(_D.c.status == status)
    if before is not None:
        query = query.where(_D.c.id < before)
    rows = conn.execute(query.order_by(_D.c.id.desc()).limit(limit)).mappings()
    return [
        {
            "id": r["id"],
            "topic": r["topic"],
            "lead_id": r["lead_id"],
            "status": r["status"],
            "attempts": r["attempts"],
            "last_status": r["last_status"],
            # Older rows kept up to 500 characters of a receiver's answer: cut as new ones.
            "last_error": None if r["last_error"] is None else excerpt(r["last_error"]),
            "created_at": r["created_at"],
            "delivered_at": r["delivered_at"],
            # Only a pending delivery has a next attempt; the column keeps the last one.
            "next_attempt_at": r["next_attempt_at"] if r["status"] == "pending" else None,
            "payload": json.loads(r["payload"]),
        }
        for r in rows
    ]


def prune_deliveries(conn: Connection, before: datetime) -> int:
    """Forget delivered and failed deliveries created before `before`; how many went."""
    result = conn.execute(
        _D.delete().where(_D.c.status.in_(("delivered", "failed")), _D.c.created_at < before)
    )
    return result.rowcount


# ---------------------------------------------------------------- the outbox


class Notification(NamedTuple):
    """One event to announce: its topic, the lead it is about, its data and when it happened."""

    topic: str
    lead_id: str | None
    data: Mapping[str, Any]
    at: datetime


class Subscriptions:
    """Which active webhooks want which topic, read once per transaction."""

    def __init__(self, by_topic: Mapping[str, Sequence[int]]) -> None:
        self._by_topic = {topic: tuple(ids) for topic, ids in by_topic.items() if ids}

    @classmethod
    def load(cls, conn: Connection) -> Subscriptions:
        """The subscriptions as `conn` sees them."""
        by_topic: dict[str, list[int]] = {}
        rows = conn.execute(
            sa.select(_W.c.id, _W.c.topics).where(_W.c.active == sa.true()).order_by(_W.c.id)
        )
        for webhook_id, topics in rows:
            for topic in topics:
                by_topic.setdefault(topic, []).append(webhook_id)
        return cls(by_topic)

    def wants(self, topic: str) -> bool:
        """Whether any active webhook subscribes to `topic`."""
        return topic in self._by_topic

    def enqueue(
        self,
        conn: Connection,
        topic: str,
        lead_id: str | None,
        data: Mapping[str, Any],
        now: datetime,
    ) -> int:
        """Queue one event for every webhook subscribed to `topic`; how many rows were written."""
        return self.enqueue_many(conn, ((topic, lead_id, data, now),))

    def enqueue_many(
        self,
        conn: Connection,
        rows: Iterable[tuple[str, str | None, Mapping[str, Any], datetime]],
    ) -> int:
        """Queue many events (e.g. `Notification`s) in one statement; how many rows were written."""
        if not self._by_topic:
            # The scoring path calls this for every change: with no subscribers, do nothing.
            return 0
        values: list[dict[str, Any]] = []
        for topic, lead_id, data, now in rows:
            if topic not in TOPICS:
                raise ValueError(f"topic: unknown {topic!r}; choose from {', '.join(TOPICS)}")
            webhook_ids = self._by_topic.get(topic)
            if not webhook_ids:
                continue
            # One event id for all subscribers: it names the event, the delivery id the send.
            body = payload(topic, data, now)
            values.extend(
                {
                    "webhook_id": webhook_id,
                    "topic": topic,
                    "lead_id": lead_id,
                    "payload": body,
                    "status": "pending",
                    "attempts": 0,
                    "next_attempt_at": now,
                    "created_at": now,
                }
                for webhook_id in webhook_ids
            )
        if values:
            conn.execute(_D.insert(), values)
        return len(values)


# ---------------------------------------------------------------- delivery

# What is kept of a receiver's answer or an error: enough to tell what went wrong, not a
# body (which may hold anything the receiver chose to send back).
EXCERPT_CHARS: Final = 120
_READ_AT_MOST: Final = 1024


def excerpt(text: str, limit: int = EXCERPT_CHARS) -> str:
    """`text` as one short line of printable characters (controls and format characters
    such as bidi overrides become spaces), cut to `limit` characters."""
    line = " ".join("".join(c if c.isprintable() else " " for c in text).split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


@dataclass
class _Job:
    id: int
    webhook: int
    topic: str
    payload: str
    attempts: int
    due: datetime  # the claim's lease, renewed while the job waits or is sent
    url: str
    secret: str


@dataclass(frozen=True)
class _Outcome:
    status: int | None
    error: str | None
    at: datetime
    # No answer at all (refused, unreachable, timed out): the receiver's other due
    # deliveries are not sent in this round.
    unreachable: bool = False

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


def _unix(moment: datetime) -> int:
    return int(moment.replace(tzinfo=UTC).timestamp())


def _error_text(response: httpx.Response) -> str:
    head = bytearray()
    try:
        for chunk in response.iter_raw():
            head += chunk
            if len(head) >= _READ_AT_MOST:
                break
    except httpx.HTTPError:
        pass
    text = excerpt(head[:_READ_AT_MOST].decode("utf-8", "replace"))
    return f"HTTP {response.status_code}" + (f": {text}" if text else "")


class Deliverer:
    """Sends due deliveries on a small pool of workers, retrying failures with backoff.

    Each webhook's deliveries are sent in order by one worker at a time, and different
    webhooks in parallel (`workers` of them), so a slow receiver delays only its own.
    `timeout` bounds one delivery in total (resolving, connecting, sending and the
    answer), not each read. A delivery the receiver did not answer (refused, unreachable,
    timed out) ends that receiver's round: its other due deliveries count the same failed
    attempt without being sent, so a dead receiver holds a worker for one timeout per round.

    A failed attempt number n (1-based) is retried after
    ``min(max_delay, base_delay * 2 ** (n - 1))`` seconds plus up to 10% jitter; after
    `max_attempts` attempts the delivery is marked failed.

    Claims are leases of `lease` seconds, renewed while this process holds them, so the
    deliveries of a process that died are taken back within `lease` seconds. Outcomes are
    recorded one by one as they come, so after a crash at most the deliveries in flight
    (one per worker) are sent again, with the same ``X-Leadscore-Delivery`` id.
    """

    def __init__(
        self,
        store: Store,
        clock: Clock,
        *,
        policy: urls.Policy = urls.STRICT,
        base_delay: float = 10.0,
        max_delay: float = 3600.0,
        max_attempts: int = 8,
        timeout: float = 10.0,
        batch: int = 100,
        workers: int = 4,
        lease: float = 20.0,
        poll_interval: float = 0.5,
        rng: random.Random | None = None,
    ) -> None:
        if base_delay <= 0 or max_delay < base_delay:
            raise ValueError("base_delay must be positive and max_delay at least base_delay")
        if min(max_attempts, batch, workers) < 1 or min(timeout, poll_interval, lease) <= 0:
            raise ValueError(
                "max_attempts, batch, workers, timeout, lease and poll_interval must be positive"
            )
        self.store = store
        self.clock = clock
        self.policy = policy
        self.base_delay = base_delay
        self.max_delay = max_delay
        self.max_attempts = max_attempts
        self.timeout = timeout
        self.batch = batch
        self.workers = workers
        self.lease = lease
        self.poll_interval = poll_interval
        self._rng = rng or random.Random()
        self._rng_lock = threading.Lock()
        # Redirects are not followed (in `policy.client`): the signature names no URL, so a
        # redirect could forward a valid signed request to a host nobody configured.
        self._client = policy.client(
            timeout,
            max_connections=workers + 2,
            user_agent=f"leadscore-webhooks/{__version__}",
        )
        self._pool = ThreadPoolExecutor(workers, thread_name_prefix="leadscore-webhook")
        self._lock = threading.Lock()  # guards the two below and every lease write
        self._held: dict[int, _Job] = {}  # claimed and not yet recorded
        self._busy: set[int] = set()  # webhooks with a worker on them
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._closed = False

    def delay(self, attempts: int) -> float:
        """Seconds to wait after `attempts` failed attempts, jitter included."""
        # Capping the exponent keeps huge max_attempts from overflowing the float.
        nominal = min(self.max_delay, self.base_delay * 2.0 ** min(attempts - 1, 64))
        # Upward only, so no retry comes sooner than the backoff promises; the spread
        # keeps many deliveries failing together from retrying in lockstep.
        with self._rng_lock:
            return nominal * (1.0 + 0.1 * self._rng.random())

    def deliver_due(self) -> int:
        """Send due pending deliveries (up to `batch`), wait for them and record outcomes;
        how many were sent."""
        with self._lock:
            busy = set(self._busy)
        rounds = [self._pool.submit(self._round, jobs) for jobs in self._claim(busy)]
        waiting = set(rounds)
        while waiting:
            _, waiting = wait(waiting, timeout=self.lease / 4)
            self._renew()
        return sum(r.result() for r in rounds)

    def _claim(self, busy: set[int]) -> list[list[_Job]]:
        """Claim due deliveries of webhooks not in `busy`, grouped by webhook in order."""
        now = self.clock()
        with self.store.read() as conn:
            rows = conn.execute(
                sa.select(
                    _D.c.id,
                    _D.c.webhook_id,
                    _D.c.topic,
                    _D.c.payload,
                    _D.c.attempts,
                    _D.c.next_attempt_at,
                    _W.c.id.label("webhook"),
                    _W.c.url,
                    _W.c.secret,
                )
                .select_from(_D.outerjoin(_W, _W.c.id == _D.c.webhook_id))
                .where(
                    _D.c.status == "pending",
                    _D.c.next_attempt_at <= now,
                    sa.or_(_W.c.id.is_(None), _W.c.active == sa.true()),
                    _D.c.webhook_id.not_in(busy),
                )
                .order_by(_D.c.next_attempt_at, _D.c.id)
                .limit(self.batch)
            ).all()
        if not rows:
            return []
        # Several processes may run a Deliverer on one database: each row is claimed by
        # moving its next attempt to the end of a short lease, renewed while this process
        # holds it, and only the process whose compare-and-set wins sends it.
        lease = now + timedelta(seconds=self.lease)
        groups: dict[int, list[_Job]] = {}
        with self._lock, self.store.write() as conn:
            for r in rows:
                if r.webhook is None:
                    # The webhook is gone: its deliveries are dropped, not sent.
                    conn.execute(_D.delete().where(_D.c.id == r.id))
                    continue
                if r.id in self._held:
                    continue  # ours already (a lease that lapsed while its write waited)
                claimed = conn.execute(
                    _D.update()
                    .where(
                        _D.c.id == r.id,
                        _D.c.status == "pending",
                        _D.c.next_attempt_at == r.next_attempt_at,
                    )
                    .values(next_attempt_at=lease)
                ).rowcount
                if claimed:
                    job = _Job(
                        r.id, r.webhook, r.topic, r.payload, r.attempts, lease, r.url, r.secret
                    )
                    self._held[job.id] = job
                    groups.setdefault(job.webhook, []).append(job)
            self._busy.update(groups)
        return list(groups.values())

    def _renew(self) -> None:
        """Extend the lease of every delivery this process holds."""
        with self._lock:
            if not self._held:
                return
            lease = self.clock() + timedelta(seconds=self.lease)
            by_due: dict[datetime, list[_Job]] = {}
            for job in self._held.values():
                by_due.setdefault(job.due, []).append(job)
            with self.store.write() as conn:
                for due, jobs in by_due.items():
                    conn.execute(
                        _D.update()
                        .where(
                            _D.c.id.in_([j.id for j in jobs]),
                            _D.c.status == "pending",
                            _D.c.next_attempt_at == due,
                        )
                        .values(next_attempt_at=lease)
                    )
            for jobs in by_due.values():
                for job in jobs:
                    job.due = lease

    def _round(self, jobs: list[_Job]) -> int:
        """Send one webhook's claimed deliveries in order; how many were sent."""
        sent = 0
        try:
            for i, job in enumerate(jobs):
                if self._stop.is_set():
                    self._hand_back(jobs[i:])
                    break
                outcome = self._send(job)
                sent += 1
                self._record([(job, outcome)])
                if outcome.unreachable and i + 1 < len(jobs):
                    note = excerpt(
                        f"not sent: delivery {job.id} to this webhook got no answer "
                        f"({outcome.error})"
                    )
                    skipped = _Outcome(None, note, outcome.at, unreachable=True)
                    self._record([(rest, skipped) for rest in jobs[i + 1 :]])
                    break
        except Exception:
            # A worker's error would vanish with its future. What was not recorded stays
            # claimed until the lease ends, then is sent again.
            log.exception("webhook delivery failed; the rest of this round retries shortly")
        finally:
            with self._lock:
                for job in jobs:
                    self._held.pop(job.id, None)
                self._busy.discard(jobs[0].webhook)
            self._wake.set()  # the loop may claim this webhook's next deliveries
        return sent

    def _send(self, job: _Job) -> _Outcome:
        body = job.payload.encode()
        # Stamped per request, not per batch, so a slow batch does not look like a replay.
        timestamp = str(_unix(self.clock()))
        headers = {
            "Content-Type": "application/json",
            "X-Leadscore-Topic": job.topic,
            "X-Leadscore-Delivery": str(job.id),
            "X-Leadscore-Timestamp": timestamp,
            "X-Leadscore-Signature": SIGNATURE_PREFIX + sign(job.secret, timestamp, body),
        }
        try:
            with (
                urls.deadline(self.timeout),
                self._client.stream("POST", job.url, content=body, headers=headers) as response,
            ):
                if 200 <= response.status_code < 300:
                    return _Outcome(response.status_code, None, self.clock())
                return _Outcome(response.status_code, _error_text(response), self.clock())
        except Exception as exc:
            # Whatever one endpoint does wrong is recorded against it and must not stop
            # the rest from being sent.
            message = excerpt(str(exc))
            error = type(exc).__name__ + (f": {message}" if message else "")
            unreachable = isinstance(exc, (httpx.TransportError, urls.UrlRefused))
            return _Outcome(None, error, self.clock(), unreachable=unreachable)

    def _record(self, outcomes: list[tuple[_Job, _Outcome]]) -> None:
        with self.store.write() as conn:
            for job, outcome in outcomes:
                attempts = job.attempts + 1
                values: dict[str, Any] = {
                    "attempts": attempts,
                    "last_status": outcome.status,
                    "last_error": outcome.error,
                }
                if outcome.ok:
                    values.update(
                        status="delivered", delivered_at=outcome.at, next_attempt_at=outcome.at
                    )
                elif attempts >= self.max_attempts:
                    values.update(status="failed", next_attempt_at=outcome.at)
                else:
                    values["next_attempt_at"] = outcome.at + timedelta(seconds=self.delay(attempts))
                # Matches nothing if the webhook was deleted meanwhile: dropped silently.
                conn.execute(
                    _D.update().where(_D.c.id == job.id, _D.c.status == "pending").values(**values)
                )
        with self._lock:
            for job, _ in outcomes:
                self._held.pop(job.id, None)

    def _hand_back(self, jobs: list[_Job]) -> None:
        """Stopped: make unsent deliveries due at once rather than when the lease ends."""
        with self._lock, self.store.write() as conn:
            for job in jobs:
                conn.execute(
                    _D.update()
                    .where(
                        _D.c.id == job.id,
                        _D.c.status == "pending",
                        _D.c.next_attempt_at == job.due,
                    )
                    .values(next_attempt_at=self.clock())
                )
                self._held.pop(job.id, None)

    def wake(self) -> None:
        """Deliver now rather than at the next poll (e.g. after committing new deliveries)."""
        self._wake.set()

    def start(self) -> None:
        """Deliver on a daemon thread until `stop`."""
        if self._thread is not None:
            raise RuntimeError("the deliverer is already running")
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="leadscore-webhooks", daemon=True)
        self._thread.start()

    def stop(self, timeout: float | None = None) -> None:
        """Stop after the requests in flight (each ends by its deadline), hand back what
        was not sent, and close the HTTP client."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
        if not self._closed:
            self._closed = True
            self._pool.shutdown(wait=True)
            self._client.close()

    def _run(self) -> None:
        renew_at = time.monotonic() + self.lease / 4
        while not self._stop.is_set():
            claimed = False
            try:
                if time.monotonic() >= renew_at:
                    self._renew()
                    renew_at = time.monotonic() + self.lease / 4
                with self._lock:
                    busy = set(self._busy)
                if len(busy) < self.workers:
                    for jobs in self._claim(busy):
                        self._pool.submit(self._round, jobs)
                        claimed = True
            except Exception:
                # A database hiccup must not end delivery for the life of the process.
                log.exception("webhook delivery failed; trying again shortly")
            if claimed:
                continue  # other webhooks may have due deliveries too: no pause
            self._wake.wait(max(0.0, min(self.poll_interval, renew_at - time.monotonic())))
            self._wake.clear()
