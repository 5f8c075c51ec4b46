"""Retrieval metrics (recall@k, median rank, MRR) from image-text similarity matrices."""
import numpy as np
import pytest

import tinymm.metrics as tm

hypothesis = pytest.importorskip("hypothesis", reason="hypothesis draws the test inputs")
from hypothesis import given, strategies as st  # noqa: E402
from hypothesis.extra import numpy as hnp  # noqa: E402

# rows: images, columns: texts; the true pairs are on the diagonal
SIM = np.array([
    [0.9, 0.1, 0.3],   # image 0: its text ranks 1st
    [0.8, 0.2, 0.5],   # image 1: its text (0.2) ranks 3rd
    [0.1, 0.7, 0.6],   # image 2: its text (0.6) ranks 2nd
])


def brute_force_rank(scores, q, t):
    """1 + number of other candidates scoring at least as high as the true one."""
    return 1 + sum(1 for j in range(scores.shape[1]) if j != t and scores[q, j] >= scores[q, t])


def test_hand_computed_ranks_both_directions():
    np.testing.assert_array_equal(tm.retrieval_ranks(SIM), [1, 3, 2])
    # text j ranks the images by column j: text 0 -> image 0 (0.9) 1st; text 1 -> image 1
    # (0.2, behind 0.7) 2nd; text 2 -> image 2 (0.6, ahead of 0.5 and 0.3) 1st
    np.testing.assert_array_equal(tm.retrieval_ranks(SIM, direction="t2i"), [1, 2, 1])
    assert tm.recall_at_k(SIM, 1) == 1 / 3
    assert tm.recall_at_k(SIM, 2) == 2 / 3
    assert tm.recall_at_k(SIM, 3) == 1.0
    assert tm.recall_at_k(SIM, [1, 2], direction="t2i") == {1: 2 / 3, 2: 1.0}
    assert tm.recall_at_k(SIM, 1, direction="both") == {"i2t": 1 / 3, "t2i": 2 / 3}
    assert tm.median_rank(SIM) == 2.0
    assert tm.median_rank(SIM, direction="t2i") == 1.0
    assert tm.mean_reciprocal_rank(SIM) == pytest.approx((1 + 1 / 3 + 1 / 2) / 3)
    assert tm.mean_reciprocal_rank(SIM, direction="both") == pytest.approx(
        {"i2t": (1 + 1 / 3 + 1 / 2) / 3, "t2i": (1 + 1 / 2 + 1) / 3})


def test_ties_count_against_the_true_item():
    # all equal: every true item is ranked last, recall@1 is 0 (pessimistic ties)
    flat = np.zeros((4, 4))
    np.testing.assert_array_equal(tm.retrieval_ranks(flat), [4, 4, 4, 4])
    assert tm.recall_at_k(flat, 1) == 0.0
    assert tm.recall_at_k(flat, 4) == 1.0
    # one tie with the true item: rank 2, not 1
    tie = np.array([[0.5, 0.5], [0.1, 0.9]])
    np.testing.assert_array_equal(tm.retrieval_ranks(tie), [2, 1])
    assert tm.recall_at_k(tie, 1) == 0.5


def test_single_pair_and_perfect_retrieval():
    assert tm.recall_at_k([[0.3]], 1) == 1.0
    assert tm.median_rank([[0.3]]) == 1.0
    eye = np.eye(5)
    assert tm.recall_at_k(eye, 1, direction="both") == {"i2t": 1.0, "t2i": 1.0}
    assert tm.mean_reciprocal_rank(eye) == 1.0
    worst = -np.eye(5)
    assert tm.median_rank(worst) == 5.0


def test_general_form_with_targets():
    # 2 images, 4 captions (2 per image); query = caption, candidates = images
    sim = np.array([[0.9, 0.8, 0.1, 0.4],
                    [0.2, 0.85, 0.7, 0.6]])
    caption_to_image = [0, 0, 1, 1]
    ranks = tm.retrieval_ranks(sim, caption_to_image, direction="t2i")
    np.testing.assert_array_equal(ranks, [1, 2, 1, 1])  # caption 1: image 1 scores 0.85 > 0.8
    image_to_caption = [1, 2]  # one chosen caption per image
    np.testing.assert_array_equal(tm.retrieval_ranks(sim, image_to_caption), [2, 2])
    assert tm.recall_at_k(sim, 2, targets=image_to_caption) == 1.0
    assert tm.recall_at_k(sim, 4, targets=image_to_caption) == 1.0


@pytest.mark.parametrize("call, match", [
    (lambda: tm.recall_at_k(np.eye(3), 4), "larger than the number of candidates"),
    (lambda: tm.recall_at_k(np.eye(3), 0), "positive integer"),
    (lambda: tm.recall_at_k(np.ones((2, 3)), 1), "square"),
    (lambda: tm.recall_at_k(np.ones(3), 1), "2-d"),
    (lambda: tm.recall_at_k(np.eye(3), 1, direction="x2y"), "direction"),
    (lambda: tm.retrieval_ranks(np.ones((2, 3)), [0, 3]), r"\[0, 3\)"),
    (lambda: tm.retrieval_ranks(np.ones((2, 3)), [0, 1, 2]), "one candidate index per query"),
    (lambda: tm.retrieval_ranks(np.ones((2, 3)), [0.0, 1.0]), "integer"),
    (lambda: tm.retrieval_ranks(np.eye(2), [0, 1], direction="both"), "one direction"),
    (lambda: tm.median_rank(np.array([[1.0, np.nan], [0.0, 1.0]])), "NaN"),
], ids=lambda x: x if isinstance(x, str) else "")
def test_bad_input_names_the_problem(call, match):
    with pytest.raises(ValueError, match=match):
        call()


@given(data=st.data())
def test_against_brute_force(data):
    n_q, n_c = data.draw(st.integers(1, 12)), data.draw(st.integers(1, 12))
    sim = data.draw(hnp.arrays(np.float64, (n_q, n_c), elements=st.sampled_from(
        [-1.0, 0.0, 0.25, 0.5, 1.0])))  # few values: many ties
    targets = data.draw(hnp.arrays(np.int64, n_q, elements=st.integers(0, n_c - 1)))
    k = data.draw(st.integers(1, n_c))
    expected = np.array([brute_force_rank(sim, q, targets[q]) for q in range(n_q)])
    np.testing.assert_array_equal(tm.retrieval_ranks(sim, targets), expected)
    assert tm.recall_at_k(sim, k, targets=targets) == np.mean(expected <= k)
    assert tm.median_rank(sim, targets=targets) == np.median(expected)
    assert tm.mean_reciprocal_rank(sim, targets=targets) == pytest.approx(np.mean(1 / expected))
    # t2i on the transposed matrix is i2t on the original
    np.testing.assert_array_equal(tm.retrieval_ranks(sim.T, targets, direction="t2i"), expected)
    # invariant to permuting the queries (with their targets)
    perm = np.array(data.draw(st.permutations(range(n_q))), dtype=np.int64)
    assert tm.recall_at_k(sim[perm], k, targets=targets[perm]) == pytest.approx(
        tm.recall_at_k(sim, k, targets=targets))
