"""``ldnet-serve MODEL_DIR``: an HTTP API (FastAPI + uvicorn) over ``pipeline("universal-ie")``.

    ldnet-serve runs/demo/model --port 8000 [--backend torch|onnx|onnx-int8] [--max-wait-ms 5] [--api-key KEY]
    curl -s localhost:8000/extract -H 'content-type: application/json' \\
         -d '{"text": "Jerry Smith lives in New York .", "schema": {"ent": ["person", "location"]}}'

Endpoints: ``POST /extract`` (one text, many texts or unified records + schema / instruction / threshold),
``GET /health``, ``GET /info`` (the model card: schemas trained on, metrics, configuration); OpenAPI at ``/docs``.
Concurrent requests are gathered into shared forward passes (:mod:`serving.batching`). Every request is checked
against the limits (text length, texts per request, schema size) and answered 413 / 422 naming the field; a request
can change nothing shared (options are per call, the pipeline's settings are never touched). ``SIGTERM`` /
Ctrl-C stop taking connections and finish the requests in flight before the process exits.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass
from typing import Any

from fastapi import Depends, FastAPI, HTTPException, Request, Security
from fastapi.responses import JSONResponse
from fastapi.security import APIKeyHeader
from pydantic import BaseModel, ConfigDict, Field, model_validator

from modeling_ldnet.schema import RecordError

from .backends import BACKENDS, load_pipeline
from .batching import BatcherClosed, DynamicBatcher

logger = logging.getLogger(__name__)

API_KEY_HEADER = "X-API-Key"
API_KEY_ENV = "LDNET_API_KEY"


@dataclass(frozen=True)
class Limits:
    """Per-request limits (answered 413 naming the field)."""

    max_text_chars: int = 20_000  # text, bg and instruction, each (longer texts are windowed, but cost grows)
    max_texts: int = 64  # texts or records per request
    max_schema_labels: int = 200  # labels in one schema, event / hyper-relation roles included
    max_label_chars: int = 200


@dataclass(frozen=True)
class ServerSettings:
    limits: Limits = Limits()
    max_wait_ms: float = 5.0
    max_batch_size: int = 32
    batching: bool = True
    api_key: str | None = None


# -- API models --------------------------------------------------------------------------------------------
class NamedLabels(BaseModel):
    """The list form of ``event`` / ``hyper_rel`` entries (as ``processing`` stores them in ``datasets``)."""

    model_config = ConfigDict(extra="forbid")

    name: str
    labels: list[str] = Field(default_factory=list)


class Schema(BaseModel):
    """What to extract. Labels are free strings (the model reads them), e.g. ``{"ent": ["person"], "rel":
    ["work for"], "event": {"attack": ["attacker", "target"]}}``; an empty schema + instruction is extractive QA."""

    model_config = ConfigDict(extra="forbid")

    cls: list[str] | None = Field(None, description="class labels (text classification)")
    ent: list[str] | None = Field(None, description="entity types")
    discontinuous_ent: list[str] | None = Field(None, description="discontinuous entity types")
    rel: list[str] | None = Field(None, description="relation types")
    hyper_rel: dict[str, list[str]] | list[NamedLabels] | None = Field(
        None, description="relation -> qualifier roles (or the list form `[{name, labels}]`)")
    event: dict[str, list[str]] | list[NamedLabels] | None = Field(
        None, description="event type -> argument roles (or the list form `[{name, labels}]`)")


class RecordIn(BaseModel):
    """A unified record (``schema`` / ``instruction`` default to the request's)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    id: str | int | None = None
    text: str
    schema_: Schema | None = Field(None, alias="schema")
    instruction: str | None = None
    bg: str = ""


class ExtractRequest(BaseModel):
    """Exactly one of ``text``, ``texts`` or ``records``."""

    model_config = ConfigDict(
        extra="forbid",
        populate_by_name=True,
        json_schema_extra={
            "examples": [
                {
                    "text": "Jerry Smith lives in New York and works for Acme Corp .",
                    "schema": {"ent": ["person", "location", "organization"], "rel": ["live in", "work for"]},
                }
            ]
        },
    )

    text: str | None = None
    texts: list[str] | None = None
    records: list[RecordIn] | None = None
    schema_: Schema | None = Field(None, alias="schema")
    instruction: str | None = Field(
        None, description="None: a paper-style instruction from the schema; '' for none; for QA, the question"
    )
    bg: str | None = Field(None, description="background / second segment for `text` / `texts`")
    threshold: float | None = Field(None, gt=0.0, lt=1.0, description="decoding threshold (default: the model's)")
    return_scores: bool = True

    @model_validator(mode="after")
    def _one_input(self) -> ExtractRequest:
        given = [n for n in ("text", "texts", "records") if getattr(self, n) is not None]
        if len(given) != 1:
            raise ValueError(f"give exactly one of `text`, `texts`, `records` (got {given or 'none'})")
        return self


class ExtractResponse(BaseModel):
    results: list[dict[str, Any]] = Field(description="one unified `ans` dict per input text / record")
    backend: str


class HealthResponse(BaseModel):
    status: str
    backend: str
    pending: int


class InfoResponse(BaseModel):
    model: str
    backend: str
    card: dict[str, Any] = Field(description="model card information: schema(s) trained on, training data, metrics")
    config: dict[str, Any]
    limits: dict[str, Any]
    batching: dict[str, Any]


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


def _schema_dict(schema: Schema, loc: list, limits: Limits) -> dict[str, Any]:
    out = schema.model_dump(exclude_none=True)
    for task in ("hyper_rel", "event"):
        if isinstance(out.get(task), list):  # list form -> the SPEC's dict form
            names = [x["name"] for x in out[task]]
            dup = sorted({x for x in names if names.count(x) > 1})
            if dup:
                raise _invalid([*loc, task], f"{task}: duplicate names {dup}")
            out[task] = {x["name"]: x["labels"] for x in out[task]}
    n = 0
    for task, labels in out.items():
        items = [(k, f"{task}.{k}") for k in labels] if isinstance(labels, dict) else []
        items += [(r, f"{task}.{k}.{r}") for k, roles in (labels.items() if isinstance(labels, dict) else ())
                  for r in roles]
        items += [(x, f"{task}[{i}]") for i, x in enumerate(labels)] if isinstance(labels, list) else []
        for label, where in items:
            n += 1
            if not label.strip():
                raise _invalid([*loc, task], f"empty label at {where}")
            if len(label) > limits.max_label_chars:
                raise _too_large([*loc, task], f"label {where} has {len(label)} characters; the limit is "
                                 f"{limits.max_label_chars}")
    if n > limits.max_schema_labels:
        raise _too_large(loc, f"{n} labels; the limit is {limits.max_schema_labels} (--max-schema-labels)")
    return out


def to_records(req: ExtractRequest, limits: Limits) -> list[dict[str, Any]]:
    """The pipeline records for ``req`` (each carries its schema and instruction), after the limit checks."""
    schema = _schema_dict(req.schema_, ["schema"], limits) if req.schema_ is not None else None
    _check_text(req.instruction, ["instruction"], limits)
    _check_text(req.bg, ["bg"], limits)
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
            rec_schema = _schema_dict(item.schema_, [*loc, "schema"], limits) if item.schema_ is not None else schema
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


# -- app ---------------------------------------------------------------------------------------------------
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


def create_app(pipe: Any, settings: ServerSettings | None = None) -> FastAPI:
    """A FastAPI app serving ``pipe`` (a ``pipeline("universal-ie")``, any backend) with dynamic batching."""
    settings = settings or ServerSettings()
    backend = getattr(pipe, "backend", "torch")
    batcher = DynamicBatcher(
        pipe, max_wait_ms=settings.max_wait_ms, max_batch_size=settings.max_batch_size, batching=settings.batching
    )
    name, card, config_rows = model_info(pipe)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        # uvicorn has finished the requests in flight; drain anything still queued, then stop the worker
        await asyncio.to_thread(batcher.close)

    app = FastAPI(
        title="LDNet universal IE",
        version="1.0",
        description="Universal information extraction with LDNet (`pipeline(\"universal-ie\")`).",
        lifespan=lifespan,
    )
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
        400: {"model": ErrorResponse, "description": "the body is not valid JSON"},
        401: {"model": ErrorResponse, "description": "missing or wrong API key"},
        413: {"model": ErrorResponse, "description": "a limit exceeded (the detail names the field)"},
        422: {"model": ErrorResponse, "description": "invalid request (the detail names the field)"},
        503: {"model": ErrorResponse, "description": "shutting down"},
    }

    @app.post("/extract", response_model=ExtractResponse, responses=errors, dependencies=guarded)
    async def extract(req: ExtractRequest) -> ExtractResponse:
        """Extract structures from one text, many texts or unified records (one answer per input)."""
        records = to_records(req, settings.limits)
        options: dict[str, Any] = {"return_scores": req.return_scores}
        if req.threshold is not None:
            options["threshold"] = req.threshold
        try:
            answers = await asyncio.wrap_future(batcher.submit(records, **options))
        except BatcherClosed as exc:
            raise HTTPException(status_code=503, detail=str(exc)) from exc
        except (RecordError, ValueError, TypeError) as exc:  # the pipeline's input errors name record and field
            raise _invalid([], str(exc)) from exc
        return ExtractResponse(results=answers, backend=backend)

    @app.get("/health", response_model=HealthResponse)
    async def health() -> HealthResponse:
        return HealthResponse(status="ok", backend=backend, pending=batcher.pending())

    @app.get("/info", response_model=InfoResponse, responses={401: errors[401]}, dependencies=guarded)
    async def info() -> InfoResponse:
        """The model card: schemas trained on, training data, metrics, configuration; and this server's limits."""
        return InfoResponse(
            model=name,
            backend=backend,
            card=card,
            config=config_rows,
            limits=asdict(settings.limits),
            batching={"enabled": settings.batching, "max_wait_ms": settings.max_wait_ms,
                      "max_batch_size": settings.max_batch_size, **asdict(batcher.stats)},
        )

    @app.exception_handler(BatcherClosed)
    async def _closed(_: Request, exc: BatcherClosed) -> JSONResponse:
        return JSONResponse(status_code=503, content={"detail": str(exc)})

    return app


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="ldnet-serve", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model", help="saved LDNet folder (pipeline.save_pretrained / trainer.save_model)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--backend", choices=BACKENDS, default="torch")
    p.add_argument("--onnx-dir", help="where ONNX exports are cached (default: MODEL/onnx)")
    p.add_argument("--threads", type=int, default=None, help="intra-op CPU threads (torch / onnxruntime)")
    p.add_argument("--window-stride", type=int, default=None,
                   help="overlap of long-text windows in tokens (default: the saved processor's)")
    p.add_argument("--max-wait-ms", type=float, default=5.0, help="how long a request waits to share a batch")
    p.add_argument("--max-batch-size", type=int, default=32, help="records per forward pass")
    p.add_argument("--no-batching", action="store_true", help="one request per forward pass")
    p.add_argument("--max-text-chars", type=int, default=Limits.max_text_chars)
    p.add_argument("--max-texts", type=int, default=Limits.max_texts)
    p.add_argument("--max-schema-labels", type=int, default=Limits.max_schema_labels)
    p.add_argument("--api-key", default=None, help=f"require this {API_KEY_HEADER} header (or set ${API_KEY_ENV})")
    p.add_argument("--graceful-timeout", type=float, default=30.0, help="seconds to finish in-flight requests")
    p.add_argument("--trust-remote-code", action="store_true")
    p.add_argument("--log-level", default="info")
    return p


def main(argv: list[str] | None = None) -> None:
    import uvicorn

    a = build_parser().parse_args(argv)
    logging.basicConfig(level=a.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    pipe = load_pipeline(a.model, a.backend, threads=a.threads, onnx_dir=a.onnx_dir,
                         trust_remote_code=a.trust_remote_code, window_stride=a.window_stride)
    settings = ServerSettings(
        limits=Limits(max_text_chars=a.max_text_chars, max_texts=a.max_texts, max_schema_labels=a.max_schema_labels),
        max_wait_ms=a.max_wait_ms,
        max_batch_size=a.max_batch_size,
        batching=not a.no_batching,
        api_key=a.api_key or os.environ.get(API_KEY_ENV) or None,
    )
    app = create_app(pipe, settings)
    # uvicorn handles SIGINT / SIGTERM: stop accepting, finish in-flight requests, then run the lifespan shutdown
    uvicorn.run(app, host=a.host, port=a.port, log_level=a.log_level, timeout_graceful_shutdown=a.graceful_timeout)


if __name__ == "__main__":
    main()
