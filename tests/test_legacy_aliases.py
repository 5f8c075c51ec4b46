"""torch.range, torch.adjoint, torch.expand_copy and Tensor.unsafe_chunk/unsafe_split(_with_sizes),
against torch."""
import numpy as np
import pytest

import tinymm as tm
from helpers import TORCH_REASON, torch

needs_torch = pytest.mark.skipif(torch is None, reason=TORCH_REASON)


@needs_torch
@pytest.mark.parametrize("args,kw", [((1, 4), {}), ((0, 1, 0.25), {}), ((1, 4), {"dtype": "int64"}),
                                     ((3, -1, -1), {}), ((0.5, 2.2, 0.5), {"dtype": "float64"})])
def test_range_includes_its_end_and_warns_as_torch(args, kw):
    out = []
    for lib in (tm, torch):
        with pytest.warns(UserWarning, match="torch.range is deprecated"):
            r = lib.range(*args, **{k: getattr(lib, v) for k, v in kw.items()})
        out.append(r)
    assert str(out[0].dtype).split(".")[-1] == str(out[1].dtype).split(".")[-1]
    np.testing.assert_allclose(out[0].numpy(), out[1].numpy())


@pytest.mark.parametrize("lib_name", ["tinymm", "torch"])
def test_range_errors(lib_name):
    lib = tm if lib_name == "tinymm" else torch
    if lib is None:
        pytest.skip(TORCH_REASON)
    with pytest.warns(UserWarning), pytest.raises(RuntimeError, match="step must be nonzero"):
        lib.range(0, 5, 0)
    with pytest.warns(UserWarning), pytest.raises(RuntimeError):
        lib.range(5, 0, 1)
    with pytest.raises(TypeError):
        lib.range(5)  # both ends are required


@needs_torch
def test_adjoint_expand_copy_and_unsafe_splits_match_torch():
    a = np.arange(12.0).reshape(2, 2, 3)
    res = []
    for lib in (tm, torch):
        x = lib.tensor(a, requires_grad=True)
        adj, copied = lib.adjoint(x), lib.expand_copy(x[:, :1], (2, 4, 3))
        parts = x.unsafe_chunk(2, 2) + x.unsafe_split(1, 1) + x.unsafe_split_with_sizes([1, 2], 2)
        (adj.sum() * 2 + (copied * copied).sum() + sum((p * (i + 1)).sum() for i, p in enumerate(parts))).backward()
        res.append((adj.detach().numpy(), x.adjoint().detach().numpy(), copied.detach().numpy(), x.grad.numpy(),
                    [tuple(p.shape) for p in parts]))
    for ours, ref in zip(*res):
        if isinstance(ours, list):
            assert ours == ref
        else:
            np.testing.assert_allclose(ours, ref)
    z = tm.tensor([[1 + 2j, 3j], [4.0, 5 - 1j]])
    np.testing.assert_allclose(tm.adjoint(z).numpy(), torch.adjoint(torch.tensor(z.numpy())).resolve_conj().numpy())


@pytest.mark.parametrize("lib_name", ["tinymm", "torch"])
def test_grad_mode_contexts_enter_to_none_and_keyword_input(lib_name):
    lib = tm if lib_name == "tinymm" else torch
    if lib is None:
        pytest.skip(TORCH_REASON)
    for ctx in (lib.no_grad(), lib.enable_grad(), lib.set_grad_enabled(True), lib.inference_mode()):
        with ctx as entered:
            assert entered is None
    assert lib.numel(input=lib.ones(2, 3)) == 6 and lib.is_floating_point(input=lib.ones(1))
