"""The API's contract with hostile clients, read from its own OpenAPI document.

Every integer the API takes is bounded to the store's 64 bits; every operation declares the one
error shape for its 4xx answers (422 included); and a real server keeps both promises for the
inputs that used to give 500: integers above 2^63 in ids and offsets.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import pytest

from leadscore.service.app import Settings, create_app
from servicekit import MODELS, ManualClock, Running, running_service, serve

INT64 = (-(2**63), 2**63 - 1)
HUGE = (2**63, 2**64 + 1, 10**30)


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    """A real service on a fresh SQLite file."""
    db = tmp_path_factory.mktemp("contract") / "leadscore.db"
    settings = Settings(database_url=f"sqlite:///{db}", rescore_interval=0)
    with running_service(settings, ManualClock()) as running:
        yield running


@pytest.fixture(scope="module")
def openapi(running: Running) -> dict[str, Any]:
    """The OpenAPI document the server publishes."""
    r = running.anonymous.get("/openapi.json")
    assert r.status_code == 200
    document: dict[str, Any] = r.json()
    return document


def _resolve(document: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        node: Any = document
        for part in schema["$ref"].removeprefix("#/").split("/"):
            node = node[part]
        schema = node
    return schema


def _integers(
    document: dict[str, Any], schema: Any, where: str, seen: set[str]
) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every integer schema inside `schema`, with where it is."""
    if isinstance(schema, dict):
        ref = schema.get("$ref")
        if ref is not None:
            if ref not in seen:
                yield from _integers(document, _resolve(document, schema), ref, seen | {ref})
            return
        if schema.get("type") == "integer":
            yield where, schema
        for key, value in schema.items():
            yield from _integers(document, value, f"{where}.{key}", seen)
    elif isinstance(schema, list):
        for i, value in enumerate(schema):
            yield from _integers(document, value, f"{where}[{i}]", seen)


