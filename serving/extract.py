"""``ldnet-extract``: run ``pipeline("universal-ie")`` over a whole corpus, data-parallel and resumable.

    ldnet-extract --model runs/demo/model --input corpus.parquet --output out.parquet \\
        --schema '{"ent": ["people", "location"], "rel": ["live in"]}'
    accelerate launch --num_processes 4 -m serving.extract --model ... --input ... --output ...   # one rank per GPU

Input: jsonl, parquet, csv or a local ``datasets`` folder (``Dataset.save_to_disk``). Output: parquet or jsonl with
every input column kept and the answers added (``--output_column``, default ``ans``; a JSON string in parquet, since
answers differ in shape from task to task, an object in jsonl). Each record's text, schema, instruction and
background come from columns (``--text_column`` …); ``--schema`` / ``--instruction`` are the defaults for records
without their own.

How the work is planned (so that the output never depends on the number of processes):

1. records are sorted by length (characters of ``text`` + ``bg``, longest first; ties keep input order) and cut into
   batches of ``--batch_size`` (one forward pass each, little padding);
2. consecutive batches form shards of ``--shard_size`` records; shard ``k`` goes to rank ``k % world_size``;
3. every finished shard is written atomically to ``<work_dir>/shard-<k>.jsonl``; a rerun skips finished shards
   (resume after a crash or a preemption, with any number of processes);
4. rank 0 merges the shards back into input order, checks that every record has exactly one answer, and writes
   ``--output``.

Batch composition is fixed by the plan, not by the world size, so 1 and N processes compute bit-identical answers.
All inference goes through ``pipeline("universal-ie")`` (validation, long-text windows, decoding).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import math
import os
import shutil
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from trainers.cli import _relaunch_cpu_workers, accelerate_cpu_processes_requested
from trainers.console import ArgumentParser, configure_logging, console_entry

# torch, transformers, accelerate, pyarrow and the model are imported by the functions that use them: `ldnet-extract
# --help` and a bad argument answer in a fraction of a second instead of the seconds their imports take
if TYPE_CHECKING:  # pragma: no cover
    import pyarrow as pa
    import torch
    from accelerate import PartialState

    from modeling_ldnet import UniversalIEPipeline

logger = logging.getLogger(__name__)

INPUT_FORMATS = ("jsonl", "parquet", "csv", "datasets")
OUTPUT_FORMATS = ("jsonl", "parquet")
MANIFEST = "manifest.json"


# -- loading the model --------------------------------------------------------------------------------------------
def load_pipeline(
    model: str | os.PathLike, device: str | int | torch.device | None = None, dtype: str | None = None
) -> UniversalIEPipeline:
    """``pipeline("universal-ie")`` on this package's classes (no remote code) on ``device`` in ``dtype``."""
    import torch
    from transformers import AutoModel, pipeline

    from modeling_ldnet import LDNetProcessor, UniversalIEPipeline

    kwargs: dict[str, Any] = {}
    if dtype not in (None, "", "float32"):
        if dtype not in ("bfloat16", "float16"):
            raise ValueError(f"--dtype must be float32, bfloat16 or float16, got {dtype!r}")
        kwargs["dtype"] = getattr(torch, dtype)
    net = AutoModel.from_pretrained(str(model), **kwargs)
    processor = LDNetProcessor.from_pretrained(str(model))
    # pipeline_class: this package's class even when a trust_remote_code load re-registered the task
    return pipeline("universal-ie", model=net, processor=processor, device=device if device is not None else "cpu",
                    pipeline_class=UniversalIEPipeline)


# -- records from rows --------------------------------------------------------------------------------------------
def _drop_nulls(value: Any) -> Any:
    """Arrow structs carry every key of every row (absent ones as None): drop them, recursively."""
    if isinstance(value, dict):
        return {k: _drop_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_drop_nulls(v) for v in value]
    return value


