"""Training checkpoints: one safetensors file holds everything a resumed run needs.

A checkpoint is ``<name>.safetensors`` with

- the model's state dict under ``model/<key>``;
- the optimizer's per-parameter arrays (``exp_avg``, ``momentum_buffer``, ...) under
  ``optim/<index>/<name>``;
- in the file's metadata, one JSON document (key ``"trainer"``): the optimizer's param groups
  and scalar state, the scheduler's state, the RNG states, epoch, step, best score and history.

Because weights, optimizer arrays and the JSON travel in one file that is written atomically
(temp file, then rename: ``tinymm._atomic``), a run killed mid-save leaves the previous
checkpoint whole, and a checkpoint can never pair weights with another epoch's counters. A
``<name>.json`` copy of the JSON part is written beside it for people to read; loading never
trusts it. Nothing is pickled: loading a file runs no code.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from tinymm import backend
from tinymm._atomic import atomic_write
from tinymm.serialization import CheckpointError, load, load_metadata, save
from tinymm.tensor import Tensor

FORMAT = "tinymm-trainer-checkpoint"
VERSION = 1


def rng_state() -> dict:
    """The states of the generators training draws from (tinymm's RNG and NumPy's global one)."""
    legacy = np.random.get_state()
    return {
        "tinymm": backend.rng("cpu").bit_generator.state,
        "numpy_legacy": [legacy[0], legacy[1].tolist(), int(legacy[2]), int(legacy[3]), float(legacy[4])],
    }


def set_rng_state(state: dict) -> None:
    backend.rng("cpu").bit_generator.state = state["tinymm"]
    name, keys, pos, has_gauss, gauss = state["numpy_legacy"]
    np.random.set_state((name, np.asarray(keys, dtype=np.uint32), pos, has_gauss, gauss))


def _split_optimizer_state(opt_state: dict) -> tuple[dict, dict]:
    """Optimizer ``state_dict`` → (arrays keyed ``optim/i/name``, JSON-able remainder)."""
    arrays, scalars = {}, {}
    for i, entry in opt_state["state"].items():
        kept = {}
        for k, v in entry.items():
            if isinstance(v, Tensor) or (hasattr(v, "shape") and getattr(v, "ndim", 0) > 0):
                arrays[f"optim/{i}/{k}"] = v
            else:
                kept[k] = v.item() if hasattr(v, "item") else v
        scalars[str(i)] = kept
    return arrays, {"param_groups": opt_state["param_groups"], "scalars": scalars}


def save_checkpoint(path, *, model, optimizer, scheduler=None, epoch: int, step: int, extra: dict | None = None) -> Path:
    """Write a checkpoint of the whole training state to ``path`` (a ``.safetensors`` file)."""
    path = Path(path)
    tensors = {f"model/{k}": v for k, v in model.state_dict().items()}
    opt_arrays, opt_json = _split_optimizer_state(optimizer.state_dict())
    tensors.update(opt_arrays)
    doc = {
        "format": FORMAT,
        "version": VERSION,
        "model_class": type(model).__name__,
        "epoch": int(epoch),
        "step": int(step),
        "optimizer": opt_json,
        "scheduler": None if scheduler is None else _plain_state(scheduler.state_dict()),
        "rng": rng_state(),
        **(extra or {}),
    }
    text = json.dumps(doc, default=_json_default)
    save(tensors, path, metadata={"trainer": text})
    readable = json.dumps({k: v for k, v in doc.items() if k != "rng"}, indent=1, default=_json_default)
    atomic_write(path.with_suffix(".json"), lambda f: f.write(readable.encode()))
    return path


def _plain_state(state: dict) -> dict:
    # A LambdaLR's functions cannot be stored (and are not data): the resumed run rebuilds them.
    return {k: v for k, v in state.items() if not callable(v)}


def _json_default(v):
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, np.ndarray):
        return v.tolist()
    raise TypeError(f"checkpoint: cannot store a {type(v).__name__} in the JSON part")


def read_checkpoint(path) -> tuple[dict, dict]:
    """(tensors, JSON document) of a checkpoint; CheckpointError names the file if it is not one."""
    path = os.fspath(path)
    meta = load_metadata(path)
    if "trainer" not in meta:
        raise CheckpointError(f"{path}: not a tinymm training checkpoint (no 'trainer' metadata)")
    try:
        doc = json.loads(meta["trainer"])
    except json.JSONDecodeError as e:
        raise CheckpointError(f"{path}: the checkpoint's JSON part is corrupt ({e})") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not a tinymm training checkpoint (format {doc.get('format')!r})")
    if doc.get("version") != VERSION:
        raise CheckpointError(f"{path}: checkpoint version {doc.get('version')!r}, this tinymm reads {VERSION}")
    return load(path), doc


def restore_checkpoint(path, *, model, optimizer=None, scheduler=None, restore_rng: bool = True) -> dict:
    """Load a checkpoint into ``model`` (and optimizer, scheduler, RNGs); return its JSON part."""
    tensors, doc = read_checkpoint(path)
    if doc["model_class"] != type(model).__name__:
        raise CheckpointError(
            f"{os.fspath(path)}: the checkpoint holds a {doc['model_class']}, the model is a {type(model).__name__}"
        )
    weights = {k[len("model/"):]: v for k, v in tensors.items() if k.startswith("model/")}
    try:
        model.load_state_dict(weights)
    except (KeyError, ValueError, RuntimeError) as e:
        raise CheckpointError(f"{os.fspath(path)}: the weights do not fit this model: {e}") from None
    if optimizer is not None:
        opt = doc["optimizer"]
        state: dict = {int(i): dict(s) for i, s in opt["scalars"].items()}
        for k, v in tensors.items():
            if k.startswith("optim/"):
                _, i, name = k.split("/", 2)
                state.setdefault(int(i), {})[name] = v
        optimizer.load_state_dict({"state": state, "param_groups": opt["param_groups"]})
    if scheduler is not None and doc.get("scheduler") is not None:
        scheduler.load_state_dict(doc["scheduler"])
    if restore_rng:
        set_rng_state(doc["rng"])
    return doc
