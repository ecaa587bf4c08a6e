"""Multi-task pre-training (the paper's "w/ PT" stage): recipe -> capped, shuffled mix -> per-epoch augmentation.

Pieces:

* :func:`load_recipe` reads a JSON (or YAML, when PyYAML is installed) recipe, e.g.
  ``examples/recipes/pretrain_all.json``::

      {"name": "pretrain_all", "seed": 1227, "max_records_per_corpus": 20000, "split": "train",
       "instruction_mode": "sample",
       "schema_augmentation": {"shuffle": true, "negative_rate": 0.5, "max_negatives": 4},
       "corpora": [
         {"name": "conll03", "benchmark": "conll03"},                         # converted on the fly
         {"name": "conll04", "benchmark": "conll04", "options": {"with_entities": true}},
         {"name": "sst2", "benchmark": "sst2", "pool": "cls_sentiment"},
         {"name": "ontonotes5", "path": "{pretrain_data}/ner/ontonotes5", "task": "ner"},   # a converted folder
         {"glob": "{pretrain_data}/**/train.jsonl"}                          # one corpus per matching file
       ]}

  Placeholders: ``{shared_data}`` (env ``LDNET_SHARED_DATA``, default ``<repo>/../shared/data``),
  ``{pretrain_data}`` (env ``LDNET_PRETRAIN_DATA``, default ``{shared_data}/pretrain``) and ``{recipe_dir}``.
  A corpus entry has exactly one of ``benchmark`` (``processing.BENCHMARKS``; source ``data_dir``, default
  ``{shared_data}/<shared_subdir>``), ``path`` (a converted folder ``{split}.jsonl|parquet`` or one unified file)
  or ``glob``; optional ``split``, ``max_records``, ``task`` (default: the registry's task, else inferred per
  record), ``pool`` (a named instruction pool), ``options`` (converter options).
* :func:`build_pretrain_mix` converts / loads every corpus, caps it (seeded sample of at most
  ``max_records_per_corpus`` records; paper: 20k), tags rows with ``corpus`` / ``task`` / ``pool`` columns,
  concatenates and shuffles (``datasets.Dataset``), and builds the :class:`~trainers.schema_aug.LabelPool` of
  negative labels.
* :class:`AugmentedRecordDataset` re-draws instruction and schema augmentation per ``(seed, epoch, record id)`` and
  encodes lazily with the processor; :class:`EpochCallback` tells it the epoch.
* :func:`pretrain_main` (``examples/pretrain.py``, console script ``ldnet-pretrain``) trains with
  :class:`~trainers.LDNetTrainer` and saves a normal ``save_pretrained`` folder (model + processor) plus
  ``pretrain_info.json``.
"""

from __future__ import annotations

import difflib
import glob as _glob
import json
import logging
import os
import random
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modeling_ldnet.modelcard_ldnet import card_metrics, portable_model_id, update_model_card
from processing import BENCHMARKS, convert_benchmark, load_unified, write_unified
from processing.paths import pretrain_data_dir, shared_data_dir

from .console import console_entry, deferred_getattr, import_deferred
from .instructions import INSTRUCTION_MODES, InstructionSampler, canonical_task, derive_seed
from .schema_aug import LabelPool, SchemaAugConfig, SchemaAugmenter

# The training stack (torch, transformers, datasets, the model): the imports in the TYPE_CHECKING block below are run
# by _import_training_stack() when a command runs, not when the module is imported, so that the console script's
# `--help` (a cached page) and importers of the light helpers do not pay seconds for them. A new heavy import of
# this module goes into that block.
if TYPE_CHECKING:  # also run by _import_training_stack() (console.import_deferred)
    import datasets
    from datasets import concatenate_datasets
    from transformers import TrainerCallback, set_seed

    from processing.features import UNIFIED_FEATURES

    from .augmented import EXTRA_COLUMNS, AugmentedRecordDataset, CorpusLossCallback, EpochCallback  # noqa: F401
    from .console import ArgumentsParser
    from .data import pick_split
    from .loading import ModelArguments, build_model_and_processor, portable, portable_path, setup_logging
    from .trainer import LDNetTrainer, LDNetTrainingArguments, time_limit_callback, train_and_save


