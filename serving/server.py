"""``ldnet-serve MODEL_DIR``: an HTTP API (FastAPI + uvicorn) over ``pipeline("universal-ie")``.

    ldnet-serve runs/demo/model --port 8000 [--backend torch|onnx|onnx-int8] [--max-wait-ms 5] [--api-key KEY]
    curl -s localhost:8000/extract -H 'content-type: application/json' \\
         -d '{"text": "Jerry Smith lives in New York .", "schema": {"ent": ["people", "location"]}}'

Endpoints: ``POST /extract`` (one text, many texts or unified records + schema / instruction / threshold),
``GET /health`` (queue length and queue time), ``GET /info`` (the model card: schemas trained on, metrics,
configuration); OpenAPI at ``/docs`` and ``/redoc``, served with their assets from this process (no CDN).
Concurrent requests share forward passes of at most ``--max-batch-size`` windows, built round-robin over the
waiting requests (:mod:`serving.batching`), so a short request is never queued behind all of a long one. Every
request is checked against the limits (text length, texts per request, schema size, work budget) and answered
413 / 422 naming the field; a request whose client disconnects is dropped from the queue. A request can change
nothing shared (options are per call). ``SIGTERM`` / Ctrl-C stop taking connections and finish the requests in
flight before the process exits.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import secrets
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass
from typing import Annotated, Any, Literal

from fastapi import Depends, FastAPI, HTTPException, Request, Response, Security
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from fastapi.security import APIKeyHeader
from fastapi_offline import FastAPIOffline
from pydantic import BaseModel, ConfigDict, Discriminator, Field, StrictBool, Tag, model_validator

# Only light imports up here: ``ldnet-serve --help`` must not load torch / transformers (they load in main()).

logger = logging.getLogger(__name__)

API_KEY_HEADER = "X-API-Key"
API_KEY_ENV = "LDNET_API_KEY"
#: ``serving.backends.BACKENDS`` (a test checks they agree): importing that module would load torch before --help
BACKENDS = ("torch", "onnx", "onnx-int8")
#: the tag tokens of ``modeling_ldnet.configuration_ldnet.DEFAULT_SPECIAL_TOKENS`` and the encoder's own specials;
#: a label spelled like one reads like a tag to a person, never to the model (the processor splits them), so it is
#: refused. ``create_app`` adds the served processor's and tokenizer's.
RESERVED_LABELS = ("[LC]", "[LM]", "[LR]", "[I]", "[TL]", "[TP]", "[B]", "[CLS]", "[SEP]", "[PAD]", "[MASK]", "[UNK]")
#: how often a waiting request checks whether its client is still connected (seconds)
DISCONNECT_POLL_S = 0.25
#: answered to a client that has gone (nginx's convention; nobody reads it)
CLIENT_CLOSED_REQUEST = 499


@dataclass(frozen=True)
class Limits:
    """Per-request limits (answered 413 naming the field)."""

    max_text_chars: int = 20_000  # text, bg and instruction, each (longer texts are windowed, but cost grows)
    max_texts: int = 64  # texts or records per request
    max_schema_labels: int = 200  # labels in one schema, event / hyper-relation roles included
    max_label_chars: int = 200
    #: work budget in token-labels: per record, text tokens x schema labels, summed over the request's records.
    #: 4M admits 64 texts of 20,000 characters (~4,250 tokens each) with the CoNLL04 schema (9 labels: ~2.45M)
    max_request_cost: int = 4_000_000


@dataclass(frozen=True)
class ServerSettings:
    limits: Limits = Limits()
    max_wait_ms: float = 5.0
    max_batch_size: int = 8  # windows per forward pass (CPU: small passes keep short requests fast, RESULTS §12)
    batching: bool = True
    api_key: str | None = None


# -- API models --------------------------------------------------------------------------------------------
# strict: JSON `"yes"` / `"0.5"` are type errors, not coerced to true / 0.5
_STRICT = ConfigDict(extra="forbid", strict=True, populate_by_name=True)
Labels = list[str] | dict[str, str | None]


class NamedLabels(BaseModel):
    """The list form of ``event`` / ``hyper_rel`` entries (as ``processing`` stores them in ``datasets``)."""

    model_config = _STRICT

    name: str
    labels: list[str] = Field(default_factory=list)


class LabelDescription(BaseModel):
    """One label's description in the list form ``processing`` stores (``schema.descriptions`` in ``datasets``)."""

    model_config = _STRICT

    task: str
    label: str
    description: str | None = None


class RelationArgs(BaseModel):
    """A relation's argument types (and description): only relations whose head / tail carry one are emitted when
    entities are extracted in the same request."""

    model_config = _STRICT

    head: list[str] | None = None
    tail: list[str] | None = None
    description: str | None = None


