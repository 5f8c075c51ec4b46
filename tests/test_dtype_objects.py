"""``tinymm.dtype`` against ``torch.dtype``: every dtype's attributes, ``str``/``repr`` (``tinymm.``
in place of ``torch.``), equality and hashing, copies and pickles, and the idioms PyTorch code
writes with them; plus the NumPy side: a tinymm dtype goes wherever NumPy takes a dtype."""
from __future__ import annotations

import copy
import pickle

import numpy as np
import pytest

import tinymm as tm
from helpers import TORCH_REASON, torch
from tinymm import dtype_objects

needs_torch = pytest.mark.skipif(torch is None, reason=TORCH_REASON)

# every dtype tinymm names, by the name torch and tinymm share (aliases included)
NAMES = ["float16", "half", "float32", "float", "float64", "double", "int8", "int16", "short", "int32", "int",
         "int64", "long", "uint8", "bool"]
NUMPY = {"float16": np.float16, "float32": np.float32, "float64": np.float64, "int8": np.int8, "int16": np.int16,
         "int32": np.int32, "int64": np.int64, "uint8": np.uint8, "bool": np.bool_}


@needs_torch
@pytest.mark.parametrize("name", NAMES)
def test_attributes_str_and_repr_as_torch(name):
    ours, theirs = getattr(tm, name), getattr(torch, name)
    assert isinstance(ours, tm.dtype) and type(ours) is tm.dtype
    for attr in ("is_floating_point", "is_complex", "is_signed", "itemsize", "abbr"):
        assert getattr(ours, attr) == getattr(theirs, attr), attr
    assert str(ours) == repr(ours) == f"{ours}" == str(theirs).replace("torch.", "tinymm.")
    assert repr(type(ours)) == repr(type(theirs)).replace("torch.", "tinymm.")
    assert ours.to_real() is ours and str(theirs.to_real()) == str(theirs)


@needs_torch
def test_to_complex_and_to_real_as_torch():
    assert tm.float32.to_complex().to_real() is tm.float32 and str(tm.float64.to_complex()) == "tinymm.complex128"
    assert str(torch.float32.to_complex()) == "torch.complex64"
    for name in ("int64", "bool", "uint8"):
        with pytest.raises(RuntimeError, match="Unknown Complex ScalarType"):
            getattr(torch, name).to_complex()
        with pytest.raises(RuntimeError, match="Unknown Complex ScalarType"):
            getattr(tm, name).to_complex()
    with pytest.raises(RuntimeError, match="complex32"):  # torch's complex32 has no NumPy counterpart
        tm.float16.to_complex()


@needs_torch
def test_aliases_are_the_same_objects_and_tensors_return_them():
    for a, b in (("float", "float32"), ("half", "float16"), ("double", "float64"), ("long", "int64"),
                 ("int", "int32"), ("short", "int16")):
        assert getattr(tm, a) is getattr(tm, b) and getattr(torch, a) is getattr(torch, b)
    for name, np_type in NUMPY.items():
        t = tm.zeros(2, dtype=getattr(tm, name))
        assert t.dtype is getattr(tm, name) and tm.from_numpy(np.zeros(2, np_type)).dtype is getattr(tm, name)
        assert str(t.dtype) == str(torch.zeros(2, dtype=getattr(torch, name)).dtype).replace("torch.", "tinymm.")
    assert tm.get_default_dtype() is tm.float32 and str(tm.get_default_dtype()) == "tinymm.float32"


@needs_torch
def test_equality_and_hashing_among_dtypes_as_torch():
    for a in NAMES:
        for b in NAMES:
            assert (getattr(tm, a) == getattr(tm, b)) == (getattr(torch, a) == getattr(torch, b)), (a, b)
            assert (getattr(tm, a) != getattr(tm, b)) == (getattr(torch, a) != getattr(torch, b)), (a, b)
    assert tm.float32 != None and not (tm.float32 == None)  # noqa: E711  (NumPy reads None as float64)
    assert tm.float64 != None  # noqa: E711
    with pytest.raises(TypeError):
        tm.float32 < tm.float64  # noqa: B015  (dtypes are unordered, as torch's)
    with pytest.raises(TypeError):
        torch.float32 < torch.float64  # noqa: B015
    assert len({tm.float32, tm.float, tm.int64, tm.long}) == 2


def test_equal_to_numpy_and_hashed_as_numpy_both_ways():
    for name, np_type in NUMPY.items():
        d, nd = getattr(tm, name), np.dtype(np_type)
        assert d == nd and nd == d and d == np_type and np_type == d
        assert d != nd.name and nd.name != d  # a string is no dtype, as torch.float32 != "float32"
        assert not (d != nd) and not (nd != d)
        assert hash(d) == hash(nd)
        assert {nd: "x"}[d] == "x" and {d: "y"}[nd] == "y"
        assert nd in {d} and d in {nd} and d in (np.dtype(np.float16), nd)
    assert tm.float32 != np.float64 and tm.float32 != "int64" and tm.float32 != "tinymm.float32"


def test_numpy_takes_tinymm_dtypes_where_it_takes_its_own():
    f = tm.float32
    assert np.dtype(f) == np.float32 and type(np.dtype(f)) is type(np.dtype(np.float32))
    assert np.zeros(2, f).dtype == np.float32 and np.arange(3, dtype=f).dtype == np.float32
    assert np.ones(2).astype(f).dtype == np.float32 and np.array([1, 2], dtype=tm.int8).dtype == np.int8
    assert np.result_type(f, np.float64) == np.float64 and np.result_type(tm.int8, tm.uint8) == np.int16
    assert np.finfo(f).eps == np.finfo(np.float32).eps and np.iinfo(tm.int16).max == 2**15 - 1
    assert np.issubdtype(f, np.floating) and np.can_cast(tm.int8, f)