def _import_training_stack() -> None:
    """The imports of the ``TYPE_CHECKING`` block above, into this module's namespace (idempotent)."""
    import_deferred(globals())


#: re-exported names of the training stack (``from trainers.pretrain import ...``), imported on first use
__getattr__ = deferred_getattr(globals())


logger = logging.getLogger("ldnet.pretrain")

REPO = Path(__file__).resolve().parents[1]


# ---------------------------------------------------------------------------------------------------------------
# recipes
# ---------------------------------------------------------------------------------------------------------------


#: the former names of the path helpers (their home is ``processing.paths``)
default_shared_data = shared_data_dir
default_pretrain_data = pretrain_data_dir


def _expand(value: Any, subs: Mapping[str, str]) -> Any:
    if isinstance(value, str):
        for k, v in subs.items():
            value = value.replace("{" + k + "}", v)
        return value
    if isinstance(value, list):
        return [_expand(v, subs) for v in value]
    if isinstance(value, dict):
        return {k: _expand(v, subs) for k, v in value.items()}
    return value


#: the keys a recipe / one of its corpus entries may have (anything else is a typo and an error)
RECIPE_KEYS = frozenset({"name", "description", "seed", "split", "max_records_per_corpus", "instruction_mode",
                         "instruction_pools", "schema_augmentation", "sampling", "corpora", "exclude", "generalist"})
CORPUS_KEYS = frozenset({"name", "benchmark", "path", "glob", "data_dir", "split", "max_records", "task", "pool",
                         "options", "weight"})


def load_recipe(path: str | Path | Mapping[str, Any], shared_data: str | None = None,
                pretrain_data: str | None = None) -> dict[str, Any]:
    """Read and validate a recipe (JSON, or YAML with PyYAML); placeholders are expanded."""
    if isinstance(path, Mapping):
        raw, recipe_dir = dict(path), Path.cwd()
    else:
        p = Path(path)
        text = p.read_text(encoding="utf-8")
        if p.suffix in (".yaml", ".yml"):
            try:
                import yaml  # optional dependency: only YAML recipes need it
            except ImportError as exc:  # pragma: no cover
                raise ImportError("YAML recipes need PyYAML (pip install pyyaml); JSON recipes need nothing") from exc
            raw = yaml.safe_load(text)
        else:
            raw = json.loads(text)
        recipe_dir = p.resolve().parent
    sd = Path(shared_data) if shared_data else default_shared_data()
    pd = Path(pretrain_data) if pretrain_data else default_pretrain_data(sd)
    recipe = _expand(raw, {"shared_data": str(sd), "pretrain_data": str(pd), "recipe_dir": str(recipe_dir)})
    if not isinstance(recipe.get("corpora"), list) or not recipe["corpora"]:
        raise ValueError("recipe: 'corpora' must be a non-empty list")
    unknown = sorted(set(recipe) - RECIPE_KEYS)
    if unknown:
        raise ValueError(f"recipe: unknown key(s) {unknown}; a recipe takes {sorted(RECIPE_KEYS)}")
    names = set()
    for i, c in enumerate(recipe["corpora"]):
        if not isinstance(c, Mapping):
            raise ValueError(f"recipe corpus #{i}: expected an object, got {c!r}")
        bad = sorted(set(c) - CORPUS_KEYS)
        if bad:
            raise ValueError(f"recipe corpus #{i}: unknown key(s) {bad}; a corpus entry takes {sorted(CORPUS_KEYS)}")
        if c.get("benchmark") and c["benchmark"] not in BENCHMARKS:
            close = difflib.get_close_matches(c["benchmark"], list(BENCHMARKS), n=3)
            hint = f"; did you mean {close}?" if close else ""
            raise ValueError(f"recipe corpus #{i}: unknown benchmark {c['benchmark']!r}{hint} "
                             f"(registered: {', '.join(sorted(BENCHMARKS))}; python -m processing list)")
        kinds = [k for k in ("benchmark", "path", "glob") if c.get(k)]
        if len(kinds) != 1:
            raise ValueError(f"recipe corpus #{i}: give exactly one of 'benchmark', 'path', 'glob' (got {kinds})")
        if c.get("task"):
            canonical_task(c["task"])
        if "glob" not in kinds:
            name = c.get("name") or c.get("benchmark") or Path(c["path"]).stem
            if name in names:
                raise ValueError(f"recipe: corpus name {name!r} used twice")
            names.add(name)
    mode = recipe.get("instruction_mode", "sample")
    if mode not in INSTRUCTION_MODES:
        raise ValueError(f"recipe: instruction_mode must be one of {INSTRUCTION_MODES}")
    SchemaAugConfig(**(recipe.get("schema_augmentation") or {}))  # validates
    sampling_temperature(recipe)  # validates
    for i, c in enumerate(recipe["corpora"]):
        w = c.get("weight", 1.0)
        if isinstance(w, bool) or not isinstance(w, (int, float)) or not w > 0:
            raise ValueError(f"recipe corpus #{i} ({c.get('name') or c.get('benchmark') or c.get('path')}): "
                             f"'weight' must be a number > 0, got {w!r}")
    return recipe


