"""The collector's HTTP ingest API (aiohttp): authenticate, validate, rate-limit, commit, ack.

``POST /api/v1/reports`` takes a batch (see :mod:`agents.wire`). The order of checks is fixed so
that nothing is stored unless everything passed: size → token → rate limit → strict JSON
(:mod:`collectors.strict_json`) → schema → identity (an agent may only report for itself) → batch
order → plausibility (:func:`agents.wire.plausibility_problems`) → durable commit → 200 with the
accepted and duplicate sequence numbers. Every refusal is a 4xx JSON body ``{"error": …}``
written for the agency sysadmin who reads the agent's log, naming the field and why.

Nothing a client sends may make the NOC answer 5xx: a store that cannot take the write answers
503 with Retry-After (the agent keeps the batch and retries); a bug that slips past every check is
logged once with the agent's id and answered 500 with no traceback.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Protocol

from aiohttp import web
from aiohttp.web_protocol import RequestPayloadError
from jsonschema import Draft202012Validator, validators
from jsonschema.exceptions import ValidationError

from agents.wire import (
    BATCH_SCHEMA,
    MAX_BATCH,
    MAX_BODY_BYTES,
    MAX_DEPTH,
    MAX_KEYS,
    clock_problem,
    plausibility_problems,
)
from collectors import strict_json
from core.errors import ReportError, StateError

log = logging.getLogger("pantau.ingest")


def _is_integer(_checker: Any, instance: Any) -> bool:
    # JSON Schema counts 1.0 as an integer; a counter or a seq sent as a float is not one here.
    return isinstance(instance, int) and not isinstance(instance, bool)


_StrictValidator = validators.extend(  # type: ignore[no-untyped-call]
    Draft202012Validator, type_checker=Draft202012Validator.TYPE_CHECKER.redefine("integer", _is_integer))
_VALIDATOR = _StrictValidator(BATCH_SCHEMA)
STORE_RETRY_AFTER_S = 5.0


@dataclass(frozen=True)
class CommitResult:
    accepted: list[int]
    duplicates: list[int]


class ReportStore(Protocol):
    """What ingest needs from the NOC state (implemented by :class:`noc.state.StateStore`)."""

    def authenticate(self, token: str) -> str | None: ...

    def commit_batch(self, agent: str, batch: dict[str, Any], received_at: float) -> CommitResult: ...

    def outbox_count(self) -> int: ...


@dataclass
class TokenBucket:
    """Per-agent request rate limit."""

    rate: float
    burst: float
    tokens: float = -1.0
    stamp: float = field(default_factory=time.monotonic)

    def take(self, now: float) -> float:
        """Take one token; return 0 when allowed, else seconds until one is available."""
        if self.tokens < 0:
            self.tokens = self.burst
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens >= 1:
            self.tokens -= 1
            return 0.0
        return (1 - self.tokens) / self.rate


def describe_errors(doc: Any) -> list[str]:
    """Every schema problem in a batch as ``path: message``, most specific first, at most 20."""
    problems = []
    for err in sorted(_VALIDATOR.iter_errors(doc), key=lambda e: list(e.absolute_path))[:20]:
        problems.append(f"{_path(err)}: {_short(err)}")
    return problems


def _parse(raw: bytes) -> tuple[Any, int, list[str]]:
    """Strict JSON, then the schema: the document, its non-finite numbers and its schema problems."""
    doc, non_finite = strict_json.loads(raw, max_depth=MAX_DEPTH, max_keys=MAX_KEYS)
    return doc, non_finite, describe_errors(doc)


def _path(err: ValidationError) -> str:
    out = ""
    for p in err.absolute_path:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out or "(body)"


def _short(err: ValidationError) -> str:
    if err.validator == "not" and isinstance(err.validator_value, dict) and "pattern" in err.validator_value:
        return "contains a control character or a lone surrogate, which this field does not allow"
    msg = err.message
    return msg if len(msg) <= 200 else msg[:197] + "..."


def _error(status: int, message: str, **extra: Any) -> web.Response:
    headers = {}
    if status == 401:
        headers["WWW-Authenticate"] = 'Bearer realm="pantau"'
    if "retry_after" in extra:
        headers["Retry-After"] = str(max(1, round(extra["retry_after"])))
    body = {"error": message, **{k: v for k, v in extra.items() if k != "retry_after"}}
    return web.json_response(body, status=status, headers=headers)


class IngestApp:
    """Builds the aiohttp application around a :class:`ReportStore`."""

    def __init__(
        self,
        store: ReportStore,
        *,
        rate_per_agent: float = 5.0,
        burst_per_agent: float = 20.0,
        clock: Callable[[], float] = time.time,
        openapi: dict[str, Any] | None = None,
    ) -> None:
        self.store = store
        self.rate = rate_per_agent
        self.burst = burst_per_agent
        self.clock = clock
        self._buckets: dict[str, TokenBucket] = {}
        # SQLite writes are serialised on one thread: commits never interleave.
        self._db = ThreadPoolExecutor(max_workers=1, thread_name_prefix="pantau-db")
        self.openapi = openapi or {}
        self.stats = {"accepted": 0, "duplicates": 0, "refused": 0}

    def build(self) -> web.Application:
        app = web.Application(client_max_size=MAX_BODY_BYTES)
        app.router.add_post("/api/v1/reports", self.post_reports)
        app.router.add_get("/api/v1/openapi.json", self.get_openapi)
        app.router.add_get("/healthz", self.get_health)
        app.on_cleanup.append(self._cleanup)
        return app

    async def _cleanup(self, _app: web.Application) -> None:
        self._db.shutdown(wait=True)

    async def _run_db(self, fn: Callable[..., Any], *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._db, fn, *args)

    async def get_openapi(self, _request: web.Request) -> web.Response:
        return web.json_response(self.openapi)

    async def get_health(self, _request: web.Request) -> web.Response:
        pending = await self._run_db(self.store.outbox_count)
        return web.json_response({"status": "ok", "tsdb_outbox_pending": pending, **self.stats})

    def _refuse(self, status: int, message: str, **extra: Any) -> web.Response:
        self.stats["refused"] += 1
        return _error(status, message, **extra)

    async def post_reports(self, request: web.Request) -> web.Response:
        """Take one batch; never lets an exception become aiohttp's own 500 page."""
        try:
            return await self._post_reports(request)
        except StateError as exc:
            log.error("could not store a batch from agent %s: %s; told it to retry", request.get("agent", "?"), exc)
            return _error(503, "the NOC cannot store reports right now; keep them and retry",
                          retry_after=STORE_RETRY_AFTER_S)
        except Exception:
            log.exception("bug: a batch from agent %s could not be handled (%s)", request.get("agent", "?"),
                          request.remote or "?")
            return _error(500, "the NOC failed to handle this batch; its operators have the details in the NOC log")

    async def _post_reports(self, request: web.Request) -> web.Response:
        peer = request.remote or "?"
        if request.content_length is not None and request.content_length > MAX_BODY_BYTES:
            log.warning("refused an oversized report body (%d bytes) from %s", request.content_length, peer)
            return self._refuse(
                413, f"report body is {request.content_length} bytes; the limit is {MAX_BODY_BYTES} bytes. "
                f"Send fewer reports per batch (at most {MAX_BATCH})."
            )
        auth = request.headers.get("Authorization", "")
        if not auth.startswith("Bearer ") or not auth[7:].strip():
            return self._refuse(401, "missing bearer token: send 'Authorization: Bearer <agent token>'")
        token = auth[7:].strip()
        if not (token.isascii() and token.isprintable()):
            log.warning("refused a report with a malformed token from %s", peer)
            return self._refuse(401, "the token is malformed: an agent token is printable ASCII")
        agent = await self._run_db(self.store.authenticate, token)
        if agent is None:
            log.warning("refused a report with an unknown or revoked token from %s", peer)
            return self._refuse(
                401, "the token is unknown or revoked; ask the NOC for a new one (pantau agents add)"
            )
        request["agent"] = agent  # for the error log of post_reports
        bucket = self._buckets.setdefault(agent, TokenBucket(self.rate, self.burst))
        wait = bucket.take(time.monotonic())
        if wait > 0:
            return self._refuse(429, f"agent {agent!r} is sending too fast; retry later", retry_after=wait)
        try:
            raw = await request.read()
        except web.HTTPRequestEntityTooLarge:
            log.warning("refused an oversized report body from agent %r (%s)", agent, peer)
            return self._refuse(413, f"report body exceeds the limit of {MAX_BODY_BYTES} bytes")
        except (RequestPayloadError, ValueError) as exc:  # a broken chunked or compressed body
            log.warning("refused an unreadable report body from agent %r (%s): %s", agent, peer,
                        str(exc).replace("\n", " "))
            request.content.feed_eof()  # nothing more is read of it: the connection closes after the answer
            refused = self._refuse(400, f"the body could not be read: {' '.join(str(exc).split())}")
            refused.force_close()
            return refused
        # Parsing and validation take milliseconds on a large batch: off the event loop the SNMP
        # poller and the other agents share.
        try:
            doc, non_finite, problems = await asyncio.get_running_loop().run_in_executor(None, _parse, raw)
        except ReportError as exc:
            log.warning("refused a report from agent %r that is not strict JSON: %s", agent, exc)
            return self._refuse(400, str(exc))
        if problems:
            log.warning("refused a malformed report from agent %r: %s", agent, "; ".join(problems[:3]))
            return self._refuse(422, "the report does not match schema v1", problems=problems)
        if non_finite:  # the schema refuses every marker; this is the second lock on the door
            return self._refuse(400, "the body holds NaN, Infinity or a number too large for a float")
        if doc["agent"] != agent:
            log.warning("agent %r tried to report as %r from %s: refused", agent, doc["agent"], peer)
            return self._refuse(
                403, f"this token belongs to agent {agent!r}; it may not report for {doc['agent']!r}"
            )
        seqs = [r["seq"] for r in doc["reports"]]
        if any(b <= a for a, b in itertools.pairwise(seqs)):
            return self._refuse(422, "reports in a batch must have strictly increasing seq numbers",
                                problems=[f"reports.seq: {seqs[:20]}"])
        skewed = clock_problem(doc, self.clock())
        if skewed:
            log.warning("refused a batch from agent %r until its clock is set: %s", agent, skewed)
            return self._refuse(409, "the agent's clock is far from the NOC's; its reports wait in its spool",
                                problems=[skewed])
        problems = plausibility_problems(doc)
        if problems:
            log.warning("refused an implausible report from agent %r: %s", agent, "; ".join(problems[:3]))
            return self._refuse(422, "the report claims what cannot be true", problems=problems)
        try:
            result: CommitResult = await self._run_db(self.store.commit_batch, agent, doc, self.clock())
        except ReportError as exc:
            return self._refuse(422, str(exc))
        self.stats["accepted"] += len(result.accepted)
        self.stats["duplicates"] += len(result.duplicates)
        return web.json_response({"accepted": result.accepted, "duplicates": result.duplicates})