def test_numpy_attributes_are_the_numpy_dtypes():
    for name, np_type in NUMPY.items():
        d, nd = getattr(tm, name), np.dtype(np_type)
        assert d.dtype is nd
        for attr in ("kind", "itemsize", "type", "name", "char", "str", "num", "alignment", "byteorder",
                     "isnative", "fields", "descr"):
            assert getattr(d, attr) == getattr(nd, attr), (name, attr)
    with pytest.raises(AttributeError):
        tm.float32.no_such_attribute  # noqa: B018


def test_copies_and_pickles_are_the_interned_object():
    for name in NAMES:
        d = getattr(tm, name)
        assert copy.copy(d) is d and copy.deepcopy(d) is d and copy.deepcopy([d])[0] is d
        for protocol in range(pickle.HIGHEST_PROTOCOL + 1):
            assert pickle.loads(pickle.dumps(d, protocol)) is d
    assert pickle.loads(pickle.dumps(tm.dtype)) is tm.dtype


def test_users_cannot_make_dtypes():
    with pytest.raises(TypeError, match="cannot create 'tinymm.dtype' instances"):
        tm.dtype()
    with pytest.raises(TypeError, match="cannot create"):
        tm.dtype(np.dtype(np.float32))
    assert dtype_objects.as_dtype(np.float32) is tm.float32 and dtype_objects.as_dtype("int64") is tm.int64
    assert dtype_objects.as_dtype(tm.bool) is tm.bool and dtype_objects.as_dtype(np.dtype("?")) is tm.bool


def _idioms(lib):
    """What PyTorch code typically asks of dtypes, asked of ``lib`` (torch or tinymm)."""
    x, i = lib.ones(2, 3), lib.arange(4)
    out = []
    for t in (x, i, x.half(), x.double(), x > 0):
        if t.dtype.is_floating_point:
            out.append("floating")
        out.append(t.dtype in (lib.float16, lib.float32))
        out.append({lib.float32: "f", lib.int64: "l"}.get(t.dtype, "?"))
        out.append(lib.zeros(3, dtype=t.dtype).dtype == t.dtype)
        out.append(i.to(t.dtype).dtype is t.dtype and x.to(t).dtype is t.dtype)
        out.append((t.dtype.is_signed, t.dtype.itemsize * t.numel(), t.dtype == lib.bool))
        y = t.float() if not t.dtype.is_floating_point else t
        out.append(str(y.dtype).split(".")[-1])
    out.append(isinstance(x.dtype, lib.dtype) and not isinstance("float32", lib.dtype))
    return out


@needs_torch
def test_pytorch_idioms():
    assert _idioms(tm) == _idioms(torch)


@needs_torch
def test_finfo_iinfo_and_type_strings_as_torch():
    for name in ("float16", "float32", "float64"):
        assert tm.finfo(getattr(tm, name)).dtype == torch.finfo(getattr(torch, name)).dtype == name
    for name in ("int8", "int16", "int32", "int64", "uint8"):
        assert tm.iinfo(getattr(tm, name)).dtype == torch.iinfo(getattr(torch, name)).dtype == name
    assert tm.finfo().dtype == "float32"
    for name in ("float32", "float64", "int64", "bool"):
        assert tm.zeros(1, dtype=getattr(tm, name)).type() == torch.zeros(1, dtype=getattr(torch, name)).type()
    assert tm.FloatTensor.dtype is tm.float32 and tm.zeros(2).type(tm.LongTensor).dtype is tm.int64


def test_factories_and_to_take_every_dtype_spelling():
    for spec in (tm.float64, np.dtype(np.float64), np.float64, "float64"):
        assert tm.zeros(2, dtype=spec).dtype is tm.float64 and tm.tensor([1], dtype=spec).dtype is tm.float64
        assert tm.ones(2).to(dtype=spec).dtype is tm.float64
        if not isinstance(spec, str):  # a string given alone is a device, as in torch
            assert tm.ones(2).to(spec).dtype is tm.float64 and tm.ones(2).to("cpu", spec).dtype is tm.float64
    tm.set_default_dtype(np.float64)
    try:
        assert tm.get_default_dtype() is tm.float64 and tm.zeros(1).dtype is tm.float64
    finally:
        tm.set_default_dtype(tm.float32)
    with pytest.raises(TypeError):
        tm.set_default_dtype(tm.int64)


@needs_torch
def test_dtypes_in_pt_files_are_torchs(tmp_path):
    tm.save({"d": tm.float16, "l": [tm.long, tm.bool]}, tmp_path / "ours.pt")
    assert torch.load(tmp_path / "ours.pt") == {"d": torch.float16, "l": [torch.int64, torch.bool]}
    back = tm.load(tmp_path / "ours.pt")
    assert back["d"] is tm.float16 and back["l"][0] is tm.int64 and back["l"][1] is tm.bool
    torch.save({"d": torch.float64}, tmp_path / "theirs.pt")
    assert tm.load(tmp_path / "theirs.pt")["d"] is tm.float64


def test_byte_orders_and_dtypes_tinymm_does_not_name_still_wrap():
    big = tm.from_numpy(np.arange(3, dtype=">f4"))
    assert isinstance(big.dtype, tm.dtype) and big.dtype == np.dtype(">f4") and big.dtype != tm.float32
    assert str(big.dtype) == "tinymm.>f4"
    u16 = dtype_objects.as_dtype(np.uint16)
    assert str(u16) == "tinymm.uint16" and not u16.is_signed and u16.itemsize == 2