def _operations(document: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in document["paths"].items():
        for method, operation in item.items():
            yield method.upper(), path, operation


def test_every_integer_the_api_takes_fits_the_store(openapi: dict[str, Any]) -> None:
    """Parameters and request bodies: no integer without 64-bit bounds."""
    unbounded = []
    for method, path, operation in _operations(openapi):
        sources: list[tuple[str, Any]] = [
            (f"{p['in']} '{p['name']}'", p.get("schema", {}))
            for p in operation.get("parameters", [])
        ]
        for media, content in operation.get("requestBody", {}).get("content", {}).items():
            sources.append((f"body ({media})", content.get("schema", {})))
        for name, schema in sources:
            for where, integer in _integers(openapi, schema, name, set()):
                low, high = integer.get("minimum"), integer.get("maximum")
                if low is None or high is None or low < INT64[0] or high > INT64[1]:
                    unbounded.append(f"{method} {path}: {where} (minimum {low}, maximum {high})")
    assert not unbounded, "integers without 64-bit bounds:\n" + "\n".join(unbounded)


def test_every_operation_declares_the_one_error_shape(openapi: dict[str, Any]) -> None:
    """4XX and 422 on every operation, both the Error schema; FastAPI's own 422 shape is gone."""
    schemas = openapi["components"]["schemas"]
    assert "HTTPValidationError" not in schemas and "ValidationError" not in schemas
    error = {"$ref": "#/components/schemas/Error"}
    missing = []
    for method, path, operation in _operations(openapi):
        for status in ("4XX", "422"):
            declared = operation["responses"].get(status, {})
            if declared.get("content", {}).get("application/json", {}).get("schema") != error:
                missing.append(f"{method} {path} {status}")
    assert not missing, "operations without the error shape:\n" + "\n".join(missing)


def _validator(openapi: dict[str, Any]) -> jsonschema.Draft202012Validator:
    schema = {"$ref": "#/components/schemas/Error", "components": openapi["components"]}
    return jsonschema.Draft202012Validator(schema)


def _filler(openapi: dict[str, Any], schema: dict[str, Any]) -> str:
    """A valid value for a parameter the test does not vary."""
    schema = _resolve(openapi, schema)
    for option in schema.get("anyOf", []):
        if option.get("type") != "null":
            return _filler(openapi, option)
    if "enum" in schema:
        return str(schema["enum"][0])
    if schema.get("format") == "date-time":
        return "2026-03-01T00:00:00Z"
    kind = schema.get("type")
    if kind == "integer":
        return str(max(schema.get("minimum", 1), 1))
    if kind == "number":
        return "1"
    if kind == "boolean":
        return "false"
    return "x"


def _requests_with_huge_integers(
    openapi: dict[str, Any],
) -> Iterator[tuple[str, str, dict[str, str], str]]:
    """(method, url, query, parameter) with one integer parameter set beyond 64 bits."""
    for method, path, operation in _operations(openapi):
        parameters = operation.get("parameters", [])
        for target in parameters:
            if not list(_integers(openapi, target.get("schema", {}), "", set())):
                continue
            for huge in HUGE:
                url, query = path, {}
                for p in parameters:
                    value = str(huge) if p is target else _filler(openapi, p.get("schema", {}))
                    if p["in"] == "path":
                        url = url.replace("{" + p["name"] + "}", value)
                    elif p["in"] == "query" and (p is target or p.get("required")):
                        query[p["name"]] = value
                yield method, url, query, f"{target['in']} '{target['name']}' = {huge}"


def test_integers_beyond_64_bits_are_refused_with_the_error_shape(
    running: Running, openapi: dict[str, Any]
) -> None:
    """Each integer parameter of each operation, above 2^63: a 422 naming it, never a 500."""
    validator = _validator(openapi)
    wrong = []
    sent = 0
    for method, url, query, what in _requests_with_huge_integers(openapi):
        r = running.admin.request(method, url, params=query)
        sent += 1
        problems = [e.message for e in validator.iter_errors(_json(r))]
        name = what.split("'")[1]
        if r.status_code != 422 or problems or name not in r.text:
            wrong.append(f"{method} {url} {query} ({what}): {r.status_code} {r.text[:200]}")
    assert sent >= 40  # every id and offset of the API, three values each
    assert not wrong, f"{len(wrong)} of {sent}:\n" + "\n".join(wrong)


def test_body_integers_beyond_64_bits_are_refused(running: Running) -> None:
    """A lead's employees above 2^63: 422 naming the field (the store column is 64-bit)."""
    r = running.admin.put("/v1/leads/L1", json={"lead_id": "L1", "employees": 2**63})
    assert r.status_code == 422
    assert r.json()["errors"][0]["field"] == "employees"


def test_attribute_integers_beyond_64_bits_are_refused_not_rounded(running: Running) -> None:
    """10^30 as an attribute: 422 naming it (it broke every evaluation once stored); 2^63 - 1
    is kept exactly, a decimal stays a decimal, and the evaluation endpoints still answer."""
    for huge in HUGE:
        r = running.admin.put("/v1/leads/L9", json={"lead_id": "L9", "attributes": {"n": huge}})
        assert r.status_code == 422, r.text
        assert r.json()["errors"][0]["field"] == "attributes.n"
        assert "64 bits" in r.json()["errors"][0]["message"]
    attributes = {"n": 2**63 - 1, "m": -(2**63), "x": 1e30}
    r = running.admin.put("/v1/leads/L9", json={"lead_id": "L9", "attributes": attributes})
    assert r.status_code == 200, r.text
    assert running.admin.get("/v1/leads/L9").json()["lead"]["attributes"] == attributes
    assert running.admin.post("/v1/leads/L9/outcome", json={"outcome": "won"}).is_success
    model = (MODELS / "starter.yaml").read_text(encoding="utf-8")
    r = running.admin.post(
        "/v1/models", content=model, headers={"content-type": "application/yaml"}
    )
    assert r.status_code == 201, r.text
    r = running.admin.get("/v1/evaluate/channels", params={"model_id": r.json()["id"]})
    assert r.status_code == 200, r.text


def _json(r: httpx.Response) -> Any:
    try:
        return r.json()
    except ValueError:
        return {"not JSON": r.text[:200]}


@pytest.mark.parametrize(
    ("method", "url", "kwargs", "status"),
    [
        ("GET", "/v1/leads", {"params": {"limit": "many"}}, 422),  # FastAPI's validation
        ("PUT", "/v1/leads/L1", {"json": {"lead_id": "L2"}}, 422),  # a route's own 422
        (
            "PUT",
            "/v1/leads/L1",
            {"content": b"{", "headers": {"content-type": "application/json"}},
            422,
        ),
        ("GET", "/v1/leads/nobody", {}, 404),
        ("GET", "/v1/nowhere", {}, 404),  # no such route
        ("PATCH", "/v1/leads", {}, 405),
        ("POST", "/v1/identify", {"content": b"{"}, 400),
        ("POST", "/v1/rescore", {}, 409),
        ("GET", "/v1/leads", {"headers": {"authorization": "Bearer nope"}}, 401),
    ],
)
def test_error_answers_have_the_one_shape(
    running: Running,
    openapi: dict[str, Any],
    method: str,
    url: str,
    kwargs: dict[str, Any],
    status: int,
) -> None:
    """Errors from validation, routes, routing and auth all match the documented Error schema."""
    r = running.admin.request(method, url, **kwargs)
    assert r.status_code == status, r.text
    body = _json(r)
    assert not [e.message for e in _validator(openapi).iter_errors(body)], body
    assert body["detail"]


def test_tracking_key_on_admin_operation_is_403_with_the_shape(
    running: Running, openapi: dict[str, Any]
) -> None:
    """A tracking key on an admin operation: 403 in the one shape, naming the scope."""
    r = running.tracking.get("/v1/leads")
    assert r.status_code == 403
    assert not list(_validator(openapi).iter_errors(r.json()))
    assert "admin" in r.json()["detail"]


def test_an_unexpected_error_is_500_in_the_one_shape(tmp_path: Path) -> None:
    """A bug in a route: 500 with the error shape, no traceback or message to the client."""
    settings = Settings(database_url=f"sqlite:///{tmp_path}/x.db", background=False)
    app = create_app(settings)

    def broken() -> None:
        raise RuntimeError("secret internals: postgresql://user:pw@db")

    app.add_api_route("/v1/broken", broken)  # a stand-in for a bug, on the real app
    server, thread, base = serve(app)
    try:
        r = httpx.get(f"{base}/v1/broken")
    finally:
        server.should_exit = True
        thread.join(20)
    assert r.status_code == 500
    assert r.headers["content-type"] == "application/json"
    assert r.json() == {"detail": "internal error; the server log has the details"}
    # answered outside the middleware, yet with the security headers of every answer
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["x-frame-options"] == "DENY"
    assert r.headers["cache-control"] == "no-store"
    assert "default-src 'none'" in r.headers["content-security-policy"]


EDGES = ("9999-12-31T23:59:59", "0001-01-10T00:00:00+01:00")  # beyond the ends with a horizon


def test_evaluation_windows_at_the_ends_of_time_are_no_500(
    running: Running, openapi: dict[str, Any]
) -> None:
    """Cut-offs and as-of times near years 1 and 9999, whose windows pass the end of what a
    datetime holds: an answer or a 422 in the one shape, never a 500."""
    running.publish((MODELS / "starter.yaml").read_text(encoding="utf-8"))
    lead = {"lead_id": "E1", "created_at": "2026-01-01T00:00:00Z"}
    assert running.admin.put("/v1/leads/E1", json=lead).status_code == 200
    outcome = {"outcome": "won", "ts": "2026-02-01T00:00:00Z"}
    assert running.admin.post("/v1/leads/E1/outcome", json=outcome).status_code == 201
    model_id = running.admin.get("/v1/models").json()["active"]
    validator = _validator(openapi)
    wrong = []
    for when in EDGES:
        for url, params in (
            ("/v1/evaluate/backtest", {"cutoff": when, "horizon_days": "3650"}),
            ("/v1/evaluate/capacity", {"per_week": "5", "cutoff": when, "weeks": "520"}),
            ("/v1/evaluate/channels", {"as_of": when}),
            ("/v1/evaluate/compare", {"candidate": str(model_id), "cutoff": when}),
        ):
            try:
                r = running.admin.get(url, params=params)
            except httpx.TransportError as exc:  # the server dropped the connection: a crash
                wrong.append(f"{url} {params}: {exc!r}")
                continue
            if r.status_code >= 500 or (
                r.status_code >= 400 and list(validator.iter_errors(_json(r)))
            ):
                wrong.append(f"{url} {params}: {r.status_code} {r.text[:200]}")
    assert not wrong, "\n".join(wrong)
