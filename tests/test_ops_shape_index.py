"""Shape and indexing ops: forward and gradients against PyTorch and NumPy."""
import numpy as np
import pytest

import tinymm as tm
import tinymm.nn.functional as F
from helpers import check_op, torch

if torch is not None:
    import torch.nn.functional as TF


def test_reshape_view_flatten_match_torch_and_name_bad_shapes():
    check_op([(2, 3, 4)], lambda x: x.reshape(6, -1))
    check_op([(2, 3, 4)], lambda x: x.view((4, 6)))
    check_op([(2, 3, 4)], lambda x: x.flatten(1))
    with pytest.raises(ValueError, match=r"\(2, 3, 4\).*\(5, -1\)"):
        tm.randn(2, 3, 4).reshape(5, -1)


def test_transpose_permute_and_T_match_torch():
    check_op([(2, 3, 4)], lambda x: x.transpose(0, 2))
    check_op([(2, 3, 4)], lambda x: x.permute(1, 2, 0))
    check_op([(3, 4)], lambda x: x.T)
    with pytest.raises(ValueError, match="not a permutation"):
        tm.randn(2, 3).permute(0, 0)


def test_unsqueeze_squeeze_expand_match_torch():
    check_op([(3, 1, 4)], lambda x: x.squeeze(1).unsqueeze(0))
    check_op([(3, 1, 4)], lambda x: x.squeeze())
    check_op([(3, 1)], lambda x: x.expand(2, 3, 5))
    check_op([(3, 1)], lambda x: x.expand(-1, 4))
    with pytest.raises(ValueError, match="cannot expand"):
        tm.randn(3, 2).expand(3, 4)


def test_cat_stack_split_chunk_match_torch_and_name_bad_sizes():
    check_op([(2, 3), (2, 5)], lambda a, b: tm.cat([a, b], dim=1), lambda a, b: torch.cat([a, b], dim=1))
    check_op([(2, 3), (2, 3)], lambda a, b: tm.stack([a, b], dim=1), lambda a, b: torch.stack([a, b], dim=1))
    check_op([(7, 3)], lambda x: x.split(3)[1] * 2 + x.split(3)[2].sum())
    check_op([(7, 3)], lambda x: x.split([2, 5])[1])
    check_op([(7, 4)], lambda x: x.chunk(3, dim=0)[2])
    assert [p.shape[0] for p in tm.randn(7, 2).chunk(3)] == [3, 3, 1]
    with pytest.raises(ValueError, match="incompatible"):
        tm.cat([tm.randn(2, 3), tm.randn(3, 3)], dim=1)
    with pytest.raises(ValueError, match="sum to"):
        tm.randn(5).split([2, 2])


def test_constant_pad_matches_torch():
    check_op([(2, 3, 4)], lambda x: F.pad(x, (1, 2)), lambda x: TF.pad(x, (1, 2)))
    check_op([(2, 3, 4)], lambda x: F.pad(x, (1, 0, 0, 2), value=3.0), lambda x: TF.pad(x, (1, 0, 0, 2), value=3.0))


@pytest.mark.parametrize(
    "index",
    [
        (slice(1, 3),),
        (Ellipsis, 0),
        (slice(None), None, slice(None, None, 2)),
        (np.array([0, 2, 2, 1]),),
        (np.array([0, 0, 2]), np.array([1, 1, 3])),
        (slice(None), np.array([3, 3, 0])),
    ],
)
def test_getitem_basic_and_integer_array_indices_scatter_add_gradients(index):
    # Repeated integer indices must scatter-ADD their gradients.
    tindex = tuple(torch.as_tensor(i) if isinstance(i, np.ndarray) else i for i in index) if torch else index
    check_op([(3, 4)], lambda x: x[index], lambda x: x[tindex], lambda x: x[index])


def test_getitem_with_boolean_mask_and_index_tensor_matches_torch(rng):
    a = rng.standard_normal((4, 3)).astype(np.float32)
    mask = a > 0
    check_op([(4, 3)], lambda x: x[tm.tensor(mask)], lambda x: x[torch.as_tensor(mask)], inputs=[a])
    idx = tm.tensor([3, 1, 3])
    check_op([(4, 3)], lambda x: x[idx], lambda x: x[torch.tensor([3, 1, 3])], inputs=[a])


def test_where_masked_fill_one_hot_match_torch_and_name_bad_masks(rng):
    cond = rng.random((3, 4)) > 0.5
    check_op([(3, 4), (4,)], lambda a, b: tm.where(tm.tensor(cond), a, b), lambda a, b: torch.where(torch.as_tensor(cond), a, b))
    m = rng.random((1, 4)) > 0.5
    check_op([(3, 4)], lambda x: x.masked_fill(tm.tensor(m), -5.0), lambda x: x.masked_fill(torch.as_tensor(m), -5.0))
    oh = F.one_hot(tm.tensor([0, 2, 1]), 4)
    assert oh.dtype == np.int64
    np.testing.assert_array_equal(oh.detach().numpy(), np.eye(4, dtype=np.int64)[[0, 2, 1]])
    with pytest.raises(ValueError, match=r"\[0, 3\)"):
        F.one_hot(tm.tensor([0, 3]), 3)
    with pytest.raises(ValueError, match="does not broadcast"):
        tm.randn(3, 4).masked_fill(tm.tensor(np.ones((2, 4), bool)), 0.0)
    with pytest.raises(TypeError, match="must be bool"):
        tm.randn(3, 4).masked_fill(tm.tensor(np.ones((3, 4))), 0.0)


def test_normalize_and_cosine_similarity_match_torch():
    check_op([(3, 5)], lambda x: F.normalize(x, dim=1), lambda x: TF.normalize(x, dim=1))
    check_op([(3, 5), (3, 5)], lambda a, b: F.cosine_similarity(a, b, dim=1), lambda a, b: TF.cosine_similarity(a, b, dim=1))
    check_op([(3, 5), (1, 5)], lambda a, b: F.cosine_similarity(a, b), lambda a, b: TF.cosine_similarity(a, b))
    # broadcast along dim itself: (1, 5) is the vector repeated 3 times, not a length-1 one
    check_op([(3, 5), (1, 5)], lambda a, b: F.cosine_similarity(a, b, dim=0), lambda a, b: TF.cosine_similarity(a, b, dim=0))
    # a norm under eps: value max(‖x‖, eps), gradient through ‖x‖ as PyTorch's no-grad in-place clamp
    check_op([(3, 5), (3, 5)], lambda a, b: F.cosine_similarity(a, b, dim=0, eps=2.0),
             lambda a, b: TF.cosine_similarity(a, b, dim=0, eps=2.0), low=-0.5, high=0.5, gradcheck=False)
