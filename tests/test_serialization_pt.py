"""``tinymm.save``/``load`` in PyTorch's zip format: any checkpoint object round-trips, files go
both ways between tinymm and torch, and loading unpickles only weights unless told otherwise."""
import collections
import io
import pickle
import zipfile

import numpy as np
import pytest

import tinymm as tm
from tinymm import nn
from tinymm.serialization import CheckpointError

from helpers import TORCH_REASON, torch

needs_torch = pytest.mark.skipif(torch is None, reason=TORCH_REASON)


class TinyNet(nn.Module):  # module level, so that pickle finds the class (as torch.save(model) needs)
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(3, 2)
        self.bn = nn.BatchNorm1d(2)

    def forward(self, x):
        return self.bn(self.fc(x))


def _checkpoint():
    tm.manual_seed(0)
    net = TinyNet()
    opt = tm.optim.SGD(net.parameters(), lr=0.1, momentum=0.9)
    net(tm.randn(4, 3)).sum().backward()
    opt.step()
    return net, opt, {
        "epoch": 7, "loss": 0.25, "best": None, "name": "run-1", "history": [1.5, 2, (3, "x")],
        "model": net.state_dict(), "optimizer": opt.state_dict(),
        "zero_d": tm.tensor(2.5), "empty": tm.zeros(0, 3), "mask": tm.tensor([True, False]),
        "ints": tm.arange(6).reshape(2, 3), "f64": tm.randn(2, dtype=tm.float64),
        "half": tm.ones(3, dtype=tm.float16), "view": tm.arange(10.0)[2:8:2], "t": tm.arange(6.0).reshape(2, 3).t(),
        "weight": net.fc.weight, "grad_leaf": tm.ones(2, requires_grad=True),
    }


def _assert_same(a, b):
    assert type(a) is type(b) or (isinstance(a, tm.Tensor) and isinstance(b, tm.Tensor)), (type(a), type(b))
    if isinstance(a, tm.Tensor):
        assert a.dtype == b.dtype and a.shape == b.shape and a.requires_grad == b.requires_grad
        np.testing.assert_array_equal(a.detach().numpy(), b.detach().numpy())
    elif isinstance(a, dict):
        assert list(a) == list(b)
        for k in a:
            _assert_same(a[k], b[k])
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b)
        for x, y in zip(a, b):
            _assert_same(x, y)
    else:
        assert a == b


def test_a_checkpoint_dict_round_trips_and_resumes(tmp_path):
    net, opt, ck = _checkpoint()
    p = tmp_path / "ck.pt"
    tm.save(ck, p)
    assert zipfile.is_zipfile(p) and "ck/data.pkl" in zipfile.ZipFile(p).namelist()
    back = tm.load(p)
    _assert_same(ck, back)
    assert isinstance(back["weight"], nn.Parameter) and back["weight"].requires_grad
    assert isinstance(back["model"], collections.OrderedDict)
    net2, opt2 = TinyNet(), None
    net2.load_state_dict(back["model"])
    opt2 = tm.optim.SGD(net2.parameters(), lr=0.5, momentum=0.9)
    opt2.load_state_dict(back["optimizer"])
    assert opt2.param_groups[0]["lr"] == 0.1
    x = tm.randn(5, 3)
    net.eval(), net2.eval()
    np.testing.assert_array_equal(net(x).detach().numpy(), net2(x).detach().numpy())


def test_file_objects_and_a_whole_module_with_weights_only_false(tmp_path):
    buf = io.BytesIO()
    tm.save({"w": tm.ones(2, 2)}, buf)
    buf.seek(0)
    np.testing.assert_array_equal(tm.load(buf)["w"].detach().numpy(), np.ones((2, 2), np.float32))
    net, _, _ = _checkpoint()
    tm.save(net, tmp_path / "model.pth")
    with pytest.raises(pickle.UnpicklingError, match=r"weights_only=True refuses the global .*TinyNet.*weights_only=False"):
        tm.load(tmp_path / "model.pth")
    whole = tm.load(tmp_path / "model.pth", weights_only=False)
    assert isinstance(whole, TinyNet)
    _assert_same(dict(net.state_dict()), dict(whole.state_dict()))


