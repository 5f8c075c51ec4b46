"""Checkpoints at the edges: what save refuses, what load refuses (with the reason), 0-d
tensors, bfloat16, symlinks, read-only files, and a save killed with SIGKILL."""
import json
import os
import signal
import struct
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

import tinymm as tm
from tinymm import nn
from tinymm.serialization import CheckpointError

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _write_raw(path, header: dict, data: bytes = b""):
    raw = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + data)


# ----------------------------------------------------------------------------- 0-d tensors


def test_zero_dim_tensors_keep_their_shape(tmp_path):
    p = tmp_path / "s.safetensors"
    tm.save({"t": tm.tensor(2.5), "a": np.int64(7), "v": tm.ones(3)}, p)
    back = tm.load(p)
    assert back["t"].shape == () and back["t"].item() == 2.5
    assert back["a"].shape == () and back["a"].item() == 7
    header = json.loads(p.read_bytes()[8 : 8 + struct.unpack("<Q", p.read_bytes()[:8])[0]])
    assert header["t"]["shape"] == []


class _Clip(nn.Module):
    def __init__(self):
        super().__init__()
        self.proj = nn.Linear(3, 2)
        self.logit_scale = nn.Parameter(tm.tensor(np.log(1 / 0.07), dtype=tm.float32))


def test_module_with_a_zero_dim_parameter_loads_its_own_checkpoint(tmp_path):
    a = _Clip()
    a.logit_scale._data[...] = 3.25
    tm.save(a.state_dict(), tmp_path / "clip.safetensors")
    b = _Clip()
    b.load_state_dict(tm.load(tmp_path / "clip.safetensors"))
    assert b.logit_scale.shape == () and b.logit_scale.item() == 3.25
    np.testing.assert_array_equal(b.proj.weight.detach().numpy(), a.proj.weight.detach().numpy())


# ----------------------------------------------------------------------------- save refuses


def test_save_refuses_the_reserved_metadata_key(tmp_path):
    with pytest.raises(ValueError, match="__metadata__.*reserved"):
        tm.save({"__metadata__": tm.ones(2)}, tmp_path / "x.safetensors")
    assert not (tmp_path / "x.safetensors").exists()


@pytest.mark.parametrize("dtype", [np.uint16, np.uint32, np.uint64, np.complex64, np.complex128, object, "U3"])
def test_save_refuses_dtypes_load_cannot_read(tmp_path, dtype):
    arr = np.zeros(3, dtype=dtype)
    with pytest.raises(TypeError, match=r"tensor 'w' has dtype .* use one of"):
        tm.save({"w": arr}, tmp_path / "x.safetensors")
    assert not (tmp_path / "x.safetensors").exists()


@pytest.mark.parametrize("bad, match", [
    ([("w", np.ones(2))], "holds a dict of name -> tensor, got list"),
    ({1: np.ones(2)}, "keys must be strings"),
    ({"w": [1.0, 2.0]}, "value for 'w' is a list"),
    ({"w": "abc"}, "value for 'w' is a str"),
])
def test_save_names_a_bad_state_dict(tmp_path, bad, match):
    with pytest.raises(TypeError, match=match):
        tm.save(bad, tmp_path / "x.safetensors")


def test_every_savable_dtype_round_trips(tmp_path):
    sd = {str(np.dtype(d)): np.arange(6).reshape(2, 3).astype(d)
          for d in (np.float64, np.float32, np.float16, np.int64, np.int32, np.int16, np.int8, np.uint8, bool)}
    sd["big_endian"] = np.arange(4, dtype=">f4")
    sd["strided"] = np.arange(12.0).reshape(3, 4)[:, ::2]
    sd["empty"] = np.zeros((0, 5), np.float32)
    tm.save(sd, tmp_path / "all.safetensors")
    back = tm.load(tmp_path / "all.safetensors")
    for k, v in sd.items():
        assert back[k].shape == v.shape, k
        np.testing.assert_array_equal(back[k].detach().numpy(), v)
    assert back["big_endian"].dtype == tm.float32