def openapi_document(server_url: str = "/") -> dict[str, Any]:
    """The OpenAPI 3.1 description of the ingest API, with the wire schema embedded."""
    err = {"type": "object", "properties": {"error": {"type": "string"}, "problems": {
        "type": "array", "items": {"type": "string"}}}, "required": ["error"]}

    def resp(desc: str) -> dict[str, Any]:
        schema = {"$ref": "#/components/schemas/Error"}
        return {"description": desc, "content": {"application/json": {"schema": schema}}}

    return {
        "openapi": "3.1.0",
        "info": {"title": "pantau NOC ingest API", "version": "1.0.0",
                 "description": "Agents POST batches of raw cumulative counters; the NOC computes rates."},
        "servers": [{"url": server_url}],
        "components": {
            "securitySchemes": {"agentToken": {"type": "http", "scheme": "bearer"}},
            "schemas": {"Batch": BATCH_SCHEMA, "Error": err, "Ack": {
                "type": "object", "required": ["accepted", "duplicates"],
                "properties": {"accepted": {"type": "array", "items": {"type": "integer"}},
                               "duplicates": {"type": "array", "items": {"type": "integer"}}}}},
        },
        "paths": {
            "/api/v1/reports": {"post": {
                "summary": "Submit a batch of reports (acknowledged only once durably committed)",
                "security": [{"agentToken": []}],
                "requestBody": {"required": True, "content": {"application/json": {
                    "schema": {"$ref": "#/components/schemas/Batch"}}}},
                "responses": {
                    "200": {"description": "committed; re-sent reports are listed as duplicates",
                            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Ack"}}}},
                    "400": resp("body is not JSON"),
                    "401": resp("token missing, unknown or revoked"),
                    "403": resp("the token's agent is not the batch's agent"),
                    "409": resp("the agent's wall clock is too far from the NOC's; retry once it is set"),
                    "413": resp("body too large"),
                    "422": resp("body does not match the schema"),
                    "429": resp("too many requests from this agent; see Retry-After"),
                    "503": resp("the NOC cannot store reports right now; keep them and retry after Retry-After"),
                },
            }},
            "/healthz": {"get": {"summary": "Liveness and TSDB backlog", "responses": {"200": {"description": "ok"}}}},
        },
    }