def test_weights_only_refuses_code_and_numpy_globals(tmp_path):
    class Boom:
        def __reduce__(self):
            return (print, ("this must not run",))

    tm.save({"x": Boom()}, tmp_path / "evil.pt")
    with pytest.raises(pickle.UnpicklingError, match=r"refuses the global builtins.print"):
        tm.load(tmp_path / "evil.pt")
    tm.save({"a": np.arange(3)}, tmp_path / "np.pt")
    with pytest.raises(pickle.UnpicklingError, match=r"refuses the global numpy"):
        tm.load(tmp_path / "np.pt")
    np.testing.assert_array_equal(tm.load(tmp_path / "np.pt", weights_only=False)["a"], np.arange(3))


def _with_location(src, dst, location: bytes):
    z = zipfile.ZipFile(src)
    with zipfile.ZipFile(dst, "w") as out:
        for name in z.namelist():
            data = z.read(name)
            if name.endswith("data.pkl"):
                data = data.replace(b"X\x03\x00\x00\x00cpu", b"X" + len(location).to_bytes(4, "little") + location)
            out.writestr(name, data)


@pytest.mark.skipif(tm.cuda.is_available(), reason="checks the error raised where no CUDA device is usable")
def test_tensors_saved_on_cuda_need_map_location_here(tmp_path):
    tm.save({"w": tm.arange(3.0)}, tmp_path / "cpu.pt")
    _with_location(tmp_path / "cpu.pt", tmp_path / "gpu.pt", b"cuda:0")
    with pytest.raises(RuntimeError, match=r"saved on cuda:0.*map_location='cpu'"):
        tm.load(tmp_path / "gpu.pt")
    for where in ("cpu", tm.device("cpu"), {"cuda:0": "cpu"}):
        w = tm.load(tmp_path / "gpu.pt", map_location=where)["w"]
        assert w.device.type == "cpu" and w.tolist() == [0.0, 1.0, 2.0]


def test_format_is_chosen_by_the_path_and_bad_files_are_named(tmp_path):
    tm.save({"w": tm.ones(2)}, tmp_path / "a.safetensors")
    assert not zipfile.is_zipfile(tmp_path / "a.safetensors")
    with pytest.raises(TypeError, match=r"\.safetensors file holds a dict of name -> tensor.*\.pt path"):
        tm.save({"epoch": 1, "w": tm.ones(2)}.items(), tmp_path / "b.safetensors")
    with pytest.raises(TypeError, match=r"metadata= is stored in \.safetensors files only"):
        tm.save({"w": tm.ones(2)}, tmp_path / "c.pt", metadata={"a": "b"})
    with pytest.raises(TypeError, match=r"save: expected a file path or a binary file object, got int"):
        tm.save({"w": tm.ones(2)}, 3)
    (tmp_path / "legacy.pt").write_bytes(pickle.dumps({"a": 1}, protocol=2))
    with pytest.raises(CheckpointError, match=r"not a safetensors file or a PyTorch zip checkpoint: it is a bare pickle"):
        tm.load(tmp_path / "legacy.pt")
    with zipfile.ZipFile(tmp_path / "other.zip", "w") as z:
        z.writestr("readme.txt", "hi")
    with pytest.raises(pickle.UnpicklingError, match=r"without one <name>/data.pkl"):
        tm.load(tmp_path / "other.zip")
    (tmp_path / "junk.pt").write_bytes(b"\x00" * 3)
    with pytest.raises(CheckpointError, match="not a safetensors file"):
        tm.load(tmp_path / "junk.pt")
    with pytest.raises(TypeError, match=r"map_location= or device=, not both"):
        tm.load(tmp_path / "a.safetensors", "cpu", device="cpu")