def sampling_temperature(recipe: Mapping[str, Any]) -> float | None:
    """The recipe's ``"sampling": {"temperature": T}`` (None = every corpus as capped, no re-sampling).

    A corpus of ``n`` records gets a share of the mix proportional to ``weight * n ** T`` (T = 1: proportional to
    size; T = 0.5: square-root sampling, the usual multi-task remedy that keeps small sets from being drowned;
    T = 0: equal shares). The mix keeps the total record count of the capped corpora.
    """
    sampling = recipe.get("sampling")
    if sampling is None:
        return None
    if not isinstance(sampling, Mapping) or set(sampling) - {"temperature"}:
        raise ValueError(f"recipe: 'sampling' must be {{'temperature': T}}, got {sampling!r}")
    t = sampling.get("temperature")
    if isinstance(t, bool) or not isinstance(t, (int, float)) or not 0.0 <= float(t) <= 1.0:
        raise ValueError(f"recipe: sampling.temperature must be a number in [0, 1], got {t!r}")
    return float(t)


def temperature_counts(sizes: Sequence[int], weights: Sequence[float], temperature: float) -> list[int]:
    """Rows per corpus in a mix of ``sum(sizes)`` rows with shares ``weight * n ** temperature`` (largest
    remainder rounding, so the counts add up exactly; every corpus keeps at least one row)."""
    total = sum(sizes)
    raw = [w * (n ** temperature) for n, w in zip(sizes, weights)]
    norm = sum(raw)
    exact = [total * r / norm for r in raw]
    counts = [max(1, int(x)) for x in exact]
    order = sorted(range(len(sizes)), key=lambda i: exact[i] - int(exact[i]), reverse=True)
    k = 0
    while sum(counts) < total:
        counts[order[k % len(order)]] += 1
        k += 1
    while sum(counts) > total:  # only when the max(1, .) floor added rows
        i = max(range(len(counts)), key=lambda j: counts[j])
        counts[i] -= 1
    return counts