@dataclass
class ColumnSpec:
    """Which columns hold each record's text / schema / instruction / background / id, and the defaults."""

    text_column: str = "text"
    schema_column: str | None = "schema"
    instruction_column: str | None = "instruction"
    bg_column: str | None = "bg"
    id_column: str | None = "id"
    schema: dict | None = None
    instruction: str | None = None
    output_column: str = "ans"

    def check_columns(self, columns: Sequence[str], where: str) -> None:
        if self.text_column not in columns:
            raise ValueError(f"{where}: no text column {self.text_column!r} (columns: {list(columns)}); set --text_column")
        if self.output_column in columns:
            raise ValueError(
                f"{where}: the input already has a column {self.output_column!r} (gold answers?); "
                "choose another --output_column (e.g. pred) so nothing is overwritten"
            )
        if self.schema is None and (self.schema_column is None or self.schema_column not in columns):
            has_question = self.instruction_column in columns or self.instruction
            if not has_question:
                raise ValueError(f"{where}: no {self.schema_column!r} column and no --schema: the records have no schema")

    def record_id(self, row: dict, index: int) -> Any:
        rid = row.get(self.id_column) if self.id_column else None
        return index if rid is None else rid

    def to_record(self, row: dict, index: int) -> dict:
        """The pipeline input for one row (``index``: its position in the input, the id when there is no id column)."""
        rid = self.record_id(row, index)
        text = row.get(self.text_column)
        if not isinstance(text, str):
            raise ValueError(
                f"record {rid!r} (row {index}), field {self.text_column!r}: expected a string, got {type(text).__name__}"
            )
        rec: dict[str, Any] = {"id": rid, "text": text}
        schema = row.get(self.schema_column) if self.schema_column else None
        if isinstance(schema, str) and not schema.strip():
            schema = None  # an empty csv cell: no schema of its own
        if isinstance(schema, str):
            try:
                schema = json.loads(schema)
            except json.JSONDecodeError as exc:
                raise ValueError(f"record {rid!r} (row {index}), field {self.schema_column!r}: not JSON ({exc})") from exc
        schema = _drop_nulls(schema) if schema is not None else self.schema
        if schema is not None:
            if not isinstance(schema, dict):
                raise ValueError(
                    f"record {rid!r} (row {index}), field {self.schema_column!r}: expected an object, got {type(schema).__name__}"
                )
            rec["schema"] = schema
        instruction = row.get(self.instruction_column) if self.instruction_column else None
        instruction = self.instruction if instruction is None else instruction
        if instruction is not None:
            rec["instruction"] = instruction
        bg = row.get(self.bg_column) if self.bg_column else None
        rec["bg"] = bg if isinstance(bg, str) else ""
        return rec

    def length(self, row: dict) -> int:
        """The sort key (characters of text + bg): cheap, deterministic, and close to the token count."""
        text = row.get(self.text_column)
        bg = row.get(self.bg_column) if self.bg_column else None
        return (len(text) if isinstance(text, str) else 0) + (len(bg) if isinstance(bg, str) else 0)


def dump_answer(ans: Any) -> str:
    """One answer as the JSON string stored in parquet/shards (floats round-trip exactly)."""
    return json.dumps(ans, ensure_ascii=False, sort_keys=False)


def run_records(
    ie: UniversalIEPipeline, records: list[dict], threshold: float | None = None, **pipeline_kwargs: Any
) -> list[dict]:
    """One forward pass over ``records`` (all windows of a record in the same pass) → one answer per record.
    ``pipeline_kwargs``: ``window_stride`` / ``overflow`` (None: the model's), ``output_format`` (``"gliner2"``:
    GLiNER2's result dicts, docs/gliner2.md)."""
    kwargs = {k: v for k, v in pipeline_kwargs.items() if v is not None and not (k == "output_format" and v == "ldnet")}
    if threshold is not None:
        kwargs["threshold"] = threshold
    return ie(records, batch_size=max(1, len(records)), **kwargs)


