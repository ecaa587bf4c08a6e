"""Teacher scores for model-transfer learning (paper §3.3, eq 19; SPEC §4.6, §7.3, §8.3-8.4).

A trained LDNet (the *teacher*) is run over a dataset and, per encoded feature (one per record, or one per window
of a windowed record), its gated decision logits ``[3, n, n]`` cropped to the feature's true length ``n`` are stored:

* ``scores-00000.safetensors``, ... : fp16 tensors, one per feature, keyed by :func:`trainers.data.feature_key`
  (the record id; ``"<id>#<k>"`` for window ``k > 0``);
* ``manifest.json``: per key ``{"shard", "length", "input_hash", "record_id"}`` plus provenance (model, data, split,
  label-drop mode, dtype). ``input_hash`` is :func:`trainers.data.input_hash` of the teacher's ``input_ids``.

Unlike the reference dump (SPEC §8.3: every record of a batch stored under the *first* record's id, §8.4: tensors
include padding and are cropped to the batch length), each feature is stored under its own key, with its own
scores, without padding.

:class:`TeacherScoreStore` loads a folder; :meth:`TeacherScoreStore.lookup` returns the scores of a key only when the
student's input hashes the same (same tokenizer, instruction, schema order and max length); otherwise the feature gets
no distillation term and the reason is counted (``missing`` / ``hash_mismatch``).
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections import Counter, OrderedDict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from tqdm.auto import tqdm

from .data import as_records, feature_key, input_hash
from .loading import load_model_and_processor  # noqa: F401 - the one loader, re-exported under its former home

logger = logging.getLogger(__name__)

MANIFEST_NAME = "manifest.json"
FORMAT_NAME = "ldnet-teacher-scores"
FORMAT_VERSION = 1
#: fp16 storage: values are clamped into the finite fp16 range.
FP16_LIMIT = 6.0e4

#: Per-feature teacher status codes carried in batches as ``teacher_status``.
TEACHER_OK, TEACHER_MISSING, TEACHER_HASH_MISMATCH = 0, 1, 2
STATUS_NAMES = {TEACHER_OK: "ok", TEACHER_MISSING: "missing", TEACHER_HASH_MISMATCH: "hash_mismatch"}


class TeacherScoreWriter:
    """Accumulates per-feature score tensors and writes them as size-bounded fp16 safetensors shards."""

    def __init__(self, out_dir: str | Path, max_shard_bytes: int = 256 * 2**20, metadata: dict | None = None):
        self.out_dir = Path(out_dir)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self.max_shard_bytes = int(max_shard_bytes)
        self.metadata = dict(metadata or {})
        self.entries: dict[str, dict] = {}
        self.shards: list[str] = []
        self._buffer: dict[str, torch.Tensor] = {}
        self._buffer_bytes = 0

    def add(self, key: str, scores: torch.Tensor, ids_hash: str, record_id: Any) -> None:
        if key in self.entries or key in self._buffer:
            raise ValueError(f"teacher scores: duplicate key {key!r} (record ids must be unique)")
        t = scores.detach().float().clamp(-FP16_LIMIT, FP16_LIMIT).to(torch.float16).cpu().contiguous()
        if t.dim() != 3 or t.shape[1] != t.shape[2]:
            raise ValueError(f"teacher scores for {key!r}: expected [C, n, n], got {tuple(t.shape)}")
        self._buffer[key] = t
        self._buffer_bytes += t.numel() * t.element_size()
        self.entries[key] = {"shard": None, "length": int(t.shape[-1]), "input_hash": ids_hash, "record_id": str(record_id)}
        if self._buffer_bytes >= self.max_shard_bytes:
            self._flush()

    def _flush(self) -> None:
        if not self._buffer:
            return
        name = f"scores-{len(self.shards):05d}.safetensors"
        save_file(self._buffer, str(self.out_dir / name), metadata={"format": "pt", "content": FORMAT_NAME})
        for key in self._buffer:
            self.entries[key]["shard"] = name
        self.shards.append(name)
        self._buffer, self._buffer_bytes = {}, 0

    def close(self) -> dict:
        self._flush()
        manifest = {
            "format": FORMAT_NAME,
            "version": FORMAT_VERSION,
            "dtype": "float16",
            "scores": "gated decision logits [C, n, n] (LDNetOutput.logits cropped to the feature length)",
            "num_entries": len(self.entries),
            "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
            **self.metadata,
            "shards": self.shards,
            "entries": self.entries,
        }
        tmp = self.out_dir / (MANIFEST_NAME + ".tmp")
        tmp.write_text(json.dumps(manifest, ensure_ascii=False, indent=1))
        os.replace(tmp, self.out_dir / MANIFEST_NAME)
        return manifest


@torch.no_grad()
def compute_teacher_scores(
    model: Any,
    processor: Any,
    records: Any,
    out_dir: str | Path,
    batch_size: int = 16,
    device: str | torch.device | None = None,
    max_shard_bytes: int = 256 * 2**20,
    metadata: dict | None = None,
    progress: bool = False,
) -> dict:
    """Run ``model`` over ``records`` and store each feature's gated logits under its own key.

    Records are batched by length (sorted) and every feature is cropped to its own length before storage, so a
    record's entry never depends on which other records shared its batch. Returns the manifest.
    """
    records = as_records(records)
    device = torch.device(device) if device is not None else next(model.parameters()).device
    was_training = model.training
    model.eval()
    meta = {
        "label_drop_mode": getattr(model.config, "label_drop_mode", None),
        "max_length": getattr(processor, "max_length", None),
        "num_records": len(records),
        **(metadata or {}),
    }
    writer = TeacherScoreWriter(out_dir, max_shard_bytes=max_shard_bytes, metadata=meta)
    order = sorted(range(len(records)), key=lambda i: len(records[i]["text"]) + len(records[i]["bg"]), reverse=True)
    n_batches = (len(order) + batch_size - 1) // batch_size
    it = range(n_batches)
    if progress:
        it = tqdm(it, desc="teacher scores")
    for bi in it:
        chunk = [records[i] for i in order[bi * batch_size : (bi + 1) * batch_size]]
        enc = processor(chunk, return_tensors="pt")
        out = model(input_ids=enc["input_ids"].to(device), attention_mask=enc["attention_mask"].to(device))
        seen: dict[int, int] = {}
        for f, m in enumerate(enc["meta"]):
            window = seen.get(m.record_index, 0)
            seen[m.record_index] = window + 1
            n = m.length
            ids = enc["input_ids"][f, :n].tolist()
            writer.add(feature_key(m.record_id, window), out.logits[f, :, :n, :n], input_hash(ids), m.record_id)
    model.train(was_training)
    return writer.close()


class TeacherScoreStore:
    """Read access to a teacher-score folder written by :func:`compute_teacher_scores`.

    Args:
        path: the folder (holding ``manifest.json`` and the shards).
        max_cached_shards: shards kept in memory at once (each is loaded whole on first use).

    ``counts`` (a ``Counter`` of ``ok`` / ``missing`` / ``hash_mismatch``) tallies :meth:`lookup` results in this
    process; the trainer keeps its own (all-process) tally from the batches' ``teacher_status``.
    """

    def __init__(self, path: str | Path, max_cached_shards: int = 4):
        self.path = Path(path)
        manifest_path = self.path / MANIFEST_NAME
        if not manifest_path.is_file():
            raise FileNotFoundError(f"no teacher-score manifest at {manifest_path}")
        self.manifest = json.loads(manifest_path.read_text())
        if self.manifest.get("format") != FORMAT_NAME:
            raise ValueError(f"{manifest_path}: not a {FORMAT_NAME} manifest")
        self.entries: dict[str, dict] = self.manifest["entries"]
        self.max_cached_shards = max(1, int(max_cached_shards))
        self._shards: OrderedDict[str, dict[str, torch.Tensor]] = OrderedDict()
        self.counts: Counter = Counter()

    def __len__(self) -> int:
        return len(self.entries)

    def __contains__(self, key: object) -> bool:
        return key in self.entries

    def keys(self):
        return self.entries.keys()

    def _shard(self, name: str) -> dict[str, torch.Tensor]:
        shard = self._shards.get(name)
        if shard is None:
            shard = load_file(str(self.path / name))
            self._shards[name] = shard
            while len(self._shards) > self.max_cached_shards:
                self._shards.popitem(last=False)
        else:
            self._shards.move_to_end(name)
        return shard

    def get(self, key: str) -> torch.Tensor | None:
        """The stored ``[C, n, n]`` fp16 tensor of ``key`` (no hash check), or None."""
        entry = self.entries.get(key)
        if entry is None:
            return None
        return self._shard(entry["shard"])[key]

    def lookup(self, key: str, input_ids: Sequence[int] | None = None, ids_hash: str | None = None):
        """``(status, tensor | None)``: ``TEACHER_OK`` only if ``key`` is stored and its input hash matches."""
        entry = self.entries.get(key)
        if entry is None:
            self.counts["missing"] += 1
            return TEACHER_MISSING, None
        h = ids_hash if ids_hash is not None else (input_hash(input_ids) if input_ids is not None else None)
        if h is None or h != entry["input_hash"] or (input_ids is not None and len(input_ids) != entry["length"]):
            self.counts["hash_mismatch"] += 1
            return TEACHER_HASH_MISMATCH, None
        self.counts["ok"] += 1
        return TEACHER_OK, self._shard(entry["shard"])[key]

    def __repr__(self) -> str:
        return f"TeacherScoreStore({str(self.path)!r}, entries={len(self)}, shards={len(self.manifest['shards'])})"
