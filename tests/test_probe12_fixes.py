"""Gaps probe12 found running detection / dense-prediction / optical-flow code, each checked
against PyTorch: linspace's last bit (PyTorch's two-sided fused formula), affine_grid's base
grid built from it, and grid_sample's zero gradient on the clamped borders."""
import numpy as np
import pytest

import tinymm
from helpers import TORCH_REASON, torch
from tinymm.nn import functional as F

pytestmark = pytest.mark.skipif(torch is None, reason=TORCH_REASON)
TF = torch.nn.functional if torch is not None else None

ENDS = [(-1, 1), (0, 1), (-3, 7.5), (2, -2), (0.1, 0.9), (-5, -5), (1e-3, 1e4), (0.3, -1e-7)]


@pytest.mark.parametrize("dtype", ["float32", "float64", "float16", "int64", "int32"])
def test_linspace_matches_torch_bit_for_bit(dtype):
    # torch fills the first half start + step*i and the second half end - step*(n-1-i), fused;
    # numpy's float64-then-cast differs in the last bit at many (start, end, n)
    mismatches = []
    for n in list(range(0, 70)) + [97, 113, 1000, 4097]:
        for start, end in ENDS:
            if dtype == "float16" and max(abs(start), abs(end)) > 1e3:
                continue
            want = torch.linspace(start, end, n, dtype=getattr(torch, dtype)).numpy()
            got = tinymm.linspace(start, end, n, dtype=getattr(tinymm, dtype)).numpy()
            assert got.dtype == want.dtype and got.shape == want.shape
            if not np.array_equal(got, want):
                mismatches.append((n, start, end))
    assert not mismatches, f"{len(mismatches)} differ, e.g. {mismatches[:5]}"


def test_linspace_takes_zero_dim_tensors_and_keeps_its_errors():
    got = tinymm.linspace(tinymm.tensor(0.5), tinymm.tensor(3.0), 7).numpy()
    np.testing.assert_array_equal(got, torch.linspace(torch.tensor(0.5), torch.tensor(3.0), 7).numpy())
    with pytest.raises(RuntimeError, match="non-negative"):
        tinymm.linspace(0, 1, -2)
    with pytest.raises(RuntimeError, match="bool"):
        tinymm.linspace(0, 1, 3, dtype=tinymm.bool)


@pytest.mark.parametrize("align_corners", [False, True])
def test_affine_grid_base_grid_is_torchs_bit_for_bit(align_corners):
    # identity maps: the grid is the base grid itself, so any last-bit difference shows
    for size in [(1, 1, 4, 5), (2, 3, 7, 9), (1, 2, 17, 23), (1, 1, 1, 6), (1, 1, 3, 11, 7)]:
        nd = len(size) - 2
        theta = np.tile(np.eye(nd, nd + 1, dtype=np.float32), (size[0], 1, 1))
        want = TF.affine_grid(torch.tensor(theta), list(size), align_corners=align_corners).numpy()
        got = F.affine_grid(tinymm.tensor(theta), size, align_corners=align_corners).numpy()
        np.testing.assert_array_equal(got, want, err_msg=str(size))


def _sample_grads(lib, Fm, x, theta, size, **kw):
    xt = lib.tensor(x, requires_grad=True)
    tt = lib.tensor(theta, requires_grad=True)
    grid = Fm.affine_grid(tt, size, align_corners=kw["align_corners"])
    out = Fm.grid_sample(xt, grid, **kw)
    weights = lib.tensor((np.arange(out.numel()) % 7).reshape(tuple(out.shape)).astype(x.dtype))
    (out * weights).sum().backward()
    return out.detach().numpy(), xt.grad.numpy(), tt.grad.numpy()


