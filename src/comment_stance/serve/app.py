"""The application factory: :func:`create_app` takes a loaded model and returns the ASGI app.

The same app serves the scoring API (``/v1/...``), the review page (``/review``, with its JSON twin
``/review.json``) and the target mapping page (``/targets`` and ``/targets.json``). Nothing is
fetched at run time: the page's script and style ship in ``serve/static`` with version-named
files.
"""

import hashlib
from html import escape
import json
import logging
import os
import tempfile
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from string import Template
from typing import Any, Literal, Optional

from fastapi import Body, Depends, FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, StreamingResponse
from fastapi.security import APIKeyHeader
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from .. import __version__
from ..errors import DataError, StanceError
from ..readers import INPUT_FORMATS, read_chunks
from .batching import Batcher
from .keys import KeyCheck, read_key_file
from .scorer import Scorer
from .store import STATUSES, ReviewStore, training_record
from .targets import TargetMap

log = logging.getLogger("comment_stance.serve")

#: bumped whenever the page's script or style changes: the file names carry it, so a browser
#: never mixes an old cached script with a new page
ASSET_VERSION = "1"
#: rows of an uploaded export scored at a time (API requests are served between chunks)
UPLOAD_CHUNK = 500
HERE = Path(__file__).parent


@dataclass
class Limits:
    """Request limits. Every request over one gets a 413 or 422 that names the limit."""

    max_body_bytes: int = 1_000_000
    max_comments: int = 100
    max_chars: int = 20_000
    max_upload_bytes: int = 50 * 1024 * 1024


class ApiError(Exception):
    def __init__(self, status: int, message: str, hint: str | None = None):
        super().__init__(message)
        self.status, self.message, self.hint = status, message, hint


# -- response models shared by every app ----------------------------------------------------------
class ErrorBody(BaseModel):
    status: int
    message: str = Field(description="What is wrong, naming the field or limit.")
    hint: Optional[str] = Field(None, description="How to fix it.")


class ErrorResponse(BaseModel):
    error: ErrorBody


class ModelRef(BaseModel):
    name: str
    version: str = Field(description="First 12 hex digits of the SHA-256 of the model's config.json.")


class Score(BaseModel):
    id: Optional[str]
    label: Optional[str]
    confidence: Optional[float]
    probabilities: dict[str, float] = Field(description="One probability per label.")
    needs_review: Optional[bool] = Field(description="From the scoring core (null when it sets no review rule).")
    review_reason: Optional[str] = Field(description="Why the comment needs review, from the scoring core "
                                                     "(null when it gives none).")
    target: Optional[str] = Field(description="The target the comment was scored against, after the mapping.")
    target_resolved: bool = Field(description="False when neither the article nor the comment named a target.")
    error: Optional[str] = None


class ScoreResponse(BaseModel):
    model: ModelRef
    results: list[Score]


class QueueItem(BaseModel):
    model_config = ConfigDict(extra="allow")
    id: str
    text: Optional[str]
    status: str
    label: Optional[str]
    decision: Optional[str]
    confidence: Optional[float]


class QueueResponse(BaseModel):
    total: int
    items: list[QueueItem]


class DecisionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: str = Field(min_length=1, max_length=1000, description="The comment's id.")
    label: Optional[str] = Field(None, max_length=200,
                                 description="The right label; leave it out to accept the model's label.")


class TargetsResponse(BaseModel):
    mapping: dict[str, str]
    file: Optional[str] = Field(description="Where the mapping is kept (null: in memory only).")


class UploadResponse(BaseModel):
    file: str
    format: str
    rows: int
    scored: int
    errors: int
    first_errors: list[str]


_ERRORS = {code: {"model": ErrorResponse} for code in (400, 401, 413, 422)}
#: body types a page on another site can send without a CORS preflight
_FORM_TYPES = ("text/plain", "multipart/form-data", "application/x-www-form-urlencoded")


def _model_info(model: Any, model_dir: Path | None) -> dict[str, Any]:
    config = dict(getattr(model, "config_", None) or {"family": getattr(model, "family", type(model).__name__),
                                                        "labels": [str(c) for c in model.classes_]})
    version = hashlib.sha256(json.dumps(config, sort_keys=True, default=str).encode()).hexdigest()[:12]
    metrics: dict[str, Any] = {}
    if model_dir is not None and (model_dir / "metrics.json").is_file():
        try:
            metrics = json.loads((model_dir / "metrics.json").read_text())
        except (json.JSONDecodeError, UnicodeDecodeError):
            log.warning("%s: metrics.json is not valid JSON; /v1/model shows no metrics", model_dir)
    training = config.get("training") or {}
    return {
        "name": config.get("name", config.get("family")),
        "family": config.get("family"),
        "version": version,
        "labels": [str(c) for c in model.classes_],
        "created_at": config.get("created_at"),
        "training_data_sha256": training.get("sha256"),
        "training": training,
        "versions": config.get("versions", {}),
        "metrics": metrics,
        "folder": str(model_dir) if model_dir is not None else None,
    }