class Schema(BaseModel):
    """What to extract. Labels are free strings (the model reads them), e.g. ``{"ent": ["person"], "rel":
    ["live in"], "event": {"attack": ["attacker", "target"]}}``; an empty schema + instruction is extractive QA.
    ``cls`` / ``ent`` / ``discontinuous_ent`` / ``rel`` may also be ``{label: description}`` dicts (GLiNER2's
    convention; ``null`` for a label without one)."""

    model_config = _STRICT

    cls: Labels | None = Field(None, description="class labels (text classification)")
    ent: Labels | None = Field(None, description="entity types")
    discontinuous_ent: Labels | None = Field(None, description="discontinuous entity types")
    rel: list[str] | dict[str, str | RelationArgs | None] | None = Field(
        None, description="relation types; `{relation: {head: [types], tail: [types]}}` declares argument types")
    hyper_rel: dict[str, list[str]] | list[NamedLabels] | None = Field(
        None, description="relation -> qualifier roles (or the list form `[{name, labels}]`)")
    event: dict[str, list[str]] | list[NamedLabels] | None = Field(
        None, description="event type -> argument roles (or the list form `[{name, labels}]`)")
    descriptions: list[LabelDescription] | None = Field(
        None, description="label descriptions in the list form `[{task, label, description}]` (as `processing` "
        "stores them)")


class EntityConfig(BaseModel):
    """A GLiNER2 entity type's settings."""

    model_config = _STRICT

    description: str | None = None
    threshold: float | None = Field(None, ge=0.0, le=1.0, description="this type's own threshold")
    dtype: Literal["list", "str"] | None = Field(None, description="'str': the best mention only")


class RelationConfig(BaseModel):
    """A GLiNER2 relation type's settings."""

    model_config = _STRICT

    description: str | None = None
    threshold: float | None = Field(None, ge=0.0, le=1.0)


class ClassificationIn(BaseModel):
    """A GLiNER2 classification task."""

    model_config = _STRICT

    task: str
    labels: Labels
    multi_label: StrictBool = False
    cls_threshold: float | None = Field(None, ge=0.0, le=1.0)
    label_descriptions: dict[str, str] | None = None
    top_k: int | None = Field(None, ge=1, description="at most this many classes (multi-label)")


class Gliner2Schema(BaseModel):
    """GLiNER2's schema dict (docs/gliner2.md): ``entities`` / ``relations`` (a list, or type -> description /
    settings) and ``classifications``; ``structures`` are refused (not supported by LDNet yet)."""

    model_config = _STRICT

    entities: list[str] | dict[str, str | EntityConfig | None] | None = None
    relations: list[str] | dict[str, str | RelationConfig | None] | None = None
    classifications: list[ClassificationIn] | None = None
    structures: dict[str, Any] | None = Field(None, description="not supported yet: refused (422)")
    entity_attributes: dict[str, Any] | None = Field(None, description="not supported yet: refused (422)")


#: the keys that make a schema GLiNER2's (``modeling_ldnet.gliner2_ldnet.GLINER2_KEYS``, not imported before --help)
GLINER2_SCHEMA_KEYS = ("entities", "relations", "classifications", "structures", "entity_attributes")


def _schema_kind(value: Any) -> str:
    if isinstance(value, Gliner2Schema):
        return "gliner2"
    if isinstance(value, dict) and value and set(value) <= set(GLINER2_SCHEMA_KEYS):
        return "gliner2"
    return "ldnet"


#: an LDNet schema or a GLiNER2 one, told apart by its keys (errors then name the fields of the right model)
AnySchema = Annotated[Annotated[Schema, Tag("ldnet")] | Annotated[Gliner2Schema, Tag("gliner2")],
                      Discriminator(_schema_kind)]


class RecordIn(BaseModel):
    """A unified record (``schema`` / ``instruction`` default to the request's)."""

    model_config = _STRICT

    id: str | int | None = None
    text: str
    schema_: AnySchema | None = Field(None, alias="schema")
    instruction: str | None = None
    bg: str = ""