# -- corpus I/O ---------------------------------------------------------------------------------------------------
def detect_format(path: str | os.PathLike) -> str:
    p = Path(path)
    if p.is_dir():
        if (p / "state.json").is_file() or (p / "dataset_info.json").is_file() or (p / "dataset_dict.json").is_file():
            return "datasets"
        if any(p.glob("*.parquet")):
            return "parquet"
        raise ValueError(f"--input {p}: a folder that is neither a `datasets` save_to_disk folder nor parquet files")
    suffixes = "".join(p.suffixes[-2:]).lower()
    for fmt, exts in (("jsonl", (".jsonl", ".json", ".ndjson")), ("parquet", (".parquet", ".pq")), ("csv", (".csv", ".tsv"))):
        if any(suffixes.endswith(e) for e in exts):
            return fmt
    raise ValueError(f"--input {p}: cannot tell the format from the name; pass --input_format {INPUT_FORMATS}")


class Corpus:
    """The input rows, kept as they were read: plain dicts for jsonl (exact round trip), an Arrow table otherwise."""

    def __init__(self, rows: list[dict] | None = None, table: pa.Table | None = None) -> None:
        self.rows, self.table = rows, table

    def __len__(self) -> int:
        return len(self.rows) if self.rows is not None else self.table.num_rows

    @property
    def columns(self) -> list[str]:
        if self.table is not None:
            return list(self.table.column_names)
        seen: dict[str, None] = {}
        for r in self.rows:
            seen.update(dict.fromkeys(r))
        return list(seen)

    def take(self, indices: Sequence[int]) -> list[dict]:
        if self.rows is not None:
            return [self.rows[i] for i in indices]
        import pyarrow as pa

        return self.table.take(pa.array(indices, type=pa.int64())).to_pylist()

    def column(self, name: str) -> list:
        if self.rows is not None:
            return [r.get(name) for r in self.rows]
        return self.table.column(name).to_pylist() if name in self.table.column_names else [None] * len(self)


def _json_object(text: str, where: str) -> dict:
    """``text`` parsed as one JSON object; errors name ``where`` (a file line, an option)."""
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{where}: not JSON ({exc})") from exc
    if not isinstance(obj, dict):
        raise ValueError(f"{where}: expected a JSON object, got {type(obj).__name__}")
    return obj


def read_corpus(path: str | os.PathLike, fmt: str | None = None, split: str | None = None, text_column: str = "text") -> Corpus:
    """Read ``path`` (jsonl / parquet / csv / ``datasets`` folder). Bad jsonl lines raise naming the line."""
    import pyarrow as pa
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    fmt = fmt or detect_format(path)
    if fmt == "jsonl":
        rows = []
        with open(path, encoding="utf-8") as fh:
            for n, line in enumerate(fh, 1):
                if not line.strip():
                    continue
                rows.append(_json_object(line, f"{path}, line {n}"))
        return Corpus(rows=rows)
    if fmt == "parquet":
        return Corpus(table=pq.read_table(path))
    if fmt == "csv":
        # the text column stays a string even when it looks numeric
        delimiter = "\t" if str(path).lower().endswith(".tsv") else ","
        return Corpus(
            table=pacsv.read_csv(
                path,
                parse_options=pacsv.ParseOptions(delimiter=delimiter, newlines_in_values=True),
                convert_options=pacsv.ConvertOptions(column_types={text_column: pa.string()}),
            )
        )
    if fmt == "datasets":
        import datasets

        ds = datasets.load_from_disk(str(path))
        if isinstance(ds, datasets.DatasetDict):
            if split is None:
                raise ValueError(f"--input {path} is a DatasetDict with splits {list(ds)}; pass --split")
            ds = ds[split]
        ds = ds.flatten_indices() if ds._indices is not None else ds
        return Corpus(table=ds.data.table)
    raise ValueError(f"--input_format must be one of {INPUT_FORMATS}, got {fmt!r}")