def _where(loc: tuple) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header")]
    text = ""
    for part in parts:
        text += f"[{part}]" if part.isdigit() else (f".{part}" if text else part)
    return text or "request body"


#: the names a server bound to this machine only answers to (a guard against DNS rebinding)
LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")


def _host_name(value: str) -> str:
    value = value.strip().lower()
    if value.startswith("["):  # [::1]:8000
        return value[1:value.find("]")] if "]" in value else value
    return value.rsplit(":", 1)[0] if value.count(":") == 1 else value


class _BodyLimit:
    """Pure ASGI middleware: refuses request bodies over the limit with a 413, before the app reads
    them, and (with ``allowed_hosts``) requests for a Host the server does not answer to."""

    def __init__(self, app: Any, limits: Limits, allowed_hosts: tuple[str, ...] | None = None):
        self.app = app
        self.limits = limits
        self.allowed_hosts = {_host_name(h) for h in allowed_hosts} if allowed_hosts else None

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        if self.allowed_hosts is not None:
            host = _host_name(dict(scope.get("headers") or []).get(b"host", b"").decode("latin-1"))
            if host not in self.allowed_hosts:
                return await _send_error(send, 421, f"this server does not answer to the host name '{host[:100]}'",
                                         "start it with --allowed-host NAME for the name your proxy or browser uses")
        upload = scope["path"].endswith("/v1/upload")
        limit = self.limits.max_upload_bytes if upload else self.limits.max_body_bytes
        length = dict(scope.get("headers") or []).get(b"content-length")
        if length is not None:
            try:
                declared = int(length)
            except ValueError:
                return await _send_error(send, 400, "the Content-Length header is not a number", "send a valid request")
            if declared > limit:
                return await _too_large(send, limit, upload)
        if upload:  # the upload handler streams to disk and counts for itself
            return await self.app(scope, receive, send)
        body, size, more = [], 0, True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                return await _too_large(send, limit, upload)
            body.append(chunk)
            more = message.get("more_body", False)
        whole = b"".join(body)
        replayed = False

        async def replay():
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": whole, "more_body": False}
            return await receive()

        return await self.app(scope, replay, send)


def _printable(text: str | None, limit: int = 600) -> str | None:
    """A message safe to send: undecodable bytes shown as escapes, and not endless."""
    if text is None:
        return None
    text = text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text if len(text) <= limit else text[:limit] + "…"


async def _too_large(send, limit: int, upload: bool) -> None:
    what = "upload" if upload else "request body"
    flag = "--max-upload-bytes" if upload else "--max-body-bytes"
    await _send_error(send, 413, f"the {what} is over the limit of {limit:,} bytes",
                      f"send fewer or shorter comments, or start the server with a larger {flag}")