class ExtractRequest(BaseModel):
    """Exactly one of ``text``, ``texts`` or ``records``."""

    model_config = ConfigDict(
        **_STRICT,
        json_schema_extra={
            "examples": [
                {
                    "text": "John Smith works for Acme Corp in Boston .",
                    "schema": {"ent": ["location", "organization", "people", "other"],
                               "rel": ["kill", "live in", "located in", "organization in", "work for"]},
                }
            ]
        },
    )

    text: str | None = None
    texts: list[str] | None = None
    records: list[RecordIn] | None = None
    schema_: AnySchema | None = Field(None, alias="schema")
    instruction: str | None = Field(
        None, description="None: a paper-style instruction from the schema; '' for none; for QA, the question"
    )
    bg: str | None = Field(None, description="background / second segment for `text` / `texts`")
    threshold: float | None = Field(None, gt=0.0, lt=1.0, description="decoding threshold (default: the model's)")
    return_scores: StrictBool = True
    return_rejected: int = Field(0, ge=0, le=100, description="also return the k best candidates the threshold "
                                 "turned down (`rejected`, with scores)")
    output_format: Literal["ldnet", "gliner2"] = Field(
        "ldnet", description="'gliner2': GLiNER2's result dict per input (docs/gliner2.md)")
    include_confidence: StrictBool = Field(False, description="with output_format 'gliner2': confidences")
    include_spans: StrictBool = Field(False, description="with output_format 'gliner2': character offsets")
    adapter: str | None = Field(None, description="a LoRA adapter served with --adapter NAME=PATH (default: the base)")

    @model_validator(mode="after")
    def _one_input(self) -> ExtractRequest:
        given = [n for n in ("text", "texts", "records") if getattr(self, n) is not None]
        if len(given) != 1:
            raise ValueError(f"give exactly one of `text`, `texts`, `records` (got {given or 'none'})")
        return self


class ExtractResponse(BaseModel):
    results: list[dict[str, Any]] = Field(description="one unified `ans` dict (or GLiNER2 result dict) per input")
    backend: str
    warnings: list[str] = Field(default_factory=list, description="what the pipeline reported about this request "
                                "(labels the model never saw in training, partial answers, ...)")


class QueueStats(BaseModel):
    pending_requests: int = Field(description="requests queued or running")
    pending_windows: int = Field(description="windows (rows of work) not run yet")
    oldest_pending_s: float = Field(description="age of the oldest unanswered request")
    wait_p50_s: float | None = Field(description="median wait, submit -> first forward pass, of recent requests")
    wait_p95_s: float | None
    waits_counted: int


class HealthResponse(BaseModel):
    status: str
    backend: str
    pending: int
    queue: QueueStats


class InfoResponse(BaseModel):
    model: str
    backend: str
    card: dict[str, Any] = Field(description="model card information: schema(s) trained on, training data, metrics")
    config: dict[str, Any]
    limits: dict[str, Any]
    batching: dict[str, Any]
    adapters: dict[str, Any] | None = Field(None, description="--adapter: the base, adapters loaded, failed ones")


class ErrorResponse(BaseModel):
    detail: list[dict[str, Any]] | str


# -- request -> records -------------------------------------------------------------------------------------
def _too_large(loc: list, msg: str) -> HTTPException:
    return HTTPException(status_code=413, detail=[{"loc": ["body", *loc], "msg": msg, "type": "limit_exceeded"}])


def _invalid(loc: list, msg: str) -> HTTPException:
    return HTTPException(status_code=422, detail=[{"loc": ["body", *loc], "msg": msg, "type": "value_error"}])


def _check_text(value: str | None, loc: list, limits: Limits) -> None:
    if value is not None and len(value) > limits.max_text_chars:
        raise _too_large(loc, f"{len(value)} characters; the limit is {limits.max_text_chars} (--max-text-chars)")


def _labels_of(task: str, value: Any) -> list[tuple[str, str, str]]:
    """``(label, where, list it belongs to)`` of one schema task (event / hyper_rel: names, then roles per name)."""
    if task in ("event", "hyper_rel"):
        out = [(name, f"{task}.{name}", task) for name in value]
        out += [(role, f"{task}.{name}[{i}]", f"{task}.{name}") for name, roles in value.items()
                for i, role in enumerate(roles)]
        return out
    return [(x, f"{task}[{i}]", task) for i, x in enumerate(value)]


def _gliner2_schema_dict(schema: Gliner2Schema, loc: list, limits: Limits, reserved: tuple[str, ...]) -> dict[str, Any]:
    """A GLiNER2 schema for the pipeline, after ``gliner2_ldnet``'s checks (422 naming the key path) and the label
    limits (count, length, tag-like spellings)."""
    from modeling_ldnet.gliner2_ldnet import parse_gliner2_schema

    out = schema.model_dump(exclude_none=True)
    try:
        plan = parse_gliner2_schema(out)
    except ValueError as exc:
        raise _invalid(loc, str(exc)) from None
    labels = [(lab, f"entities.{lab}") for lab in plan.entities] + [(lab, f"relations.{lab}") for lab in plan.relations]
    labels += [(lab, f"classifications.{t.name}.{lab}") for t in plan.tasks for lab in t.labels]
    if len(labels) > limits.max_schema_labels:
        raise _too_large(loc, f"{len(labels)} labels; the limit is {limits.max_schema_labels} (--max-schema-labels)")
    reserved_upper = {r.upper() for r in reserved}
    for label, where in labels:
        if len(label) > limits.max_label_chars:
            raise _too_large(loc, f"label {where} has {len(label)} characters; the limit is {limits.max_label_chars}")
        tag = next((r for r in reserved_upper if r in label.upper()), None)
        if tag is not None:
            raise _invalid(loc, f"label {label!r} at {where} is spelled like the special token {tag}; rename it")
    return out