def write_output(corpus: Corpus, answers: list[str], path: Path, fmt: str, column: str) -> None:
    """Input rows in input order + ``column`` (JSON strings in parquet, objects in jsonl); atomic replace."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    tmp = path.with_name(path.name + ".tmp")
    path.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "jsonl":
        with open(tmp, "w", encoding="utf-8") as fh:
            for start in range(0, len(corpus), 4096):
                rows = corpus.take(range(start, min(start + 4096, len(corpus))))
                for row, ans in zip(rows, answers[start : start + len(rows)]):
                    row = dict(row)
                    row[column] = json.loads(ans)
                    fh.write(json.dumps(row, ensure_ascii=False, default=str) + "\n")
    elif fmt == "parquet":
        if corpus.table is not None:
            table = corpus.table
        else:
            try:
                table = pa.Table.from_pylist(corpus.rows)
            except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
                raise ValueError(f"the jsonl rows do not fit one Arrow schema ({exc}); write --output as .jsonl") from exc
        table = table.append_column(column, pa.array(answers, type=pa.string()))
        pq.write_table(table, tmp)
    else:
        raise ValueError(f"--output format must be one of {OUTPUT_FORMATS}, got {fmt!r}")
    os.replace(tmp, path)


# -- the plan -----------------------------------------------------------------------------------------------------
@dataclass
class Plan:
    """Length-sorted batches grouped into shards; independent of the number of processes."""

    order: list[int]  # input indices, longest first
    batch_size: int
    shard_size: int

    @property
    def num_shards(self) -> int:
        return math.ceil(len(self.order) / self.shard_size)

    def shard(self, k: int) -> list[int]:
        return self.order[k * self.shard_size : (k + 1) * self.shard_size]

    def batches(self, k: int) -> Iterator[list[int]]:
        idx = self.shard(k)
        for s in range(0, len(idx), self.batch_size):
            yield idx[s : s + self.batch_size]

    def shards_for(self, rank: int, world_size: int) -> list[int]:
        return list(range(rank, self.num_shards, world_size))


def make_plan(lengths: Sequence[int], batch_size: int, shard_size: int) -> Plan:
    if batch_size < 1:
        raise ValueError(f"--batch_size must be >= 1, got {batch_size}")
    if shard_size < batch_size or shard_size % batch_size:
        raise ValueError(f"--shard_size ({shard_size}) must be a multiple of --batch_size ({batch_size})")
    order = sorted(range(len(lengths)), key=lambda i: (-lengths[i], i))
    return Plan(order=order, batch_size=batch_size, shard_size=shard_size)


def _fingerprint_path(path: str | os.PathLike, recursive: bool = True) -> dict:
    """Names, sizes and mtimes (not contents: corpora are large) of a file or a folder's files."""
    p = Path(path)
    files = sorted(f for f in (p.rglob("*") if recursive else p.glob("*")) if f.is_file()) if p.is_dir() else [p]
    h = hashlib.sha256()
    for f in files:
        st = f.stat()
        h.update(f"{f.relative_to(p) if p.is_dir() else f.name}:{st.st_size}:{st.st_mtime_ns}\n".encode())
    return {"path": str(p.resolve()), "stat_sha256": h.hexdigest()}


# -- the run ------------------------------------------------------------------------------------------------------
@dataclass
class ExtractArguments:
    model: str
    input: str
    output: str
    input_format: str | None = None
    output_format: str | None = None
    split: str | None = None
    columns: ColumnSpec = field(default_factory=ColumnSpec)
    threshold: float | None = None
    window_stride: int | None = None
    overflow: str | None = None
    answer_format: str = "ldnet"  # "gliner2": GLiNER2's result dict per record
    batch_size: int = 16
    shard_size: int = 1024
    work_dir: str | None = None
    keep_shards: bool = False
    overwrite: bool = False
    dtype: str | None = None
    progress: bool = True
    max_shards: int | None = None  # stop after this many new shards per rank (time-boxed jobs; rerun to continue)


def _manifest(args: ExtractArguments, n: int, plan: Plan) -> dict:
    # what makes two runs' shards interchangeable (not the world size: a resume may use any number of processes)
    cols = asdict(args.columns)
    return {
        "input": _fingerprint_path(args.input),
        "split": args.split,
        "num_records": n,
        # top-level files only: caches that tools add in subfolders (e.g. onnx/) do not change the model
        "model": _fingerprint_path(args.model, recursive=False),
        "dtype": args.dtype or "float32",
        "columns": cols,
        "threshold": args.threshold,
        "window_stride": args.window_stride,
        "overflow": args.overflow,
        "answer_format": args.answer_format,
        "batch_size": plan.batch_size,
        "shard_size": plan.shard_size,
        "num_shards": plan.num_shards,
    }