@pytest.mark.parametrize("align_corners", [False, True])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("hw", [(7, 11), (13, 9), (20, 20), (28, 28)])
def test_identity_spatial_transformer_gets_torchs_theta_gradient(align_corners, dtype, hw):
    # the STN tutorial initialises theta to the identity: every sample lands on a pixel, where
    # bilinear sampling has a kink; torch's side of the kink depends on its rounding of the
    # grid (linspace) and of the unnormalised coordinate (one fused multiply-add)
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 3) + hw).astype(dtype)
    theta = np.tile(np.eye(2, 3, dtype=dtype), (2, 1, 1))
    for padding_mode in ("zeros", "border", "reflection"):
        kw = dict(mode="bilinear", padding_mode=padding_mode, align_corners=align_corners)
        want = _sample_grads(torch, TF, x, theta, [2, 3, *hw], **kw)
        got = _sample_grads(tinymm, F, x, theta, (2, 3, *hw), **kw)
        for name, g, w in zip(("out", "input grad", "theta grad"), got, want):
            np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-3, err_msg=f"{padding_mode} {name}")


@pytest.mark.parametrize("padding_mode", ["border", "reflection"])
@pytest.mark.parametrize("align_corners", [False, True])
def test_grid_sample_border_coordinates_get_no_grid_gradient(padding_mode, align_corners):
    # torch's clip_coordinates counts a sample exactly on the border as outside for the
    # gradient (0), where Tensor.clamp would pass it (1)
    rng = np.random.default_rng(4)
    x = rng.standard_normal((1, 2, 4, 5)).astype(np.float32)
    H, W = 4, 5
    if align_corners:
        xs, ys = np.array([-1.0, 1.0, 0.5, -1.0]), np.array([-1.0, 1.0, -1.0, 0.25])
    else:  # pixel centres of the first / last pixel, which the clip reaches from inside
        xs, ys = np.array([-1 + 1 / W, 1 - 1 / W, 0.5, 1.3]), np.array([-1 + 1 / H, 1 - 1 / H, 1 - 1 / H, -1.2])
    grid = np.stack([xs, ys], -1).reshape(1, 1, 4, 2).astype(np.float32)
    outs = {}
    for lib, Fm in ((torch, TF), (tinymm, F)):
        xt, gt = lib.tensor(x, requires_grad=True), lib.tensor(grid, requires_grad=True)
        out = Fm.grid_sample(xt, gt, mode="bilinear", padding_mode=padding_mode, align_corners=align_corners)
        (out * lib.tensor(np.array([1.0, -2.0], np.float32)).view(1, 2, 1, 1)).sum().backward()
        outs[lib.__name__] = (out.detach().numpy(), xt.grad.numpy(), gt.grad.numpy())
    for g, w in zip(outs["tinymm"], outs["torch"]):
        np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("padding_mode", ["zeros", "border", "reflection"])
@pytest.mark.parametrize("align_corners", [False, True])
def test_volume_grid_sample_on_exact_voxels_matches_torch_forward_and_backward(padding_mode, align_corners):
    # 5-D: an identity affine_grid over odd sizes puts samples on voxels (and, with
    # align_corners, on the volume's faces), both kinks; torch's 3-D sampler does not fuse
    rng = np.random.default_rng(5)
    x = rng.standard_normal((1, 2, 3, 5, 7)).astype(np.float64)
    theta = np.array([[[1.0, 0, 0, 0], [0, 1.0, 0, 0], [0, 0, 1.0, 0]]])
    kw = dict(mode="bilinear", padding_mode=padding_mode, align_corners=align_corners)
    want = _sample_grads(torch, TF, x, theta, [1, 2, 3, 5, 7], **kw)
    got = _sample_grads(tinymm, F, x, theta, (1, 2, 3, 5, 7), **kw)
    for name, g, w in zip(("out", "input grad", "theta grad"), got, want):
        np.testing.assert_allclose(g, w, rtol=1e-9, atol=1e-9, err_msg=name)