def _schema_dict(schema: Schema | Gliner2Schema, loc: list, limits: Limits, reserved: tuple[str, ...]) -> dict[str, Any]:
    """The schema for the pipeline, after the checks: label lists not all empty, no empty / duplicate /
    tag-like labels, label length and count limits. ``{label: description}`` dicts pass through as given."""
    if isinstance(schema, Gliner2Schema):
        return _gliner2_schema_dict(schema, loc, limits, reserved)
    out = schema.model_dump(exclude_none=True)
    descriptions = out.pop("descriptions", None)
    for task in ("hyper_rel", "event"):
        if isinstance(out.get(task), list):  # list form -> the SPEC's dict form
            names = [x["name"] for x in out[task]]
            dup = sorted({x for x in names if names.count(x) > 1})
            if dup:
                raise _invalid([*loc, task], f"{task}: duplicate names {dup}")
            out[task] = {x["name"]: x["labels"] for x in out[task]}
    if out and not any(out.values()):
        # `{"ent": []}` asks for nothing; `processing`'s records hold [] for the tasks they lack, beside real ones
        first = next(iter(out))
        raise _invalid([*loc, first], f"`{first}` is an empty label list and the schema asks for nothing else; give "
                       "labels (or an empty schema {} with the question as `instruction` for extractive QA)")
    reserved_upper = {r.upper() for r in reserved}
    n = 0
    for task, value in out.items():
        seen: dict[tuple[str, str], str] = {}
        for label, where, group in _labels_of(task, value):
            n += 1
            if not label.strip():
                raise _invalid([*loc, task], f"empty label at {where}")
            if len(label) > limits.max_label_chars:
                raise _too_large([*loc, task], f"label {where} has {len(label)} characters; the limit is "
                                 f"{limits.max_label_chars}")
            tag = next((r for r in reserved_upper if r in label.upper()), None)
            if tag is not None:
                raise _invalid([*loc, task], f"label {label!r} at {where} is spelled like the special token {tag}; "
                               "rename it")
            if (group, label) in seen:
                raise _invalid([*loc, task], f"duplicate label {label!r} at {where} (also {seen[(group, label)]})")
            seen[(group, label)] = where
            desc = value.get(label) if task not in ("event", "hyper_rel") and isinstance(value, dict) else None
            if isinstance(desc, dict):  # typed relation arguments (checked by the pipeline's schema normaliser)
                desc = desc.get("description")
            if desc is not None and not desc.strip():
                raise _invalid([*loc, task], f"empty description of label {label!r} at {where}; use null for a "
                               "label without one")
    if n > limits.max_schema_labels:
        raise _too_large(loc, f"{n} labels; the limit is {limits.max_schema_labels} (--max-schema-labels)")
    for i, d in enumerate(descriptions or []):
        if d["description"] is not None and not d["description"].strip():
            raise _invalid([*loc, "descriptions", i], f"empty description of label {d['label']!r}; use null for a "
                           "label without one")
    if descriptions:  # checked further (tasks, labels) by the pipeline's schema normaliser
        out["descriptions"] = descriptions
    return out


def to_records(req: ExtractRequest, limits: Limits, reserved: tuple[str, ...] = RESERVED_LABELS) -> list[dict]:
    """The pipeline records for ``req`` (each carries its schema and instruction), after the limit checks."""
    schema = _schema_dict(req.schema_, ["schema"], limits, reserved) if req.schema_ is not None else None
    _check_text(req.instruction, ["instruction"], limits)
    _check_text(req.bg, ["bg"], limits)
    for name in ("include_confidence", "include_spans"):
        if getattr(req, name) and req.output_format != "gliner2":
            raise _invalid([name], f"`{name}` goes with output_format 'gliner2'")
    field = "records" if req.records is not None else "texts"
    items: list[Any] = req.records if req.records is not None else (req.texts if req.texts is not None else [req.text])
    if not items:
        raise _invalid([field], "no inputs")
    if len(items) > limits.max_texts:
        raise _too_large([field], f"{len(items)} inputs; the limit is {limits.max_texts} (--max-texts)")
    records = []
    for i, item in enumerate(items):
        loc = [field, i] if req.text is None else ["text"]
        where = f"{field}[{i}]" if req.text is None else "text"
        if isinstance(item, RecordIn):
            _check_text(item.text, [*loc, "text"], limits)
            _check_text(item.instruction, [*loc, "instruction"], limits)
            _check_text(item.bg, [*loc, "bg"], limits)
            rec_schema = (_schema_dict(item.schema_, [*loc, "schema"], limits, reserved) if item.schema_ is not None
                          else schema)
            rec = {"id": item.id if item.id is not None else where, "text": item.text, "bg": item.bg,
                   "schema": rec_schema, "instruction": item.instruction if item.instruction is not None
                   else req.instruction}
        else:
            _check_text(item, loc, limits)
            rec = {"id": where, "text": item, "bg": req.bg or "", "schema": schema, "instruction": req.instruction}
        if rec["schema"] is None and not rec["instruction"]:
            raise _invalid(["schema"], f"{where}: no schema (give `schema`, or a question as `instruction` for QA)")
        if not rec["schema"] and not rec["instruction"]:
            raise _invalid(["schema"], f"{where}: the schema is empty; extractive QA needs the question as "
                           "`instruction`")
        records.append({k: v for k, v in rec.items() if v is not None})
    return records