def _shard_path(work: Path, k: int) -> Path:
    return work / f"shard-{k:06d}.jsonl"


def _write_shard(work: Path, k: int, indices: list[int], answers: list[str], rank: int) -> None:
    tmp = work / f".shard-{k:06d}.rank{rank}.tmp"
    with open(tmp, "w", encoding="utf-8") as fh:
        for i, a in zip(indices, answers):
            fh.write(f'{{"i": {i}, "ans": {a}}}\n')
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, _shard_path(work, k))  # atomic: a shard file exists only once complete


def _merge(work: Path, plan: Plan, n: int) -> list[str]:
    answers: list[str | None] = [None] * n
    for k in range(plan.num_shards):
        path = _shard_path(work, k)
        if not path.is_file():
            raise RuntimeError(f"merge: shard {k} ({path}) is missing; rerun ldnet-extract to finish it")
        expected = plan.shard(k)
        got = []
        with open(path, encoding="utf-8") as fh:
            for line in fh:
                item = json.loads(line)
                got.append(item["i"])
                if answers[item["i"]] is not None:
                    raise RuntimeError(f"merge: record {item['i']} answered twice (shard {k})")
                answers[item["i"]] = dump_answer(item["ans"])
        if got != expected:
            raise RuntimeError(f"merge: shard {k} holds records {got[:5]}..., expected {expected[:5]}... (corrupt work dir)")
    missing = [i for i, a in enumerate(answers) if a is None]
    if missing:
        raise RuntimeError(f"merge: {len(missing)} records without an answer (first: {missing[:5]})")
    return answers  # type: ignore[return-value]


def _partial_state() -> PartialState:
    """accelerate's process state. Without an accelerator (or with ``ACCELERATE_USE_CPU``) the ranks form a gloo
    group on CPU; ``PartialState`` only does that when told ``cpu=True``."""
    import torch
    from accelerate import PartialState
    from accelerate.utils import parse_flag_from_env

    cpu = parse_flag_from_env("ACCELERATE_USE_CPU") or not torch.accelerator.is_available()
    return PartialState(cpu=cpu)