async def _send_error(send, status: int, message: str, hint: str | None) -> None:
    body = json.dumps({"error": {"status": status, "message": message, "hint": hint}}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


def create_app(
    model: Any,
    *,
    model_dir: str | Path | None = None,
    targets: TargetMap | str | Path | dict | None = None,
    db: ReviewStore | str | Path = ":memory:",
    api_keys: list[str] | str | Path | None = None,
    limits: Limits | None = None,
    max_batch: int = 64,
    batch_wait_ms: float = 5.0,
    review_below: float | None = 0.6,
    allowed_hosts: tuple[str, ...] | list[str] | None = None,
) -> FastAPI:
    """Build the service around a loaded model (or a model folder's path).

    ``targets``: a :class:`TargetMap`, a mapping file's path, or a dict; ``db``: the review
    database (a path, ``":memory:"`` or a :class:`ReviewStore`); ``api_keys``: a key file's path
    or a list of ``sha256:`` digests (``None``: no keys needed); ``max_batch`` and
    ``batch_wait_ms`` set the dynamic batching (``max_batch=1`` turns it off); ``review_below``
    is passed to the scoring core; ``allowed_hosts`` (``None``: any) are the host names requests
    may be addressed to (``stance serve`` on 127.0.0.1 answers to :data:`LOCAL_HOSTS` only, so a
    web page cannot reach the desk through DNS rebinding).
    """
    if isinstance(model, (str, Path)):
        from ..persist import load_model

        model_dir = Path(model)
        model = load_model(model_dir)
    model_dir = Path(model_dir) if model_dir is not None else None
    limits = limits or Limits()
    store = db if isinstance(db, ReviewStore) else ReviewStore(db)
    target_map = targets if isinstance(targets, TargetMap) else (
        TargetMap(mapping=targets) if isinstance(targets, dict) else TargetMap(targets))
    if isinstance(api_keys, (str, Path)):
        api_keys = read_key_file(api_keys)
    check_key = KeyCheck(api_keys) if api_keys else None
    info = _model_info(model, model_dir)
    labels = info["labels"]
    model_ref = {"name": info["name"], "version": info["version"]}
    scorer = Scorer(model, targets=target_map, review_below=review_below, store=store)
    batcher = Batcher(scorer, max_batch=max_batch, wait_ms=batch_wait_ms)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        yield
        batcher.close()

    app = FastAPI(
        lifespan=lifespan,
        title="stance",
        version=__version__,
        description="Scores the stance of reader comments toward a pact, and a review desk for moderators. "
                    "Every error is a JSON object {error: {status, message, hint}}.",
        openapi_tags=[{"name": "scoring"}, {"name": "review"}, {"name": "service"}],
        docs_url=None, redoc_url=None,  # their pages load scripts from a CDN; the schema is at /openapi.json
    )
    app.state.store, app.state.batcher, app.state.scorer, app.state.targets = store, batcher, scorer, target_map
    app.state.model_info, app.state.limits = info, limits
    app.add_middleware(_BodyLimit, limits=limits, allowed_hosts=tuple(allowed_hosts) if allowed_hosts else None)

    # -- errors: always one JSON shape, a 4xx a person can act on, never a traceback ---------------
    def error(status: int, message: str, hint: str | None = None) -> JSONResponse:
        return JSONResponse({"error": {"status": status, "message": _printable(message), "hint": _printable(hint)}},
                            status_code=status)

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError):
        return error(exc.status, exc.message, exc.hint)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError):
        problems = exc.errors()
        first = problems[0] if problems else {"loc": (), "msg": "invalid request"}
        if first.get("type") == "json_invalid":
            return error(422, f"the body is not valid JSON ({first.get('ctx', {}).get('error', 'syntax error')})",
                         "send a JSON object such as {\"comments\": [{\"text\": \"...\"}]}")
        where = _where(tuple(first.get("loc", ())))
        kind = first.get("type", "")
        if kind == "string_pattern_mismatch" and first.get("ctx", {}).get("pattern") == r"\S":
            message = f"{where}: is blank"
        elif where == "request body" and kind in ("model_attributes_type", "dict_type"):
            return error(422, "the body is not a JSON object",
                         "send JSON with the header Content-Type: application/json")
        else:
            message = f"{where}: {first.get('msg', 'invalid')}"
        if len(problems) > 1:
            message += f" (and {len(problems) - 1} more problem{'s' if len(problems) > 2 else ''})"
        return error(422, message, f"see the request schema at {request.scope.get('root_path', '')}/openapi.json")

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException):
        hints = {404: "see /openapi.json for the endpoints", 405: "see /openapi.json for the methods each endpoint takes"}
        return error(exc.status_code, str(exc.detail), hints.get(exc.status_code))

    @app.exception_handler(StanceError)
    async def _stance(request: Request, exc: StanceError):
        return error(422 if isinstance(exc, DataError) else 500, exc.message, exc.hint)

    @app.exception_handler(Exception)
    async def _bug(request: Request, exc: Exception):
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        return error(500, "the server failed on this request", "this is a bug; the server log has the details")

    # -- keys --------------------------------------------------------------------------------------
    header_key = APIKeyHeader(name="X-API-Key", auto_error=False,
                              description="Needed when the server was started with --api-key-file.")

    async def require_key(request: Request, key: Optional[str] = Depends(header_key)) -> None:
        # async: a plain def would send every request through a worker thread for a dictionary lookup
        if check_key is None:
            return
        if key is None:
            auth = request.headers.get("authorization", "")
            if auth.lower().startswith("bearer "):
                key = auth[7:].strip()
        if not check_key(key):
            raise ApiError(401, "a valid API key is needed" if key else "no API key given",
                           "send it in the X-API-Key header (ask the desk's administrator for one)")

    keyed = [Depends(require_key)]

    # -- scoring -----------------------------------------------------------------------------------
    text_field = Field(min_length=1, max_length=limits.max_chars, pattern=r"\S",
                       description=f"The comment (at most {limits.max_chars:,} characters).")
    short = dict(max_length=1000)

    class CommentIn(BaseModel):
        model_config = ConfigDict(extra="forbid")
        id: Optional[str] = Field(None, min_length=1, description="Your id for the comment (needed to queue it; "
                                                                  "one is made up when missing).", **short)
        text: str = text_field
        target: Optional[str] = Field(None, description="The pact, or the article's title (mapped to a target).",
                                      **short)
        article_id: Optional[str] = Field(None, description="The article or thread (mapped to a target).", **short)
        parent_id: Optional[str] = Field(None, description="The id of the comment this one replies to.", **short)
        parent_text: Optional[str] = Field(None, max_length=limits.max_chars,
                                           description="The text of the comment this one replies to.")
        author: Optional[str] = Field(None, **short)

    class ScoreRequest(BaseModel):
        model_config = ConfigDict(extra="forbid")
        comments: list[CommentIn] = Field(min_length=1, max_length=limits.max_comments,
                                          description=f"1 to {limits.max_comments} comments.")

    async def score(request: ScoreRequest, *, queue: bool) -> list[dict[str, Any]]:
        records = [c.model_dump() for c in request.comments]
        if queue:
            ids = [r["id"] for r in records]
            seen = set()
            for i, key in enumerate(ids):
                if key is None:
                    records[i]["id"] = key = "c-" + os.urandom(8).hex()
                if key in seen:
                    raise ApiError(422, f"comments[{i}].id: '{key}' appears twice in this request",
                                   "give every comment its own id")
                seen.add(key)
        results = await batcher.submit(records)
        if queue:
            rows = [{**r, "source": "api", "model": model_ref["version"]} for r in results]
            await run_in_threadpool(store.add, rows)  # committed to disk before the answer, off the event loop
        return results

    def public(results: list[dict[str, Any]]) -> dict[str, Any]:
        keep = set(Score.model_fields)
        return {"model": model_ref, "results": [{k: v for k, v in r.items() if k in keep} for r in results]}

    @app.post("/v1/score", response_model=ScoreResponse, tags=["scoring"], dependencies=keyed, responses=_ERRORS)
    async def score_comments(request: ScoreRequest) -> dict[str, Any]:
        """Score one or many comments: label, confidence, one probability per label, and the review flags."""
        return public(await score(request, queue=False))

    @app.post("/v1/queue", response_model=ScoreResponse, tags=["review"], dependencies=keyed, responses=_ERRORS)
    async def queue_comments(request: ScoreRequest) -> dict[str, Any]:
        """Score comments and put them on the review queue (a known id is scored again; its decision stays)."""
        return public(await score(request, queue=True))

    @app.post("/v1/upload", response_model=UploadResponse, tags=["review"], dependencies=keyed,
              responses={**_ERRORS, 415: {"model": ErrorResponse}},
              openapi_extra={"requestBody": {"required": True, "content": {
                  "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}}})
    async def upload(request: Request,
                     filename: str = Query(min_length=1, max_length=255, pattern=r"\S",
                                           description="The file's name; its extension tells the format."),
                     format: Optional[Literal[INPUT_FORMATS]] = Query(None, description="Force the format.")
                     ) -> dict[str, Any]:
        """Queue every comment of an export in any format `stance predict` reads (the file is the body).
        Rows that cannot be scored are kept and listed as errors."""
        kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if kind in _FORM_TYPES:  # what a cross-site form may send without asking: never accepted
            raise ApiError(415, f"an upload with Content-Type '{kind}' is refused",
                           "send the file's bytes with Content-Type: application/octet-stream")
        name = Path(filename.replace("\\", "/")).name or "upload"
        suffix = "".join(c for c in Path(name).suffix.lower() if c.isalnum() or c == ".")[:12]
        handle, path = tempfile.mkstemp(prefix="stance-upload-", suffix=suffix)
        try:
            size = 0
            with os.fdopen(handle, "wb") as out:
                async for part in request.stream():
                    size += len(part)
                    if size > limits.max_upload_bytes:
                        raise ApiError(413, f"the upload is over the limit of {limits.max_upload_bytes:,} bytes",
                                       "split the file, or start the server with a larger --max-upload-bytes")
                    out.write(part)
            if size == 0:
                raise ApiError(422, f"{name}: the upload is empty", "send the file's bytes as the request body")
            try:
                return await _ingest(Path(path), name, format)
            except StanceError as exc:
                raise ApiError(422, exc.message.replace(path, name), exc.hint) from None
        finally:
            Path(path).unlink(missing_ok=True)

    async def _ingest(path: Path, name: str, format: str | None) -> dict[str, Any]:
        """Score and store an export chunk by chunk; API requests get the model between chunks."""
        from ..readers import detect_format

        fmt = await run_in_threadpool(detect_format, path, format)
        chunks = read_chunks(path, format=fmt, chunk_size=UPLOAD_CHUNK, max_chars=limits.max_chars)
        rows = errors = 0
        first_errors: list[str] = []
        while True:
            try:
                chunk = await run_in_threadpool(next, chunks, None)
            except StanceError as exc:
                if rows:  # a file broken further down: say what was queued before the break
                    exc.message += f" (the {rows:,} rows before it were queued; fix the file and upload it again)"
                raise
            if chunk is None:
                break
            records = [{field: chunk.columns[field][i] for field in chunk.columns} for i in range(len(chunk))]
            for record in records:
                record["id"] = None if record.get("id") is None else str(record["id"])
            results = await batcher.call(scorer, records, chunk.errors, chunk.lines)
            for result, line in zip(results, chunk.lines):
                if result["id"] is None:
                    result["id"] = f"{name}:{chunk.unit}-{line}"
                if result["error"]:
                    errors += 1
                    if len(first_errors) < 5:
                        first_errors.append(result["error"])
            await run_in_threadpool(store.add, [{**r, "source": name, "model": model_ref["version"]} for r in results])
            rows += len(chunk)
        return {"file": name, "format": fmt, "rows": rows, "scored": rows - errors, "errors": errors,
                "first_errors": first_errors}

    # -- the review desk -----------------------------------------------------------------------------
    Status = Literal[(*STATUSES, "decided", "all")]

    def queue_page(status: str, article: Optional[str], label: Optional[str], limit: int, offset: int) -> dict:
        items, total = store.queue(status=status, article=article or None, label=label or None,
                                   limit=limit, offset=offset)
        return {"total": total, "items": items}

    queue_params = dict(
        status=Query("pending", description="pending, accepted, corrected, error, decided or all"),
        article=Query(None, max_length=1000, description="Only this article or thread id."),
        label=Query(None, max_length=200, description="Only this label (the decided one where there is one)."),
        limit=Query(50, ge=1, le=500), offset=Query(0, ge=0, le=10**9),
    )

    @app.get("/v1/queue", response_model=QueueResponse, tags=["review"], dependencies=keyed, responses=_ERRORS)
    def get_queue(status: Status = queue_params["status"], article: Optional[str] = queue_params["article"],
                  label: Optional[str] = queue_params["label"], limit: int = queue_params["limit"],
                  offset: int = queue_params["offset"]) -> dict[str, Any]:
        """The review queue, least confident first."""
        return queue_page(status, article, label, limit, offset)

    @app.post("/v1/decisions", response_model=QueueItem, tags=["review"], dependencies=keyed,
              responses={**_ERRORS, 404: {"model": ErrorResponse}})
    def decide(decision: DecisionIn) -> dict[str, Any]:
        """Accept the model's label (no `label`) or set another; stored on disk before the answer."""
        if decision.label is not None and decision.label not in labels:
            raise ApiError(422, f"label: '{decision.label}' is not one of the model's labels",
                           f"use one of: {', '.join(labels)}")
        try:
            return store.decide(decision.id, decision.label)
        except KeyError:
            raise ApiError(404, f"no comment with id '{decision.id}' on the desk", "queue it first") from None
        except ValueError as exc:
            raise ApiError(422, f"comment '{decision.id}' could not be scored ({exc})",
                           "fix the row in the export and upload it again") from None

    @app.get("/v1/counts", tags=["review"], dependencies=keyed, responses=_ERRORS)
    def counts() -> dict[str, Any]:
        """Per article: comments per stance (decided label where there is one), pending, decided, errors."""
        return {"labels": labels, "articles": store.counts(), "summary": store.summary()}

    @app.get("/v1/export", tags=["review"], dependencies=keyed, response_class=StreamingResponse,
             responses={**_ERRORS, 200: {"content": {"application/x-ndjson": {"schema": {"type": "string"}}},
                                         "description": "JSON lines that `stance train --data FILE` reads."}})
    def export(only: Literal["decided", "corrected"] = Query(
            "decided", description="decided: every accepted or corrected comment; corrected: only changed labels")):
        """The moderators' decisions as a training file (JSON lines: id, text, label, target, article_id...)."""
        lines = [json.dumps(training_record(r), ensure_ascii=False) + "\n"
                 for r in store.decided(only_corrected=only == "corrected")]
        return StreamingResponse(iter(lines), media_type="application/x-ndjson",
                                 headers={"Content-Disposition": 'attachment; filename="stance-decisions.jsonl"'})

    # -- targets -----------------------------------------------------------------------------------
    def targets_body() -> dict[str, Any]:
        return {"mapping": dict(sorted(target_map.mapping.items())),
                "file": str(target_map.path) if target_map.path else None}

    @app.get("/v1/targets", response_model=TargetsResponse, tags=["review"], dependencies=keyed, responses=_ERRORS)
    def get_targets() -> dict[str, Any]:
        """The mapping from article/thread ids and titles to targets."""
        return targets_body()

    @app.put("/v1/targets", response_model=TargetsResponse, tags=["review"], dependencies=keyed, responses=_ERRORS)
    def put_targets(mapping: dict[str, str] = Body(description='{"article id or title": "target"}')) -> dict[str, Any]:
        """Replace the mapping (written to the --targets file); applies to comments scored from now on."""
        try:
            target_map.replace(mapping)
        except DataError as exc:
            raise ApiError(422, exc.message, exc.hint) from None
        return targets_body()

    # -- service -----------------------------------------------------------------------------------
    @app.get("/healthz", tags=["service"])
    def healthz() -> dict[str, str]:
        """The process is up."""
        return {"status": "ok"}

    @app.get("/readyz", tags=["service"], responses={503: {"model": ErrorResponse}})
    def readyz() -> Any:
        """The model is loaded and the review database answers."""
        try:
            store.ping()
        except Exception as exc:  # noqa: BLE001 - any database failure means not ready
            return error(503, f"the review database does not answer ({exc})", "check the --db file and its disk")
        return {"ready": True, "model": model_ref}

    @app.get("/v1/model", tags=["service"], dependencies=keyed, responses=_ERRORS)
    def model_info() -> dict[str, Any]:
        """Labels, version, training-data hash and the metrics stored in the model folder."""
        return {**info, "review_below": review_below, "batching": batcher.stats(), "limits": asdict(limits)}

    # -- pages and their JSON twins ----------------------------------------------------------------
    templates = {name: Template((HERE / "templates" / f"{name}.html").read_text(encoding="utf-8"))
                 for name in ("review", "targets")}

    def page(name: str) -> HTMLResponse:
        html = templates[name].substitute(asset=ASSET_VERSION, version=__version__,
                                          model=escape(f"{info['name']} {info['version']}"))
        return HTMLResponse(html, headers={"Cache-Control": "no-cache"})

    @app.get("/", include_in_schema=False)
    def root() -> RedirectResponse:
        return RedirectResponse("review")

    @app.get("/review", include_in_schema=False)
    def review_page() -> HTMLResponse:
        return page("review")

    @app.get("/review.json", tags=["review"], dependencies=keyed, responses=_ERRORS)
    def review_json(status: Status = queue_params["status"], article: Optional[str] = queue_params["article"],
                    label: Optional[str] = queue_params["label"], limit: int = queue_params["limit"],
                    offset: int = queue_params["offset"]) -> dict[str, Any]:
        """Everything the review page shows: the queue, the counts, the model, the latest error rows."""
        errors, error_total = store.queue(status="error", limit=20)
        return {"model": model_ref, "labels": labels, "review_below": review_below,
                "filters": {"status": status, "article": article, "label": label, "limit": limit, "offset": offset},
                "queue": queue_page(status, article, label, limit, offset),
                "articles": store.counts(), "summary": store.summary(),
                "errors": {"total": error_total, "items": errors}, "keys_required": check_key is not None}

    @app.get("/targets", include_in_schema=False)
    def targets_page() -> HTMLResponse:
        return page("targets")

    @app.get("/targets.json", response_model=TargetsResponse, tags=["review"], dependencies=keyed,
             responses=_ERRORS)
    def targets_json() -> dict[str, Any]:
        """The target mapping the targets page edits."""
        return targets_body()

    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")

    return app