def report_warnings(report: Any, answers: list[dict]) -> list[str]:
    """What the pipeline's encoding report and the answers say about a request, as sentences for the response."""
    out = []
    unseen = getattr(report, "unseen_labels", None) or {}
    if unseen:
        out.append("labels the model never saw in training (expect weaker answers): "
                   + "; ".join(f"{task}: {labels}" for task, labels in unseen.items()))
    cut = getattr(report, "descriptions_cut", 0)
    if cut:
        out.append(f"{cut} label description(s) cut to the processor's max_description_tokens")
    if getattr(report, "split_records", 0):
        out.append(f"{report.split_records} record(s) with a schema too large for one pass: run as "
                   f"{report.schema_passes} label-group passes")
    partial = [i for i, a in enumerate(answers) if a.get("decode_truncated")]
    if partial:
        out.append(f"answers {partial} are partial: the decode step budget ran out (flagged decode_truncated)")
    return out


# -- app ---------------------------------------------------------------------------------------------------
class Utf8JsonRoute(APIRoute):
    """Refuses a body that is not UTF-8 with a 400 that says so (FastAPI's own answer names nothing)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def route(request: Request) -> Response:
            body = await request.body()  # cached on the request: FastAPI's parsing reads the same bytes
            try:
                body.decode("utf-8")
            except UnicodeDecodeError as exc:
                msg = (f"the request body is not UTF-8 (byte 0x{body[exc.start]:02x} at position {exc.start}); "
                       "send JSON encoded as UTF-8")
                return JSONResponse(status_code=400, content={
                    "detail": [{"loc": ["body"], "msg": msg, "type": "body_encoding"}]})
            return await handler(request)

        return route


def _jsonable(v: Any) -> Any:
    try:
        json.dumps(v)
        return v
    except (TypeError, ValueError):
        return str(v)


def model_info(pipe: Any) -> tuple[str, dict[str, Any], dict[str, Any]]:
    """(name, card information, configuration rows) of the pipeline's model, as on its model card."""
    from modeling_ldnet.modelcard_ldnet import CARD_INFO_ATTR, _config_rows

    cfg = pipe.model.config
    name = str(getattr(cfg, "_name_or_path", "") or getattr(pipe.model, "name_or_path", ""))
    card = json.loads(json.dumps(getattr(cfg, CARD_INFO_ATTR, None) or {}, default=str))
    rows = {k: _jsonable(v) for k, v in _config_rows(cfg, pipe.processor)}
    return name, card, rows


def reserved_labels(pipe: Any) -> tuple[str, ...]:
    """:data:`RESERVED_LABELS` plus the served processor's tag tokens and its tokenizer's special tokens."""
    proc = getattr(pipe, "processor", None)
    tags = list(getattr(proc, "special_tokens", {}).values())
    specials = list(getattr(getattr(proc, "tokenizer", None), "all_special_tokens", []) or [])
    return tuple(dict.fromkeys([*RESERVED_LABELS, *tags, *(s for s in specials if s.startswith("["))]))


def _adapter_error(adapters: Any, name: str) -> str:
    """The registry's message for an adapter it does not serve (unknown, or failed to load)."""
    try:
        adapters.check(name)
    except KeyError as exc:
        return str(exc)
    return f"adapter {name!r} is not served"