def test_grid_sample_and_affine_grid_still_refuse_bad_shapes_and_dtypes():
    with pytest.raises(RuntimeError, match="grid must be"):
        F.grid_sample(tinymm.randn(1, 1, 3, 3), tinymm.randn(1, 2, 2, 3))
    with pytest.raises(RuntimeError, match="Nx2x3"):
        F.affine_grid(tinymm.randn(2, 3, 3), (2, 1, 4, 4))
    with pytest.raises(TypeError, match="floating point"):
        F.affine_grid(tinymm.zeros(1, 2, 3, dtype=tinymm.int64), (1, 1, 4, 4))
    with pytest.raises(Exception, match="dtype"):
        F.grid_sample(tinymm.randn(1, 1, 3, 3), tinymm.randn(1, 2, 2, 2, dtype=tinymm.float64))


def _head_with_dunder_getattr(lib):
    class Head(lib.nn.Module):
        def __init__(self):
            super().__init__()
            self.heads = {"hm": 2, "wh": 2}
            for head, classes in self.heads.items():
                self.__setattr__(head, lib.nn.Conv2d(3, classes, 1))
            self.register_buffer("scale", lib.ones(1))
            self.gain = lib.nn.Parameter(lib.ones(1))
            self.note = "plain"

        @property
        def broken(self):
            return self.missing_inside_property

        def forward(self, x):
            return {head: self.__getattr__(head)(x) * self.__getattr__("gain") for head in self.heads}

    return Head()


def test_module_dunder_getattr_called_by_name_finds_children_params_and_buffers_like_torch():
    # CenterNet's heads: self.__getattr__(head)(x) on children set through __setattr__
    import copy

    x = np.random.default_rng(6).standard_normal((1, 3, 4, 4)).astype(np.float32)
    for lib in (torch, tinymm):
        head = _head_with_dunder_getattr(lib)
        out = head(lib.tensor(x))
        assert sorted(out) == ["hm", "wh"] and tuple(out["hm"].shape) == (1, 2, 4, 4)
        assert head.__getattr__("hm") is head.hm and head.__getattr__("scale") is head.scale
        with pytest.raises(AttributeError, match="'Head' object has no attribute 'note'"):
            head.__getattr__("note")  # a plain attribute is not in the registries, in torch either
        with pytest.raises(AttributeError, match="'Head' object has no attribute 'nothing'"):
            head.nothing
        with pytest.raises(AttributeError, match="has no attribute 'broken'"):
            head.broken  # torch's quirk: an AttributeError inside a property names the property
        assert not hasattr(head, "nothing") and hasattr(head, "wh")
        twin = copy.deepcopy(head)
        assert twin.__getattr__("wh") is not head.wh and twin.wh.weight.shape == head.wh.weight.shape


_X4 = np.random.default_rng(7).random((2, 4, 7, 9)).astype(np.float32)
_X5 = np.random.default_rng(8).random((2, 3, 4, 6, 5)).astype(np.float32)
_LAYOUT_CASES = {
    "pad reflect": (_X4, lambda L, t: L.nn.functional.pad(t, (1, 2, 2, 1), mode="reflect")),
    "pad replicate 5d": (_X5, lambda L, t: L.nn.functional.pad(t, (1, 1, 1, 1, 1, 1), mode="replicate")),
    "pad circular": (_X4, lambda L, t: L.nn.functional.pad(t, (1, 1, 2, 2), mode="circular")),
    "ReflectionPad2d": (_X4, lambda L, t: L.nn.ReflectionPad2d(1)(t)),
    "bilinear": (_X4, lambda L, t: L.nn.functional.interpolate(t, [5, 11], mode="bilinear")),
    "bicubic": (_X4, lambda L, t: L.nn.functional.interpolate(t, scale_factor=2, mode="bicubic", align_corners=True)),
    "nearest": (_X4, lambda L, t: L.nn.functional.interpolate(t, scale_factor=2, mode="nearest")),
    "trilinear": (_X5, lambda L, t: L.nn.functional.interpolate(t, [5, 3, 7], mode="trilinear")),
    "index on dim 1": (_X4, lambda L, t: t[:, [0, 2, 3]]),
    "index_select dim 2": (_X4, lambda L, t: t.index_select(2, L.tensor([1, 4, 0]))),
    "softmax dim 1": (_X4, lambda L, t: L.nn.functional.softmax(t, dim=1)),
    "log_softmax dim 2": (_X4, lambda L, t: L.log_softmax(t, 2)),
    "conv3d": (_X5, lambda L, t: L.nn.functional.conv3d(t, L.ones(2, 3, 3, 3, 3), L.zeros(2), padding=1)),
    "conv_transpose3d": (_X5, lambda L, t: L.nn.functional.conv_transpose3d(t, L.ones(3, 2, 2, 2, 2), stride=2)),
    "cross_entropy none": (_X4, lambda L, t: L.nn.functional.cross_entropy(
        t, L.tensor(np.arange(2 * 7 * 9).reshape(2, 7, 9) % 4), reduction="none")),
    "diag_embed": (_X4[0, 0], lambda L, t: L.diag_embed(t)),
}