def resample_corpus(ds: Any, count: int, seed: int, name: str) -> Any:
    """``count`` rows of ``ds``: a seeded subsample when smaller, else whole copies plus a seeded remainder.
    Repeated rows get ids ``<id>#<copy>`` so each copy draws its own schema / instruction augmentation."""
    n = len(ds)
    rng = random.Random(derive_seed("sampling", seed, name))
    if count <= n:
        return ds.select(sorted(rng.sample(range(n), count)))
    copies, rest = divmod(count, n)
    index = [i for _ in range(copies) for i in range(n)] + sorted(rng.sample(range(n), rest))
    out = ds.select(index)
    copy_of = [k // n for k in range(copies * n)] + [copies] * rest
    return out.map(lambda r, k: {"id": r["id"] if copy_of[k] == 0 else f"{r['id']}#{copy_of[k]}"},
                   with_indices=True, keep_in_memory=True)


# ---------------------------------------------------------------------------------------------------------------
# the mix
# ---------------------------------------------------------------------------------------------------------------


@dataclass
class CorpusInfo:
    name: str
    source: str
    task: str | None
    split: str
    available: int
    used: int
    #: rows of the corpus in the mix after temperature sampling (``used`` before it; equal without sampling)
    sampled: int | None = None
    #: the corpus' share of the mix (``sampled / total``)
    share: float | None = None


@dataclass
class PretrainMix:
    """The mixed training records (Arrow rows + ``corpus``/``task``/``pool``), per-corpus counts and label pool."""

    dataset: Any
    corpora: list[CorpusInfo] = field(default_factory=list)
    label_pool: LabelPool = field(default_factory=LabelPool)
    missing: list[dict[str, str]] = field(default_factory=list)

    def summary(self) -> str:
        lines = ["| corpus | task | split | available | used | in mix | share | source |",
                 "|---|---|---|---|---|---|---|---|"]
        for c in self.corpora:
            sampled = c.used if c.sampled is None else c.sampled
            share = "" if c.share is None else f"{100 * c.share:.1f} %"
            lines.append(f"| {c.name} | {c.task or 'inferred'} | {c.split} | {c.available} | {c.used} | {sampled} | "
                         f"{share} | {c.source} |")
        lines.append(f"| **total** | | | {sum(c.available for c in self.corpora)} | "
                     f"{sum(c.used for c in self.corpora)} | {len(self.dataset)} | | |")
        for m in self.missing:
            lines.append(f"| {m['name']} | MISSING | | | | | | {m['reason']} |")
        return "\n".join(lines)


def _expand_corpora(recipe: Mapping[str, Any]) -> list[dict[str, Any]]:
    out = []
    for c in recipe["corpora"]:
        if c.get("glob"):
            pattern = c["glob"]
            files = sorted(_glob.glob(pattern, recursive=True))
            root = Path(pattern.split("*")[0])
            for f in files:
                fp = Path(f)
                try:
                    rel = fp.parent.relative_to(root)
                    name = str(rel).replace(os.sep, "/") or fp.stem
                except ValueError:
                    name = fp.parent.name
                if name in ("", "."):
                    name = fp.stem
                entry = {k: v for k, v in c.items() if k != "glob"}
                entry.update({"name": name, "path": f})
                out.append(entry)
            if not files:
                out.append({"name": pattern, "missing": f"no file matches {pattern}"})
        else:
            out.append(dict(c))
    return out


def _cache_key(entry: Mapping[str, Any]) -> str:
    opts = entry.get("options") or {}
    suffix = "" if not opts else "__" + "_".join(f"{k}-{v}" for k, v in sorted(opts.items()))
    return f"{entry['benchmark']}{suffix}"


def _load_corpus(entry: Mapping[str, Any], split: str, cache_dir: str | None, shared_data: Path):
    """``(Dataset, source string, registry task or None)`` for one corpus entry."""
    _import_training_stack()
    if entry.get("benchmark"):
        name = entry["benchmark"]
        if name not in BENCHMARKS:
            raise KeyError(f"unknown benchmark {name!r} (python -m processing list)")
        bench = BENCHMARKS[name]
        src = entry.get("data_dir") or str(shared_data / (bench.shared_subdir or name))
        cached = Path(cache_dir) / _cache_key(entry) if cache_dir else None
        if cached is not None and cached.is_dir() and any(cached.glob("*.parquet")):
            dd = load_unified(cached)
        else:
            if not Path(src).exists():
                raise FileNotFoundError(f"benchmark {name}: source folder {src} does not exist")
            dd, _ = convert_benchmark(name, src, progress=False, **dict(entry.get("options") or {}))
            if cached is not None:
                write_unified(dd, cached, fmt="parquet")
        task = bench.task
        source = f"benchmark {name} ({portable_path(src)})"  # sources are saved: no machine paths
    else:
        p = Path(entry["path"])
        if not p.exists():
            raise FileNotFoundError(f"corpus {entry.get('name')}: {p} does not exist")
        dd = load_unified(p)
        task = None
        source = portable_path(p)
        if p.is_file():
            return next(iter(dd.values())), source, task
    sp = pick_split(dd, split)
    if sp is None:
        raise KeyError(f"corpus {entry.get('name')}: no split {split!r} (have {list(dd)})")
    return dd[sp], source, task


def build_pretrain_mix(
    recipe: Mapping[str, Any] | str | Path,
    *,
    seed: int | None = None,
    max_records_per_corpus: int | None = None,
    max_records: int | None = None,
    exclude: Sequence[str] = (),
    cache_dir: str | None = None,
    shared_data: str | None = None,
    pretrain_data: str | None = None,
    strict: bool = False,
) -> PretrainMix:
    """Build the capped, shuffled pre-training mix of a recipe (see the module docstring).

    Args:
        seed: overrides the recipe's seed (capping sample and shuffle).
        max_records_per_corpus: overrides the recipe's cap (paper: 20,000).
        max_records: keep only the first N records of the shuffled mix (smoke runs).
        exclude: corpus names to leave out (e.g. a zero-shot target).
        cache_dir: keep converted benchmarks here (parquet) and reuse them.
        strict: a missing corpus raises; otherwise it is reported in ``PretrainMix.missing`` and skipped.
    """
    _import_training_stack()
    bars = datasets.is_progress_bar_enabled()
    datasets.disable_progress_bars()
    try:
        return _build_pretrain_mix(recipe, seed, max_records_per_corpus, max_records, exclude, cache_dir, shared_data,
                                   pretrain_data, strict)
    finally:
        if bars:
            datasets.enable_progress_bars()


def _build_pretrain_mix(recipe, seed, max_records_per_corpus, max_records, exclude, cache_dir, shared_data,
                        pretrain_data, strict) -> PretrainMix:
    _import_training_stack()
    if not isinstance(recipe, Mapping):
        recipe = load_recipe(recipe, shared_data=shared_data, pretrain_data=pretrain_data)
    sd = Path(shared_data) if shared_data else default_shared_data()
    seed = int(recipe.get("seed", 1227) if seed is None else seed)
    cap_all = max_records_per_corpus if max_records_per_corpus is not None else recipe.get("max_records_per_corpus")
    default_split = recipe.get("split", "train")
    parts, infos, missing = [], [], []
    weights: list[float] = []
    seen_ids: set[str] = set()
    schemas: list[tuple[str, dict]] = []
    for entry in _expand_corpora(recipe):
        name = entry.get("name") or entry.get("benchmark") or Path(entry.get("path", "corpus")).stem
        if name in exclude or entry.get("benchmark") in exclude:
            continue
        if entry.get("missing"):
            if strict:
                raise FileNotFoundError(entry["missing"])
            missing.append({"name": name, "reason": entry["missing"]})
            continue
        split = entry.get("split", default_split)
        try:
            ds, source, reg_task = _load_corpus(entry, split, cache_dir, sd)
        except (FileNotFoundError, KeyError) as exc:
            if strict:
                raise
            logger.warning("pre-training corpus %s skipped: %s", name, exc)
            missing.append({"name": name, "reason": str(exc)})
            continue
        ds = ds.select_columns(list(UNIFIED_FEATURES))
        if ds.features != UNIFIED_FEATURES:
            ds = ds.cast(UNIFIED_FEATURES)
        available = len(ds)
        caps = [c for c in (cap_all, entry.get("max_records")) if c is not None]
        cap = min(caps) if caps else available
        if cap < available:
            rng = random.Random(derive_seed("cap", seed, name))
            ds = ds.select(sorted(rng.sample(range(available), cap)))
        task = canonical_task(entry.get("task") or reg_task)
        ids = [str(x) for x in ds["id"]]
        if len(set(ids)) != len(ids):  # duplicate ids inside the corpus: make them unique with the row index
            ds = ds.map(lambda r, k, n=name: {"id": f"{n}/{k}/{r['id']}"}, with_indices=True, keep_in_memory=True)
            ids = [str(x) for x in ds["id"]]
        elif any(i in seen_ids for i in ids):  # ids shared with an earlier corpus: prefix the corpus name
            ds = ds.map(lambda r, n=name: {"id": f"{n}/{r['id']}"}, keep_in_memory=True)
            ids = [str(x) for x in ds["id"]]
        seen_ids.update(ids)
        n = len(ds)
        ds = ds.add_column("corpus", [name] * n)
        ds = ds.add_column("task", [task or ""] * n)
        ds = ds.add_column("pool", [entry.get("pool") or ""] * n)
        parts.append(ds)
        weights.append(float(entry.get("weight", 1.0)))
        infos.append(CorpusInfo(name=name, source=source, task=task, split=split, available=available, used=n))
        distinct = {json.dumps(s, sort_keys=True) for s in ds["schema"]}
        schemas += [(task or "", json.loads(s)) for s in sorted(distinct)]
    if not parts:
        raise ValueError("the recipe produced no records (every corpus missing or excluded)")
    temperature = sampling_temperature(recipe)
    if temperature is not None:
        counts = temperature_counts([len(p) for p in parts], weights, temperature)
        parts = [resample_corpus(p, k, seed, info.name) for p, k, info in zip(parts, counts, infos)]
    total = sum(len(p) for p in parts)
    for p, info in zip(parts, infos):
        info.sampled, info.share = len(p), len(p) / total
    mix = concatenate_datasets(parts).shuffle(seed=seed)
    mix = mix.flatten_indices(keep_in_memory=True)
    if max_records is not None and len(mix) > max_records:
        mix = mix.select(range(max_records))
    pool = LabelPool()
    for task, schema in schemas:
        pool.add({"id": "_", "schema": schema}, task or None)
    return PretrainMix(dataset=mix, corpora=infos, label_pool=pool, missing=missing)


# ---------------------------------------------------------------------------------------------------------------
# ldnet-pretrain
# ---------------------------------------------------------------------------------------------------------------


@dataclass
class PretrainArguments:
    """The pre-training mix and its augmentation (recipe values unless overridden here)."""

    recipe: str = field(metadata={"help": "Recipe file (examples/recipes/*.json)."})
    max_records_per_corpus: int | None = field(default=None, metadata={"help": "Cap per corpus (paper: 20000)."})
    max_records: int | None = field(default=None, metadata={"help": "Keep the first N records of the mix (smoke)."})
    exclude: str | None = field(default=None, metadata={"help": "Comma-separated corpus names to leave out."})
    instruction_mode: str | None = field(
        default=None, metadata={"help": "sample | default | keep | none ('none' = the paper's w/o Inst.)."}
    )
    schema_shuffle: bool | None = field(default=None, metadata={"help": "Shuffle schema label order per record."})
    negative_rate: float | None = field(default=None, metadata={"help": "Probability of adding negative labels."})
    max_negatives: int | None = field(default=None, metadata={"help": "At most this many negatives per record."})
    drop_nongold_rate: float | None = field(default=None, metadata={"help": "Drop each non-gold label w.p. this."})
    max_length: int = field(default=512, metadata={"help": "Longest input in tokens."})
    overflow: str = field(default="window", metadata={"help": "'window', 'truncate' or 'error' for long texts."})
    cache_dir: str | None = field(default=None, metadata={"help": "Cache converted benchmarks here (parquet)."})
    shared_data: str | None = field(default=None, metadata={"help": "Value of {shared_data} in the recipe."})
    pretrain_data: str | None = field(default=None, metadata={"help": "Value of {pretrain_data} in the recipe."})
    write_mix: str | None = field(default=None, metadata={"help": "Also write the mix (epoch 0 view) as jsonl."})
    strict: bool = field(default=False, metadata={"help": "A missing corpus is an error (default: skipped)."})
    corpus_loss_steps: int = field(
        default=500, metadata={"help": "Log the loss of every corpus (a fixed probe of its records) every N steps; 0 = off."}
    )
    corpus_loss_records: int = field(default=16, metadata={"help": "Probe records per corpus for the per-corpus loss."})


def build_augmenters(recipe: Mapping[str, Any], pargs: PretrainArguments | None, seed: int, pool: LabelPool):
    """``(InstructionSampler, SchemaAugmenter)`` from the recipe with command-line overrides."""
    mode = (pargs.instruction_mode if pargs and pargs.instruction_mode else None) or recipe.get(
        "instruction_mode", "sample"
    )
    cfg = dict(recipe.get("schema_augmentation") or {})
    if pargs is not None:
        for key, val in (
            ("shuffle", pargs.schema_shuffle),
            ("negative_rate", pargs.negative_rate),
            ("max_negatives", pargs.max_negatives),
            ("drop_nongold_rate", pargs.drop_nongold_rate),
        ):
            if val is not None:
                cfg[key] = val
    instructions = InstructionSampler(mode=mode, seed=seed, pools=recipe.get("instruction_pools"))
    return instructions, SchemaAugmenter(SchemaAugConfig(**cfg), pool=pool, seed=seed)


def pretrain_main(argv: list[str] | None = None) -> dict[str, Any]:
    """``ldnet-pretrain``: build the mix of ``--recipe``, pre-train, save model + processor in ``--output_dir``."""
    _import_training_stack()
    parser = ArgumentsParser((ModelArguments, PretrainArguments, LDNetTrainingArguments), prog="ldnet-pretrain")
    argv = sys.argv[1:] if argv is None else list(argv)
    if len(argv) == 1 and argv[0].endswith(".json") and "--" not in argv[0]:
        model_args, pargs, targs = parser.parse_json_file(os.path.abspath(argv[0]))
    else:
        model_args, pargs, targs = parser.parse_args_into_dataclasses(args=argv)
    setup_logging(targs)
    logger.setLevel(targs.get_process_log_level())
    set_seed(targs.seed)

    recipe = load_recipe(pargs.recipe, shared_data=pargs.shared_data, pretrain_data=pargs.pretrain_data)
    exclude = [x.strip() for x in (pargs.exclude or "").split(",") if x.strip()] + list(recipe.get("exclude") or [])
    with targs.main_process_first(desc="building the pre-training mix"):
        mix = build_pretrain_mix(
            recipe,
            seed=targs.seed,
            max_records_per_corpus=pargs.max_records_per_corpus,
            max_records=pargs.max_records,
            exclude=exclude,
            cache_dir=pargs.cache_dir,
            shared_data=pargs.shared_data,
            pretrain_data=pargs.pretrain_data,
            strict=pargs.strict,
        )
    logger.info("pre-training mix (%d records):\n%s", len(mix.dataset), mix.summary())

    model, processor = build_model_and_processor(model_args, pargs.max_length, pargs.overflow)
    logging.getLogger("modeling_ldnet.processing_ldnet").setLevel(logging.ERROR)  # per-record warnings -> epoch report
    instructions, schema_aug = build_augmenters(recipe, pargs, targs.seed, mix.label_pool)
    if instructions.mode == "none" and getattr(model.config, "default_instruction", None) is None:
        model.config.default_instruction = ""  # trained w/o instructions: the pipeline must not add one either
    if recipe.get("generalist"):
        # a generalist is trained to read any label by name: the pipeline does not warn about labels it never saw
        model.config.generalist = True
    train_ds = AugmentedRecordDataset(mix.dataset, processor, instructions, schema_aug, seed=targs.seed)
    if pargs.write_mix and targs.process_index == 0:
        Path(pargs.write_mix).parent.mkdir(parents=True, exist_ok=True)
        with open(pargs.write_mix, "w", encoding="utf-8") as fh:
            fh.writelines(json.dumps(train_ds.record(i, 0), ensure_ascii=False) + "\n" for i in range(len(train_ds)))

    callbacks: list[TrainerCallback] = [EpochCallback(train_ds)]
    time_cb = time_limit_callback(targs)  # --max_minutes
    if time_cb is not None:
        callbacks.append(time_cb)
    if targs.eval_strategy != "no":
        logger.warning("pre-training has no dev set; eval_strategy set to 'no'")
        targs.eval_strategy = "no"
    corpus_cb = None
    if pargs.corpus_loss_steps > 0:
        corpus_cb = CorpusLossCallback(train_ds, per_corpus=pargs.corpus_loss_records,
                                       every_steps=pargs.corpus_loss_steps,
                                       batch_size=targs.per_device_eval_batch_size)
        callbacks.append(corpus_cb)
    trainer = LDNetTrainer(model=model, args=targs, train_dataset=train_ds, processing_class=processor,
                           callbacks=callbacks)
    if corpus_cb is not None:
        corpus_cb.trainer = trainer
    metrics = train_and_save(trainer, time_cb)
    if corpus_cb is not None:
        metrics.update(corpus_cb.last)
    metrics["train_records"] = len(train_ds)
    trainer.log_metrics("train", metrics)
    trainer.save_metrics("train", metrics)
    trainer.save_state()
    if trainer.is_world_process_zero():
        info = {
            "recipe_file": portable_path(pargs.recipe),
            "recipe": recipe,  # as resolved: bench/pretrain_protocol.py rebuilds the mix from it
            "excluded": exclude,
            "corpora": portable([c.__dict__ for c in mix.corpora]),
            "missing": mix.missing,
            "instruction_mode": instructions.mode,
            "schema_augmentation": schema_aug.config.to_dict(),
            "label_pool": mix.label_pool.to_dict(),
            "seed": targs.seed,
            "base_model": portable_model_id(model_args.model_name_or_path) or portable_path(model_args.model_name_or_path),
            "metrics": metrics,
            "encoding_report": str(processor.report),
        }
        Path(targs.output_dir).mkdir(parents=True, exist_ok=True)
        (Path(targs.output_dir) / "pretrain_info.json").write_text(json.dumps(info, indent=1, ensure_ascii=False) + "\n")
        (Path(targs.output_dir) / "pretrain_mix.md").write_text(mix.summary() + "\n")
        # the card / config.json record what ldnet-train records (one code path, modelcard_ldnet): the labels per
        # task type of the mix, the corpora with their records in the mix, the final train loss
        pool = mix.label_pool
        update_model_card(
            targs.output_dir, trainer.model.config, processor,
            schema={t: {**pool.lists.get(t, {}), **pool.dicts.get(t, {})} for t in dict.fromkeys([*pool.lists,
                                                                                               *pool.dicts])},
            training_data=[{"name": c.name, "split": c.split, "task": c.task or "inferred",
                            "records": c.used if c.sampled is None else c.sampled} for c in mix.corpora],
            metrics=card_metrics(metrics),
        )
    return metrics


pretrain_cli = console_entry("ldnet-pretrain", pretrain_main)


__all__ = [
    "AugmentedRecordDataset",
    "CorpusInfo",
    "CorpusLossCallback",
    "EpochCallback",
    "PretrainArguments",
    "PretrainMix",
    "build_augmenters",
    "build_pretrain_mix",
    "default_pretrain_data",
    "default_shared_data",
    "load_recipe",
    "resample_corpus",
    "sampling_temperature",
    "temperature_counts",
    "pretrain_cli",
    "pretrain_main",
]