def create_app(pipe: Any, settings: ServerSettings | None = None, adapters: Any = None) -> FastAPI:
    """A FastAPI app serving ``pipe`` (a ``pipeline("universal-ie")``, any backend) with dynamic batching;
    ``adapters``: a ``serving.adapters.AdapterRegistry`` on the same base (requests name one in ``adapter``)."""
    from .batching import BatcherClosed, DynamicBatcher  # torch: loaded with the pipeline, after --help

    settings = settings or ServerSettings()
    limits = settings.limits
    backend = getattr(pipe, "backend", "torch")
    batcher = DynamicBatcher(
        pipe, max_wait_ms=settings.max_wait_ms, max_batch_size=settings.max_batch_size, batching=settings.batching
    )
    # one batcher per adapter: requests batch within their adapter, the registry's lock switches the one base
    adapter_batchers = {n: DynamicBatcher(adapters.pipeline(n), max_wait_ms=settings.max_wait_ms,
                                          max_batch_size=settings.max_batch_size, batching=settings.batching)
                        for n in (adapters.names if adapters is not None else [])}
    name, card, config_rows = model_info(pipe)
    reserved = reserved_labels(pipe)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        # uvicorn has finished the requests in flight; drain anything still queued, then stop the worker
        await asyncio.to_thread(batcher.close)
        for extra in adapter_batchers.values():
            await asyncio.to_thread(extra.close)

    # /docs and /redoc with Swagger UI / ReDoc assets from the fastapi-offline package (no CDN: works offline)
    app = FastAPIOffline(
        title="LDNet universal IE",
        version="1.0",
        description="Universal information extraction with LDNet (`pipeline(\"universal-ie\")`).",
        lifespan=lifespan,
    )
    app.router.route_class = Utf8JsonRoute
    app.state.batcher = batcher
    app.state.pipeline = pipe
    app.state.settings = settings

    # the key check (and its OpenAPI security scheme) exists only when the server has a key
    key_header = APIKeyHeader(name=API_KEY_HEADER, auto_error=False, description="the server's API key")

    def check_key(key: str | None = Security(key_header)) -> None:
        if not (key and secrets.compare_digest(key.encode(), str(settings.api_key).encode())):
            raise HTTPException(status_code=401, detail=f"missing or wrong {API_KEY_HEADER} header",
                                headers={"WWW-Authenticate": "APIKey"})

    guarded = [Depends(check_key)] if settings.api_key else []

    errors = {
        400: {"model": ErrorResponse, "description": "the body is not valid JSON / not UTF-8"},
        401: {"model": ErrorResponse, "description": "missing or wrong API key"},
        413: {"model": ErrorResponse, "description": "a limit exceeded (the detail names the field or the budget)"},
        422: {"model": ErrorResponse, "description": "invalid request (the detail names the field)"},
        503: {"model": ErrorResponse, "description": "shutting down"},
    }

    async def answers_or_cancel(future: Any, request: Request) -> list[dict] | None:
        """The request's answers; None (and its queued work dropped) when the client disconnects first."""
        waiter = asyncio.wrap_future(future)  # cancelling this task (shutdown) cancels the work too
        while True:
            done, _ = await asyncio.wait({waiter}, timeout=DISCONNECT_POLL_S)
            if done:
                return waiter.result()
            if await request.is_disconnected():
                batcher.cancel(future)
                return None

    @app.post("/extract", response_model=ExtractResponse, responses=errors, dependencies=guarded)
    async def extract(req: ExtractRequest, request: Request) -> ExtractResponse | Response:
        """Extract structures from one text, many texts or unified records (one answer per input)."""
        records = to_records(req, limits, reserved)
        target = batcher
        if req.adapter is not None:
            if req.adapter not in adapter_batchers:
                detail = (f"unknown adapter {req.adapter!r} (this server has no --adapter)" if adapters is None
                          else _adapter_error(adapters, req.adapter))
                raise _invalid(["adapter"], detail)
            target = adapter_batchers[req.adapter]
        if req.output_format == "gliner2" or any(_schema_kind(r.get("schema")) == "gliner2" for r in records):
            return await extract_gliner2(req, request, records, target)
        options: dict[str, Any] = {"return_scores": req.return_scores}
        if req.return_rejected:
            options["return_rejected"] = req.return_rejected
        if req.threshold is not None:
            options["threshold"] = req.threshold
        try:
            # tokenization and windows off the event loop (a 64 x 20,000-character request takes a while)
            encoded = await asyncio.to_thread(target.encode, records, **options)
        except (ValueError, TypeError) as exc:  # the pipeline's input errors (RecordError) name record and field
            raise _invalid([], str(exc)) from exc
        if encoded.cost > limits.max_request_cost:
            raise _too_large([], f"the request costs {encoded.cost:,} token-labels (text tokens x schema labels, "
                             f"summed over records): {encoded.cost - limits.max_request_cost:,} past the budget of "
                             f"{limits.max_request_cost:,} (--max-request-cost); send fewer or shorter texts or "
                             "fewer labels")
        try:
            future = target.enqueue(encoded)
        except BatcherClosed as exc:
            raise HTTPException(status_code=503, detail=str(exc)) from exc
        try:
            answers = await answers_or_cancel(future, request)
        except (ValueError, TypeError) as exc:
            raise _invalid([], str(exc)) from exc
        if answers is None:
            return Response(status_code=CLIENT_CLOSED_REQUEST)
        return ExtractResponse(results=answers, backend=backend, warnings=report_warnings(encoded.report, answers))

    async def extract_gliner2(req: ExtractRequest, request: Request, records: list[dict], target: Any
                              ) -> ExtractResponse | Response:
        """GLiNER2 schemas / output (``gliner2_ldnet``): the passes of every record, grouped by threshold, each group
        one batched job (the work budget counts them all); answers assembled per input."""
        from modeling_ldnet.encoding_ldnet import EncodingReport
        from modeling_ldnet.gliner2_ldnet import assemble_outputs, expand_inputs

        base = req.threshold if req.threshold is not None else target.pipe.processor.threshold
        try:
            plans, jobs = expand_inputs(records, None, base, single=False)
            groups = [[j for j in jobs if j[3] == thr] for thr in dict.fromkeys(j[3] for j in jobs)]
            encoded = [await asyncio.to_thread(
                target.encode, [j[2] for j in g], threshold=base if g[0][3] is None else g[0][3],
                return_scores=True, return_cls_scores=True) for g in groups]
        except (ValueError, TypeError) as exc:
            raise _invalid([], str(exc)) from exc
        cost = sum(e.cost for e in encoded)
        if cost > limits.max_request_cost:
            raise _too_large([], f"the request costs {cost:,} token-labels over its {len(jobs)} passes (text tokens x "
                             f"schema labels): {cost - limits.max_request_cost:,} past the budget of "
                             f"{limits.max_request_cost:,} (--max-request-cost)")
        try:
            futures = [target.enqueue(e) for e in encoded]
        except BatcherClosed as exc:
            raise HTTPException(status_code=503, detail=str(exc)) from exc
        results: dict[tuple[int, str], dict] = {}
        report = EncodingReport()
        for g, e, future in zip(groups, encoded, futures):
            try:
                answers = await answers_or_cancel(future, request)
            except (ValueError, TypeError) as exc:
                raise _invalid([], str(exc)) from exc
            if answers is None:
                for other in futures:
                    target.cancel(other)
                return Response(status_code=CLIENT_CLOSED_REQUEST)
            report.merge(e.report)
            results.update({(j[0], j[1]): a for j, a in zip(g, answers)})
        out = assemble_outputs(plans, results, base, req.output_format, req.include_confidence, req.include_spans)
        if req.output_format == "ldnet" and not req.return_scores:
            out = [{k: [{f: v for f, v in x.items() if f != "score"} for x in items] if k in ("ent", "rel") else items
                    for k, items in ans.items()} for ans in out]
        return ExtractResponse(results=out, backend=backend, warnings=report_warnings(report, out))

    @app.get("/health", response_model=HealthResponse)
    async def health() -> HealthResponse:
        """Liveness and the queue: pending requests / windows, the oldest one's age, recent p50 / p95 wait."""
        queue = batcher.queue_stats()
        return HealthResponse(status="ok", backend=backend, pending=queue["pending_requests"],
                              queue=QueueStats(**queue))

    @app.get("/info", response_model=InfoResponse, responses={401: errors[401]}, dependencies=guarded)
    async def info() -> InfoResponse:
        """The model card: schemas trained on, training data, metrics, configuration; and this server's limits."""
        return InfoResponse(
            model=name,
            backend=backend,
            card=card,
            config=config_rows,
            limits=asdict(limits),
            batching={"enabled": settings.batching, "max_wait_ms": settings.max_wait_ms,
                      "max_batch_size": settings.max_batch_size, **asdict(batcher.stats)},
            adapters=adapters.info() if adapters is not None else None,
        )

    @app.exception_handler(BatcherClosed)
    async def _closed(_: Request, exc: BatcherClosed) -> JSONResponse:
        return JSONResponse(status_code=503, content={"detail": str(exc)})

    @app.exception_handler(RequestValidationError)
    async def _invalid_request(_: Request, exc: RequestValidationError) -> JSONResponse:
        # FastAPI's 422, minus the tag of the schema union (``schema.ldnet.entity`` -> ``schema.entity``)
        errors = []
        for err in exc.errors():
            loc = list(err.get("loc", ()))
            loc = [x for i, x in enumerate(loc) if not (i and loc[i - 1] == "schema" and x in ("ldnet", "gliner2"))]
            errors.append({**err, "loc": loc})
        return JSONResponse(status_code=422, content={"detail": jsonable_encoder(errors)})

    return app


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="ldnet-serve", description=__doc__,
                                formatter_class=_HelpFormatter)
    p.add_argument("model", help="saved LDNet folder (pipeline.save_pretrained / trainer.save_model)")
    p.add_argument("--host", default="127.0.0.1", help="interface to listen on")
    p.add_argument("--port", type=int, default=8000, help="TCP port")
    p.add_argument("--backend", choices=BACKENDS, default="torch", help="forward pass: torch, ONNX or ONNX int8")
    p.add_argument("--onnx-dir", help="where ONNX exports are cached (default: MODEL/onnx)")
    p.add_argument("--verbose-onnxruntime", action="store_true",
                   help="keep onnxruntime's INFO / WARNING logging (quiet otherwise: the int8 quantizer logs a line "
                        "per tensor)")
    p.add_argument("--threads", type=int, default=None, help="intra-op CPU threads (torch / onnxruntime; default: "
                   "torch's choice)")
    p.add_argument("--window-stride", type=int, default=None,
                   help="overlap of long-text windows in tokens (default: the saved processor's)")
    p.add_argument("--max-wait-ms", type=float, default=ServerSettings.max_wait_ms,
                   help="how long a new request waits to share a forward pass")
    p.add_argument("--max-batch-size", type=int, default=ServerSettings.max_batch_size,
                   help="windows per forward pass (a long text is several windows; they are spread over passes)")
    p.add_argument("--no-batching", action="store_true", help="one request at a time (for comparison)")
    p.add_argument("--max-text-chars", type=int, default=Limits.max_text_chars,
                   help="characters of text, bg and instruction, each (413 beyond)")
    p.add_argument("--max-texts", type=int, default=Limits.max_texts, help="texts or records per request")
    p.add_argument("--max-schema-labels", type=int, default=Limits.max_schema_labels,
                   help="labels in one schema, event roles and qualifiers included")
    p.add_argument("--max-label-chars", type=int, default=Limits.max_label_chars, help="characters of one label")
    p.add_argument("--max-request-cost", type=int, default=Limits.max_request_cost,
                   help="work budget of one request in token-labels: text tokens x schema labels, summed over its "
                        "records (413 naming the cost beyond)")
    p.add_argument("--api-key", default=None, help=f"require this {API_KEY_HEADER} header (or set ${API_KEY_ENV})")
    p.add_argument("--graceful-timeout", type=float, default=30.0, help="seconds to finish in-flight requests")
    p.add_argument("--adapter", action="append", default=None, metavar="NAME=PATH",
                   help="also serve a LoRA adapter folder (ldnet-train --lora) of MODEL under NAME (repeatable; "
                        "requests pick it with \"adapter\"; --backend torch)")
    p.add_argument("--trust-remote-code", action="store_true", help="run the model folder's own code")
    p.add_argument("--log-level", default="info", help="uvicorn's and this server's log level")
    return p


