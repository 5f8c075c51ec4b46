"""``save_pretrained`` / ``from_pretrained``: a model as a folder of ``config.json`` + ``model.safetensors``.

``config.json`` names the class (``{"class": "VQAModel", "config": {...}}``); the class must be
registered (the ``@register`` decorator, applied to every model in :mod:`tinymm.models`), and
its ``config`` is the keyword arguments its constructor takes, so loading builds the same
architecture and then loads the weights strictly. Nothing is pickled; loading runs no code
from the folder. A folder whose config names an unknown class, or whose weights do not fit,
is refused with the path in the message.
"""
from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

from tinymm._atomic import atomic_write
from tinymm.serialization import CheckpointError, load, save

MODEL_CLASSES: dict[str, type] = {}


def register(cls):
    """Class decorator: make ``cls`` loadable by name from a ``config.json``."""
    MODEL_CLASSES[cls.__name__] = cls
    return cls


def config_of(model) -> dict:
    """The constructor arguments a registered model was built with (its ``config`` dataclass)."""
    cfg = getattr(model, "config", None)
    if cfg is None or not dataclasses.is_dataclass(cfg):
        raise TypeError(f"save_pretrained: {type(model).__name__} has no config dataclass (model.config)")
    return dataclasses.asdict(cfg)


def save_pretrained(model, folder) -> Path:
    """Write ``folder/config.json`` and ``folder/model.safetensors``; return the folder."""
    name = type(model).__name__
    if MODEL_CLASSES.get(name) is not type(model):
        raise TypeError(f"save_pretrained: {name} is not a registered tinymm model class")
    folder = Path(os.fspath(folder))
    folder.mkdir(parents=True, exist_ok=True)
    doc = {"class": name, "config": config_of(model), "format": "tinymm-pretrained", "version": 1}
    save(model.state_dict(), folder / "model.safetensors")
    atomic_write(folder / "config.json", lambda f: f.write(json.dumps(doc, indent=1).encode()))
    return folder


def read_json(path, missing: str, who: str):
    """The JSON document at ``path``: FileNotFoundError(``missing``) if absent, CheckpointError if corrupt."""
    path = Path(os.fspath(path))
    if not path.is_file():
        raise FileNotFoundError(missing)
    try:
        return json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise CheckpointError(f"{who}{path} is not valid JSON ({e})") from None


def read_config(folder) -> dict:
    folder = Path(os.fspath(folder))
    path = folder / "config.json"
    doc = read_json(path, f"from_pretrained: {folder} has no config.json", "from_pretrained: ")
    if not isinstance(doc, dict) or not isinstance(doc.get("class"), str) or not isinstance(doc.get("config"), dict):
        raise CheckpointError(f"from_pretrained: {path} must hold {{'class': name, 'config': {{...}}}}")
    return doc


def from_pretrained(folder, device: str = "cpu", expected: type | None = None):
    """Rebuild the model saved in ``folder`` and load its weights (strictly)."""
    folder = Path(os.fspath(folder))
    doc = read_config(folder)
    cls = MODEL_CLASSES.get(doc["class"])
    if cls is None:
        raise CheckpointError(f"from_pretrained: {folder / 'config.json'} names an unknown model class "
                              f"{doc['class']!r}; known: {', '.join(sorted(MODEL_CLASSES))}")
    if expected is not None and not issubclass(cls, expected):
        raise CheckpointError(f"from_pretrained: {folder} holds a {doc['class']}, not a {expected.__name__}")
    try:
        model = cls(**doc["config"])
    except TypeError as e:
        raise CheckpointError(f"from_pretrained: {folder / 'config.json'} does not fit {doc['class']}: {e}") from None
    weights = folder / "model.safetensors"
    if not weights.is_file():
        raise FileNotFoundError(f"from_pretrained: {folder} has no model.safetensors")
    try:
        model.load_state_dict(load(weights))
    except (KeyError, ValueError, RuntimeError) as e:
        raise CheckpointError(f"from_pretrained: the weights in {weights} do not fit {doc['class']}: {e}") from None
    return model.to(device)


class PretrainedMixin:
    """``model.save_pretrained(dir)`` and ``Class.from_pretrained(dir)`` on every model."""

    def save_pretrained(self, folder) -> Path:
        return save_pretrained(self, folder)

    @classmethod
    def from_pretrained(cls, folder, device: str = "cpu"):
        return from_pretrained(folder, device=device, expected=cls)
