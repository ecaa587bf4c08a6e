"""Several LoRA adapters on one LDNet base (issue 28): :class:`AdapterRegistry`.

The base is loaded once; each adapter folder (``ldnet-train --lora``) is added to it with peft
(``PeftModel.load_adapter``) and a request picks one by name. Two modes:

* ``"switch"`` (default): one model in memory; :meth:`AdapterRegistry.use` makes the adapter active with peft's
  ``set_adapter`` (LoRA matrices and the heads, which are peft ``modules_to_save``) and the adapter's config values
  (trained labels, default instruction, calibrated thresholds). LoRA runs unmerged, so each forward pays the
  low-rank products; a lock serialises requests of different adapters (batch within one adapter).
* ``"merged"``: one merged copy of the base per adapter (``merge_and_unload``): plain-model speed, the base's
  memory once per adapter. ``bench/adapters.py`` measures both.

An unknown adapter name is an :class:`UnknownAdapterError` naming it (and the loaded ones); an adapter that fails
to load (corrupt file, another base) is reported in :attr:`AdapterRegistry.failed` and does not stop the others.
"""

from __future__ import annotations

import contextlib
import copy
import logging
import os
import threading
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from peft import PeftModel
from torch import nn

from modeling_ldnet.pipeline_ldnet import UniversalIEPipeline
from trainers.adapters import (
    ADAPTER_CONFIG_KEYS,
    AdapterError,
    apply_adapter_config,
    base_ldnet,
    load_adapter_model,
    read_adapter_folder,
)
from trainers.loading import load_model_and_processor

logger = logging.getLogger(__name__)

MODES = ("switch", "merged")


class UnknownAdapterError(KeyError):
    """A request named an adapter the registry does not serve (never loaded, or failed to load)."""

    def __str__(self) -> str:  # KeyError would quote the whole message
        return str(self.args[0])


def parse_adapter_flags(values: list[str] | None) -> dict[str, str]:
    """``["name=path", ...]`` (repeatable ``--adapter name=path``) -> ``{name: path}``; a value without ``=``, an
    empty name or a repeated name is a ``ValueError`` naming it."""
    out: dict[str, str] = {}
    for value in values or []:
        name, sep, path = value.partition("=")
        if not sep or not name.strip() or not path.strip():
            raise ValueError(f"--adapter: expected name=path, got {value!r}")
        if name.strip() in out:
            raise ValueError(f"--adapter: name {name.strip()!r} given twice")
        out[name.strip()] = path.strip()
    return out