def extract(args: ExtractArguments) -> dict[str, Any]:
    """Run the whole job on this process's rank (see the module docstring); returns a summary (rank 0: merged)."""
    from tqdm.auto import tqdm

    state = _partial_state()
    rank, world = state.process_index, state.num_processes
    output = Path(args.output)
    out_fmt = args.output_format or ("parquet" if output.suffix.lower() in (".parquet", ".pq") else "jsonl")
    if out_fmt not in OUTPUT_FORMATS:
        raise ValueError(f"--output_format must be one of {OUTPUT_FORMATS}, got {out_fmt!r}")
    if output.exists() and not args.overwrite:
        raise FileExistsError(f"--output {output} exists; pass --overwrite to replace it")
    work = Path(args.work_dir) if args.work_dir else output.with_name(output.name + ".parts")

    corpus = read_corpus(args.input, args.input_format, args.split, args.columns.text_column)
    args.columns.check_columns(corpus.columns, f"--input {args.input}")
    texts = corpus.column(args.columns.text_column)
    bgs = corpus.column(args.columns.bg_column) if args.columns.bg_column else [None] * len(corpus)
    lengths = [args.columns.length({args.columns.text_column: t, args.columns.bg_column: b}) for t, b in zip(texts, bgs)]
    plan = make_plan(lengths, args.batch_size, args.shard_size)
    manifest = _manifest(args, len(corpus), plan)

    if state.is_main_process:
        work.mkdir(parents=True, exist_ok=True)
        mpath = work / MANIFEST
        if mpath.is_file():
            old = json.loads(mpath.read_text())
            if old != manifest:
                diff = sorted(k for k in manifest if old.get(k) != manifest[k])
                raise RuntimeError(
                    f"work dir {work} holds shards of a different run ({', '.join(diff)} differ); "
                    "delete it or pass another --work_dir"
                )
        else:
            mpath.write_text(json.dumps(manifest, indent=1) + "\n")
        for stale in work.glob(".shard-*.tmp"):  # half-written shards of a killed run
            stale.unlink()
    state.wait_for_everyone()

    mine = plan.shards_for(rank, world)
    todo = [k for k in mine if not _shard_path(work, k).is_file()]
    skipped = len(mine) - len(todo)
    if args.max_shards is not None:
        todo = todo[: args.max_shards]
    if skipped:
        logger.info("rank %d: %d of its %d shards already finished, skipped", rank, skipped, len(mine))

    ie = load_pipeline(args.model, device=state.device, dtype=args.dtype)
    n_todo = sum(len(plan.shard(k)) for k in todo)
    bar = tqdm(
        total=n_todo,
        unit="rec",
        desc=f"ldnet-extract rank {rank}/{world}" if world > 1 else "ldnet-extract",
        disable=not (args.progress and state.is_local_main_process),
        dynamic_ncols=True,
    )
    t0 = time.perf_counter()
    done = 0
    for k in todo:
        indices, answers = [], []
        for batch in plan.batches(k):
            rows = corpus.take(batch)
            records = [args.columns.to_record(row, i) for row, i in zip(rows, batch)]
            answers.extend(dump_answer(a) for a in run_records(
                ie, records, args.threshold, window_stride=args.window_stride, overflow=args.overflow,
                output_format=args.answer_format))
            indices.extend(batch)
            bar.update(len(batch))
        _write_shard(work, k, indices, answers, rank)
        done += len(indices)
    bar.close()
    seconds = time.perf_counter() - t0
    (work / f"stats-rank{rank}.json").write_text(json.dumps({"records": done, "seconds": seconds, "shards": len(todo)}))
    state.wait_for_everyone()

    summary: dict[str, Any] = {"rank": rank, "world_size": world, "records": done, "seconds": seconds,
                               "shards_done": len(todo), "shards_skipped": skipped}
    if not state.is_main_process:
        return summary
    remaining = [k for k in range(plan.num_shards) if not _shard_path(work, k).is_file()]
    stats = [json.loads((work / f"stats-rank{r}.json").read_text()) for r in range(world)]
    summary.update(
        num_records=len(corpus),
        num_shards=plan.num_shards,
        records_computed=sum(s["records"] for s in stats),
        compute_seconds=max(s["seconds"] for s in stats),
    )
    summary["records_per_s"] = summary["records_computed"] / summary["compute_seconds"] if summary["compute_seconds"] else 0.0
    if remaining:  # --max_shards stopped early: leave the work dir for the next run
        summary["finished"] = False
        logger.info("ldnet-extract: %d shards left; rerun the same command to continue", len(remaining))
        return summary
    answers = _merge(work, plan, len(corpus))
    write_output(corpus, answers, output, out_fmt, args.columns.output_column)
    if not args.keep_shards:
        shutil.rmtree(work)
    summary["finished"] = True
    summary["output"] = str(output)
    logger.info(
        "ldnet-extract: %d records -> %s (%d computed on %d process(es), %.1f records/s)",
        len(corpus), output, summary["records_computed"], world, summary["records_per_s"],
    )
    return summary