# ----------------------------------------------------------------------------- load names the problem


def test_bfloat16_loads_as_float32(tmp_path):
    vals = np.array([1.0, -2.5, 3.140625, 0.0], np.float32)  # exactly representable in bfloat16
    bf16 = (vals.view(np.uint32) >> 16).astype("<u2")
    p = tmp_path / "bf16.safetensors"
    _write_raw(p, {"w": {"dtype": "BF16", "shape": [2, 2], "data_offsets": [0, 8]}}, bf16.tobytes())
    w = tm.load(p)["w"]
    assert w.dtype == tm.float32 and w.shape == (2, 2)
    np.testing.assert_array_equal(w.detach().numpy().ravel(), vals)


@pytest.mark.parametrize("entry, match", [
    ({"dtype": ["F32"], "shape": [1], "data_offsets": [0, 4]}, "dtype must be a string"),
    ({"dtype": "F32", "shape": ["a", "b"], "data_offsets": [0, 4]}, "shape must be a list of non-negative integers"),
    ({"dtype": "F32", "shape": [-1], "data_offsets": [0, 4]}, "shape must be a list of non-negative integers"),
    ({"dtype": "F32", "shape": 4, "data_offsets": [0, 4]}, "shape must be a list"),
    ({"dtype": "F32", "shape": [1], "data_offsets": [4, 0]}, "data_offsets must be"),
    ({"dtype": "F32", "shape": [1], "data_offsets": ["0", "4"]}, "data_offsets must be"),
    ({"dtype": "U16", "shape": [2], "data_offsets": [0, 4]}, "unsupported dtype U16"),
    ({"dtype": "F32", "shape": [1]}, "missing data_offsets"),
    ("F32", "malformed"),
    ({"dtype": "F32", "shape": [10**12, 10**12], "data_offsets": [0, 4]}, "needs"),
])
def test_malformed_entries_are_refused_by_name(tmp_path, entry, match):
    p = tmp_path / "bad.safetensors"
    _write_raw(p, {"w": entry}, b"\0" * 4)
    with pytest.raises(CheckpointError, match=match):
        tm.load(p)


def test_overlapping_and_gapped_data_are_refused(tmp_path):
    p = tmp_path / "o.safetensors"
    _write_raw(p, {"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
                   "b": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}}, b"\0" * 8)
    with pytest.raises(CheckpointError, match="overlaps"):
        tm.load(p)
    _write_raw(p, {"a": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}}, b"\0" * 8)
    with pytest.raises(CheckpointError, match="gap"):
        tm.load(p)


def test_bad_metadata_and_paths(tmp_path):
    p = tmp_path / "m.safetensors"
    _write_raw(p, {"__metadata__": {"a": 1}})
    with pytest.raises(CheckpointError, match="__metadata__ must be an object of strings"):
        tm.load(p)
    with pytest.raises(IsADirectoryError):
        tm.load(tmp_path)
    with pytest.raises(TypeError, match="expected a file path"):
        tm.load(3.5)


# ----------------------------------------------------------------------------- load_state_dict


def test_load_state_dict_refuses_a_list_of_pairs_like_torch():
    m = nn.Linear(2, 2)
    with pytest.raises(TypeError, match=r"Expected state_dict to be dict-like, got <class 'list'>.*dict\(pairs\)"):
        m.load_state_dict(list(m.state_dict().items()))
    m.load_state_dict(dict(m.state_dict().items()))  # what the message suggests works


def test_load_state_dict_refuses_strings_and_complex_values():
    m = nn.Linear(2, 2)
    sd = dict(m.state_dict())
    with pytest.raises(TypeError, match="weight: expected a real-valued"):
        m.load_state_dict({**sd, "weight": np.full((2, 2), "x")})
    with pytest.raises(TypeError, match="weight: expected a real-valued"):
        m.load_state_dict({**sd, "weight": np.zeros((2, 2), np.complex64)})