@needs_torch
def test_tinymm_checkpoints_load_in_torch_with_weights_only(tmp_path):
    _, _, ck = _checkpoint()
    tm.save(ck, tmp_path / "ck.pt")
    theirs = torch.load(tmp_path / "ck.pt", weights_only=True)
    for k in ("zero_d", "empty", "mask", "ints", "f64", "half", "view", "t", "grad_leaf"):
        assert str(theirs[k].dtype).replace("torch.", "tinymm.") == str(ck[k].dtype), k
        np.testing.assert_array_equal(theirs[k].detach().numpy() if not theirs[k].requires_grad else theirs[k].detach().numpy(),
                                      ck[k].detach().numpy())
        assert theirs[k].requires_grad == ck[k].requires_grad
    assert isinstance(theirs["weight"], torch.nn.Parameter)
    assert theirs["epoch"] == 7 and theirs["history"] == [1.5, 2, (3, "x")] and theirs["best"] is None
    ref = torch.nn.Sequential()
    ref.fc, ref.bn = torch.nn.Linear(3, 2), torch.nn.BatchNorm1d(2)
    ref.load_state_dict(theirs["model"])  # every key, shape and dtype fits torch's own modules
    opt = torch.optim.SGD(ref.parameters(), lr=0.3, momentum=0.9)
    opt.load_state_dict(theirs["optimizer"])


@needs_torch
def test_torch_checkpoints_load_here(tmp_path):
    g = torch.Generator().manual_seed(0)
    m = torch.nn.Linear(3, 2)
    obj = {
        "sd": m.state_dict(), "param": m.weight, "n": 3, "l": [1.5, "a", None, (1, 2)],
        "dtype": torch.float16, "device": torch.device("cpu"), "size": torch.Size([2, 3]),
        "bf16": torch.tensor([1.0, -2.5, 3.140625], dtype=torch.bfloat16),
        "view": torch.arange(10.0)[2:8:2], "t": torch.randn(3, 4, generator=g).t(), "bool": torch.tensor([True, False]),
        "i8": torch.tensor([-3, 4], dtype=torch.int8), "u8": torch.tensor([250], dtype=torch.uint8),
        "zero_d": torch.tensor(5), "empty": torch.zeros(2, 0), "shared": [torch.ones(2)] * 2,
    }
    torch.save(obj, tmp_path / "theirs.pt")
    back = tm.load(tmp_path / "theirs.pt")
    assert back["n"] == 3 and back["l"] == [1.5, "a", None, (1, 2)]
    assert back["dtype"] == tm.float16 and str(back["device"]) == "cpu" and back["size"] == (2, 3)
    assert isinstance(back["sd"], collections.OrderedDict) and back["sd"]._metadata == {"": {"version": 1}}
    assert isinstance(back["param"], nn.Parameter) and back["param"].requires_grad
    assert back["bf16"].dtype == tm.float32
    np.testing.assert_array_equal(back["bf16"].detach().numpy(), obj["bf16"].float().detach().numpy())
    for k in ("view", "t", "bool", "i8", "u8", "zero_d", "empty"):
        assert back[k].shape == tuple(obj[k].shape) and str(back[k].dtype) == str(obj[k].dtype).replace("torch.", "tinymm.")
        np.testing.assert_array_equal(back[k].detach().numpy(), obj[k].detach().numpy())
    assert back["shared"][0] is back["shared"][1]  # one object pickled once stays one object
    lin = nn.Linear(3, 2)
    lin.load_state_dict(back["sd"])
    x = np.random.default_rng(0).standard_normal((4, 3)).astype(np.float32)
    np.testing.assert_allclose(lin(tm.tensor(x)).detach().numpy(), m(torch.tensor(x)).detach().numpy(), rtol=1e-6)