class AdapterRegistry:
    """Adapters by name on one base LDNet folder.

    Args:
        base: the base LDNet folder (every adapter must have been trained on it: hidden size / vocabulary checked).
        adapters: ``{name: adapter folder}``.
        mode: ``"switch"`` (peft ``set_adapter`` on one model) or ``"merged"`` (a merged copy per adapter).
        device: where the model(s) run.

    Attributes:
        failed: ``{name: error message}`` of adapters that could not be loaded.
    """

    def __init__(self, base: str | os.PathLike, adapters: Mapping[str, str | os.PathLike], *, mode: str = "switch",
                 device: str | None = None):
        if mode not in MODES:
            raise ValueError(f"AdapterRegistry: mode must be one of {MODES}, got {mode!r}")
        self.base_path, self.mode, self.device = str(base), mode, device
        self.base, self.base_processor = load_model_and_processor(base, require_ldnet=True)
        self.base.eval()
        self._base_config = copy.deepcopy(self.base.config)  # restored before an adapter's values are applied
        self._lock = threading.RLock()
        self._models: dict[str, nn.Module] = {}
        self._processors: dict[str, Any] = {}
        self._infos: dict[str, dict[str, Any]] = {}
        self._paths: dict[str, str] = {}
        self.failed: dict[str, str] = {}
        self._peft: PeftModel | None = None
        for name, path in adapters.items():
            try:
                self._add(name, path)
            except (AdapterError, OSError, ValueError, RuntimeError) as exc:
                self.failed[name] = f"{type(exc).__name__}: {exc}"
                logger.error("adapter %r (%s) not loaded: %s", name, path, self.failed[name])
        if self._peft is not None and device is not None:
            self._peft.to(device)

    def _add(self, name: str, path: str | os.PathLike) -> None:
        config, info = read_adapter_folder(path)  # every file checked before peft touches the model
        if self.mode == "merged":
            peft_model, processor = load_adapter_model(path, copy.deepcopy(self.base), adapter_name=name)
            model = peft_model.merge_and_unload().eval()
            if self.device is not None:
                model.to(self.device)
        else:
            target = self._peft if self._peft is not None else self.base
            model, processor = load_adapter_model(path, target, adapter_name=name, apply_config=False)
            self._peft = model
        self._models[name] = model
        self._processors[name] = processor if processor is not None else self.base_processor
        self._infos[name] = {"rank": config.r, "alpha": config.lora_alpha,
                             "trained_labels": (info.get("config") or {}).get("trained_labels"), **info}
        self._paths[name] = str(path)

    @property
    def names(self) -> list[str]:
        """The adapters that can be requested, in load order."""
        return list(self._models)

    def info(self) -> dict[str, Any]:
        """What ``/info`` lists: the base, every loaded adapter (path, rank, labels) and the failed ones."""
        return {
            "base": self.base_path,
            "mode": self.mode,
            "adapters": {n: {"path": self._paths[n], "rank": self._infos[n]["rank"],
                             "alpha": self._infos[n]["alpha"], "trained_labels": self._infos[n]["trained_labels"]}
                         for n in self._models},
            "failed": dict(self.failed),
        }

    def check(self, name: str) -> None:
        """An :class:`UnknownAdapterError` naming ``name`` unless it is served."""
        if name in self._models:
            return
        if name in self.failed:
            raise UnknownAdapterError(f"adapter {name!r} failed to load: {self.failed[name]}")
        raise UnknownAdapterError(f"unknown adapter {name!r} (loaded: {', '.join(self._models) or 'none'})")

    @contextlib.contextmanager
    def use(self, name: str) -> Iterator[tuple[nn.Module, Any]]:
        """``with registry.use(name) as (model, processor):`` -- the adapter active for the block. In ``"switch"``
        mode the block holds the registry's lock (one adapter at a time on the shared base)."""
        self.check(name)
        if self.mode == "merged":
            yield self._models[name], self._processors[name]
            return
        with self._lock:
            model = self._models[name]
            if model.active_adapter != name:
                model.set_adapter(name)
            inner = base_ldnet(model)
            # config values are the adapter's alone: the base's first, then the adapter's on top
            for key in ADAPTER_CONFIG_KEYS:
                setattr(inner.config, key, getattr(self._base_config, key, None))
            apply_adapter_config(model, self._infos[name])
            yield model, self._processors[name]


    @contextlib.contextmanager
    def _base_active(self) -> Iterator[nn.Module]:
        """The base alone (adapters off) for the block: the shared ``PeftModel`` under ``disable_adapter`` in
        ``"switch"`` mode, the untouched base in ``"merged"`` mode."""
        if self.mode == "merged" or self._peft is None:
            yield self.base
            return
        with self._lock, self._peft.disable_adapter():
            for key in ADAPTER_CONFIG_KEYS:
                setattr(base_ldnet(self._peft).config, key, getattr(self._base_config, key, None))
            yield self._peft

    def pipeline(self, name: str | None, device: str | None = None) -> UniversalIEPipeline:
        """A ``universal-ie`` pipeline of adapter ``name`` (``None``: the base alone) over the shared model: its
        ``preprocess`` / ``forward`` / ``postprocess`` run with that adapter active, so the server's batcher can
        batch the requests of one adapter (one batcher per pipeline)."""
        if name is not None:
            self.check(name)
        active = (lambda: self.use(name)) if name is not None else self._base_active
        with active() as entered:
            model, processor = entered if name is not None else (entered, self.base_processor)
            return AdapterPipeline(model=model, processor=copy.deepcopy(processor), device=device or self.device,
                                   activate=active)


class AdapterPipeline(UniversalIEPipeline):
    """``UniversalIEPipeline`` whose steps run inside ``activate()`` (the registry's ``use(name)``): the shared
    model holds the right adapter, config values included, for every step (the lock makes that exclusive)."""

    def __init__(self, *args: Any, activate: Any, **kwargs: Any) -> None:
        self._activate = activate
        super().__init__(*args, **kwargs)

    def preprocess(self, *args: Any, **kwargs: Any) -> Any:
        with self._activate():
            return super().preprocess(*args, **kwargs)

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        with self._activate():
            return super().forward(*args, **kwargs)

    def postprocess(self, *args: Any, **kwargs: Any) -> Any:
        with self._activate():
            return super().postprocess(*args, **kwargs)


def adapter_folder_bytes(path: str | os.PathLike) -> int:
    """Bytes of all files in a folder (an adapter folder or a full model folder)."""
    return sum(p.stat().st_size for p in Path(path).rglob("*") if p.is_file())


__all__ = ["MODES", "AdapterPipeline", "AdapterRegistry", "UnknownAdapterError", "adapter_folder_bytes", "parse_adapter_flags"]