def build_parser() -> argparse.ArgumentParser:
    p = ArgumentParser(prog="ldnet-extract", description=__doc__.split("\n\n")[0])
    p.add_argument("--model", required=True, help="a saved LDNet folder (model + processor)")
    p.add_argument("--input", required=True, help="jsonl / parquet / csv file, parquet folder or datasets folder")
    p.add_argument("--output", required=True, help="out.parquet or out.jsonl")
    p.add_argument("--input_format", choices=INPUT_FORMATS, default=None, help="default: from the name")
    p.add_argument("--output_format", choices=OUTPUT_FORMATS, default=None, help="default: from the name")
    p.add_argument("--split", default=None, help="the split of a DatasetDict folder")
    p.add_argument("--text_column", default="text")
    p.add_argument("--schema_column", default="schema", help="per-record schema (object or JSON string); '' for none")
    p.add_argument("--instruction_column", default="instruction", help="'' for none")
    p.add_argument("--bg_column", default="bg", help="'' for none")
    p.add_argument("--id_column", default="id", help="named in errors; '' to use the row number")
    p.add_argument("--schema", default=None, help="default schema (JSON, or @file.json) for records without one")
    p.add_argument("--instruction", default=None,
                   help="instruction for records without one (default: the model's config.default_instruction when it "
                        "has one, e.g. '' for a model trained without instructions, else the paper-style instruction "
                        "of the record's schema); '' for none")
    p.add_argument("--output_column", default="ans")
    p.add_argument("--threshold", type=float, default=None, help="decoding threshold (default: the model's)")
    p.add_argument("--window_stride", type=int, default=None, help="long texts: window stride (default: the model's)")
    p.add_argument("--overflow", choices=("window", "error", "truncate"), default=None,
                   help="texts longer than max_length (default: the model's, normally window)")
    p.add_argument("--answer_format", choices=("ldnet", "gliner2"), default="ldnet",
                   help="shape of each answer: LDNet's unified ans, or GLiNER2's result dict (docs/gliner2.md); a "
                        "GLiNER2 schema dict works in --schema / the schema column either way")
    p.add_argument("--batch_size", type=int, default=16, help="records per forward pass")
    p.add_argument("--shard_size", type=int, default=1024, help="records per shard (a multiple of --batch_size)")
    p.add_argument("--work_dir", default=None, help="finished shards (default: <output>.parts)")
    p.add_argument("--keep_shards", action="store_true", help="keep the work dir after merging")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --output")
    p.add_argument("--dtype", choices=("float32", "bfloat16", "float16"), default=None)
    p.add_argument("--max_shards", type=int, default=None, help="new shards per rank, then stop (rerun to continue)")
    p.add_argument("--no_progress", action="store_true", help="no progress bar")
    return p


def _schema_arg(value: str | None) -> dict | None:
    if value is None:
        return None
    text = Path(value[1:]).read_text(encoding="utf-8") if value.startswith("@") else value
    return _json_object(text, "--schema")


def extract_main(argv: list[str] | None = None) -> dict[str, Any]:
    """``ldnet-extract``: extraction over a corpus (see ``ldnet-extract --help``)."""
    ns = build_parser().parse_args(argv)
    if argv is None:
        # `accelerate launch --cpu --num_processes N` starts one process (accelerate's simple launcher): start the N
        # gloo ranks here, as ldnet-train does
        n = accelerate_cpu_processes_requested()
        if n > 1:
            _relaunch_cpu_workers(n)
    # our own lines (progress summary) at INFO, the libraries' at WARNING unless --verbose (parse_args applied it)
    logging.basicConfig(level=logging.INFO if ns.verbose else logging.WARNING, format="%(message)s")
    configure_logging(ns.verbose)
    columns = ColumnSpec(
        text_column=ns.text_column,
        schema_column=ns.schema_column or None,
        instruction_column=ns.instruction_column or None,
        bg_column=ns.bg_column or None,
        id_column=ns.id_column or None,
        schema=_schema_arg(ns.schema),
        instruction=ns.instruction,
        output_column=ns.output_column,
    )
    args = ExtractArguments(
        model=ns.model, input=ns.input, output=ns.output, input_format=ns.input_format, output_format=ns.output_format,
        split=ns.split, columns=columns, threshold=ns.threshold, window_stride=ns.window_stride, overflow=ns.overflow,
        answer_format=ns.answer_format,
        batch_size=ns.batch_size, shard_size=ns.shard_size,
        work_dir=ns.work_dir, keep_shards=ns.keep_shards, overwrite=ns.overwrite, dtype=ns.dtype,
        progress=not ns.no_progress, max_shards=ns.max_shards,
    )
    return extract(args)


main = console_entry("ldnet-extract", extract_main)

if __name__ == "__main__":
    raise SystemExit(main())