# ----------------------------------------------------------------------------- the file system


def test_read_only_destination_is_refused_and_untouched(tmp_path):
    p = tmp_path / "ro.safetensors"
    tm.save({"w": tm.ones(2)}, p)
    before = p.read_bytes()
    os.chmod(p, 0o444)
    with pytest.raises(PermissionError, match="read-only"):
        tm.save({"w": tm.zeros(2)}, p)
    assert p.read_bytes() == before and (p.stat().st_mode & 0o777) == 0o444
    assert [f.name for f in tmp_path.iterdir()] == ["ro.safetensors"]


def test_overwrite_keeps_the_files_mode(tmp_path):
    p = tmp_path / "m.safetensors"
    tm.save({"w": tm.ones(2)}, p)
    os.chmod(p, 0o600)
    tm.save({"w": tm.zeros(2)}, p)
    assert (p.stat().st_mode & 0o777) == 0o600


def test_saving_through_a_symlink_writes_its_target(tmp_path):
    real = tmp_path / "store" / "real.safetensors"
    real.parent.mkdir()
    tm.save({"w": tm.ones(2)}, real)
    link = tmp_path / "link.safetensors"
    link.symlink_to(real)
    tm.save({"w": tm.zeros(2)}, link)
    assert link.is_symlink() and os.readlink(link) == str(real)
    np.testing.assert_array_equal(tm.load(real)["w"].detach().numpy(), 0)


def test_folder_targets_and_file_parents_are_refused(tmp_path):
    with pytest.raises(IsADirectoryError):
        tm.save({"w": tm.ones(2)}, tmp_path)
    (tmp_path / "afile").write_text("x")
    with pytest.raises(NotADirectoryError, match="afile"):
        tm.save({"w": tm.ones(2)}, tmp_path / "afile" / "ck.safetensors")


_KILLED_SAVE = textwrap.dedent("""
    import os, sys, time
    import tinymm as tm
    ready = sys.argv[2]
    real_fsync = os.fsync
    def stall(fd):  # the bytes are written; stop before the rename and wait to be killed
        real_fsync(fd)
        open(ready, "w").close()
        time.sleep(60)
    os.fsync = stall
    tm.save({"w": tm.zeros(1000)}, sys.argv[1])
""")


def test_a_save_killed_with_sigkill_leaves_the_old_file_and_its_temp_is_cleaned(tmp_path):
    p = tmp_path / "ck.safetensors"
    tm.save({"w": tm.ones(1000)}, p)
    ready = tmp_path / "ready"
    env = {**os.environ, "PYTHONPATH": ROOT + os.pathsep + os.environ.get("PYTHONPATH", "")}
    child = subprocess.Popen([sys.executable, "-c", _KILLED_SAVE, str(p), str(ready)], env=env)
    try:
        deadline = time.monotonic() + 120
        while not ready.exists():
            assert child.poll() is None, "the child save ended before it could be killed"
            assert time.monotonic() < deadline, "the child save never reached the write"
            time.sleep(0.05)
        child.send_signal(signal.SIGKILL)
        assert child.wait(timeout=30) == -signal.SIGKILL
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    ready.unlink()
    leftovers = [f.name for f in tmp_path.iterdir() if f.name.endswith(".tmp")]
    assert len(leftovers) == 1 and leftovers[0].startswith(f".ck.safetensors.{child.pid}.")
    np.testing.assert_array_equal(tm.load(p)["w"].detach().numpy(), 1)  # the old file is intact
    tm.save({"w": tm.full((1000,), 2.0)}, p)  # the next save removes the dead save's temp file
    assert [f.name for f in tmp_path.iterdir()] == ["ck.safetensors"]
    np.testing.assert_array_equal(tm.load(p)["w"].detach().numpy(), 2)