@pytest.mark.parametrize("name", sorted(_LAYOUT_CASES))
def test_outputs_and_leaf_grads_are_contiguous_where_torchs_are(name):
    # monodepth2's depth.view(B, 1, -1) after an interpolate, x[:, idx].view(n, -1), C3D's
    # view after conv3d, x.grad.view(...): a view needs PyTorch's (contiguous) layout
    x, fn = _LAYOUT_CASES[name]
    results = {}
    for lib in (torch, tinymm):
        t = lib.tensor(x, requires_grad=True)
        out = fn(lib, t)
        flat = out.view(out.shape[0], -1)  # raises on a layout view cannot flatten
        w = lib.tensor(np.random.default_rng(9).random(tuple(out.shape)).astype(np.float32))
        (out * w).sum().backward()
        results[lib.__name__] = (out.is_contiguous(), t.grad.is_contiguous(), t.grad.view(-1)[:5],
                                 flat.detach().numpy(), t.grad.numpy())
    theirs, ours = results["torch"], results["tinymm"]
    assert ours[:2] == theirs[:2] == (True, True)
    np.testing.assert_allclose(ours[3], theirs[3], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(ours[4], theirs[4], rtol=1e-4, atol=1e-4)


def test_a_noncontiguous_index_result_of_a_noncontiguous_input_still_indexes_right():
    # only a contiguous input's copy is made contiguous; a transposed input keeps NumPy's layout
    x = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    got = tinymm.tensor(x).transpose(1, 2)[:, [3, 0]]
    np.testing.assert_array_equal(got.numpy(), torch.tensor(x).transpose(1, 2)[:, [3, 0]].numpy())
    with pytest.raises(RuntimeError, match="view size is not compatible"):
        tinymm.tensor(x).transpose(1, 2).view(2, 12)


def test_a_uint8_index_tensor_is_a_mask_with_torchs_deprecation_warning():
    # detection code from before bool tensors: boxes[keep.byte()], x[:, valid.to(torch.uint8)]
    x = np.arange(12, dtype=np.float32).reshape(3, 4)
    m2 = np.array([[1, 0, 1, 1], [0, 0, 1, 0], [1, 1, 0, 0]], np.uint8)
    m1 = np.array([1, 0, 0, 1], np.uint8)
    got = {}
    for lib in (torch, tinymm):
        t = lib.tensor(x, requires_grad=True)
        with pytest.warns(UserWarning, match="indexing with dtype torch.uint8 is now deprecated"):
            rows = t[lib.tensor(m2)]
        with pytest.warns(UserWarning, match="uint8"):
            cols = t[:, lib.tensor(m1)]
        (rows.sum() + 2 * cols.sum()).backward()
        y = t.detach().clone()
        with pytest.warns(UserWarning, match="uint8"):
            y[lib.tensor(m2)] = lib.arange(6.0)
        got[lib.__name__] = (rows.detach().numpy(), cols.detach().numpy(), t.grad.numpy(), y.numpy())
    for a, b in zip(got["tinymm"], got["torch"]):
        np.testing.assert_array_equal(a, b)
