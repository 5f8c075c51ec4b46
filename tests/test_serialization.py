"""Checkpoints: safetensors round trips (also through torch), atomic writes, refusals."""
import os

import numpy as np
import pytest

import tinymm as tm
from tinymm import nn
from tinymm.serialization import CheckpointError
from helpers import TORCH_REASON, torch

needs_torch = pytest.mark.skipif(torch is None, reason=TORCH_REASON)


def test_round_trip_keeps_values_dtypes_and_names(tmp_path):
    sd = {"a": tm.randn(3, 4), "b": tm.arange(5), "c": tm.ones(2, dtype=tm.float64)}
    p = tmp_path / "ck.safetensors"
    tm.save(sd, p)
    back = tm.load(p)
    assert list(back) == ["a", "b", "c"] or set(back) == set(sd)
    for k in sd:
        assert back[k].dtype == sd[k].dtype
        np.testing.assert_array_equal(back[k].detach().numpy(), sd[k].detach().numpy())


def test_truncated_file_is_refused_with_its_name(tmp_path):
    p = tmp_path / "ck.safetensors"
    tm.save({"w": tm.randn(100, 100)}, p)
    data = p.read_bytes()
    p.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match=r"ck.safetensors is truncated"):
        tm.load(p)


def test_foreign_files_are_refused(tmp_path):
    p = tmp_path / "model.pkl"
    p.write_bytes(b"\x80\x04\x95" + os.urandom(64))  # looks like a pickle
    with pytest.raises(CheckpointError, match="model.pkl is not a safetensors file"):
        tm.load(p)
    q = tmp_path / "tiny"
    q.write_bytes(b"abc")
    with pytest.raises(CheckpointError, match="only 3 bytes"):
        tm.load(q)
    with pytest.raises(FileNotFoundError, match="no such file"):
        tm.load(tmp_path / "missing.safetensors")


def test_saved_files_get_the_usual_permissions(tmp_path):
    p = tmp_path / "ck.safetensors"
    old = os.umask(0o022)
    try:
        tm.save({"w": tm.ones(3)}, p)
    finally:
        os.umask(old)
    assert (p.stat().st_mode & 0o777) == 0o644


def test_write_is_atomic_and_leaves_no_temp_files(tmp_path):
    p = tmp_path / "ck.safetensors"
    tm.save({"w": tm.ones(3)}, p)
    tm.save({"w": tm.zeros(3)}, p)
    assert [f.name for f in tmp_path.iterdir()] == ["ck.safetensors"]
    np.testing.assert_array_equal(tm.load(p)["w"].detach().numpy(), 0)


@needs_torch
@pytest.mark.parametrize("kind", ["linear", "layernorm", "embedding"])
def test_state_dict_round_trips_through_torch(tmp_path, kind):
    from safetensors.torch import load_file, save_file

    make = {
        "linear": (lambda: nn.Linear(6, 4), lambda: torch.nn.Linear(6, 4), np.random.default_rng(0).standard_normal((3, 6)).astype(np.float32)),
        "layernorm": (lambda: nn.LayerNorm(6), lambda: torch.nn.LayerNorm(6), np.random.default_rng(0).standard_normal((3, 6)).astype(np.float32)),
        "embedding": (lambda: nn.Embedding(9, 4), lambda: torch.nn.Embedding(9, 4), np.array([[1, 8, 3]])),
    }[kind]
    ours, theirs, x = make
    a = ours()
    if kind == "layernorm":
        nn.init.uniform_(a.weight, 0.5, 1.5)
        nn.init.uniform_(a.bias, -1, 1)
    tm.save(a.state_dict(), tmp_path / "a.safetensors")
    t = theirs()
    t.load_state_dict(load_file(str(tmp_path / "a.safetensors")))  # strict by default
    # Same weights bit for bit; outputs agree to rounding (the two libraries' GEMMs sum in different orders).
    for k, v in a.state_dict().items():
        np.testing.assert_array_equal(t.state_dict()[k].detach().numpy(), v.detach().numpy())
    np.testing.assert_allclose(t(torch.tensor(x)).detach().numpy(), a(tm.tensor(x)).detach().numpy(), rtol=1e-6, atol=1e-6)
    save_file(t.state_dict(), str(tmp_path / "t.safetensors"))
    b = ours()
    b.load_state_dict(tm.load(tmp_path / "t.safetensors"))
    np.testing.assert_array_equal(b(tm.tensor(x)).detach().numpy(), a(tm.tensor(x)).detach().numpy())