class _HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """The module docstring as written, and every option's default in its help (those that have one)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if action.option_strings and action.default not in (None, False, argparse.SUPPRESS) and "%(default)" not in text:
            text += " (default: %(default)s)"
        return text


def main(argv: list[str] | None = None) -> None:
    a = build_parser().parse_args(argv)
    import uvicorn  # after parsing: --help stays fast

    from .backends import load_pipeline

    logging.basicConfig(level=a.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    adapters = None
    if a.adapter:  # the base loaded once, the adapters on it (serving/adapters.py)
        import torch

        from .adapters import AdapterRegistry, parse_adapter_flags

        if a.backend != "torch":
            build_parser().error("--adapter needs --backend torch (or serve a merged folder: ldnet-merge-adapter)")
        if a.threads:
            torch.set_num_threads(a.threads)
        adapters = AdapterRegistry(a.model, parse_adapter_flags(a.adapter))
        pipe = adapters.pipeline(None)
    else:
        pipe = load_pipeline(a.model, a.backend, threads=a.threads, onnx_dir=a.onnx_dir,
                             trust_remote_code=a.trust_remote_code, window_stride=a.window_stride,
                             verbose_onnxruntime=a.verbose_onnxruntime)
    settings = ServerSettings(
        limits=Limits(max_text_chars=a.max_text_chars, max_texts=a.max_texts, max_schema_labels=a.max_schema_labels,
                      max_label_chars=a.max_label_chars, max_request_cost=a.max_request_cost),
        max_wait_ms=a.max_wait_ms,
        max_batch_size=a.max_batch_size,
        batching=not a.no_batching,
        api_key=a.api_key or os.environ.get(API_KEY_ENV) or None,
    )
    app = create_app(pipe, settings, adapters=adapters)
    # uvicorn handles SIGINT / SIGTERM: stop accepting, finish in-flight requests, then run the lifespan shutdown
    uvicorn.run(app, host=a.host, port=a.port, log_level=a.log_level, timeout_graceful_shutdown=a.graceful_timeout)


if __name__ == "__main__":
    main()
