"""Retrieval metrics where several candidates count as a hit (duplicate captions in a gallery)."""
import numpy as np
import pytest

import tinymm.metrics as tm

hypothesis = pytest.importorskip("hypothesis", reason="hypothesis draws the test inputs")
from hypothesis import given, settings, strategies as st  # noqa: E402
from hypothesis.extra import numpy as hnp  # noqa: E402


def brute_force_rank(scores, rel, q):
    """Walk the candidates from the highest score down; within equal scores the irrelevant ones
    come first (pessimistic ties); the rank is the position of the first relevant candidate."""
    order = sorted(range(scores.shape[1]), key=lambda j: (-scores[q, j], bool(rel[q, j])))
    return 1 + next(pos for pos, j in enumerate(order) if rel[q, j])


def brute_force_recall(sim, rel, k, direction):
    s, r = (sim, rel) if direction == "i2t" else (sim.T, rel.T)
    return np.mean([brute_force_rank(s, r, q) <= k for q in range(s.shape[0])])


def test_a_duplicate_caption_counts_as_a_hit():
    captions = ["a red circle", "a blue box", "a red circle"]
    rel = tm.same_string_relevance(captions)
    np.testing.assert_array_equal(rel, [[1, 0, 1], [0, 1, 0], [1, 0, 1]])
    # image 0 scores caption 2 (the same string as its own) highest: a hit at rank 1
    sim = np.array([[0.5, 0.1, 0.9],
                    [0.2, 0.8, 0.1],
                    [0.1, 0.7, 0.3]])
    np.testing.assert_array_equal(tm.retrieval_ranks(sim, relevant=rel), [1, 1, 2])
    np.testing.assert_array_equal(tm.retrieval_ranks(sim), [2, 1, 1 + 1])  # strict pairs differ on row 0
    # text→image: caption 2 finds image 0 (0.9), a hit since image 0's caption is the same string
    np.testing.assert_array_equal(tm.retrieval_ranks(sim, relevant=rel, direction="t2i"), [1, 1, 1])
    assert tm.recall_at_k(sim, 1, relevant=rel, direction="both") == {"i2t": 2 / 3, "t2i": 1.0}
    assert tm.median_rank(sim, relevant=rel) == 1.0
    assert tm.mean_reciprocal_rank(sim, relevant=rel) == pytest.approx((1 + 1 + 0.5) / 3)


def test_count_duplicates():
    assert tm.count_duplicates(["a", "b", "a", "c", "a", "b"]) == {
        "items": 6, "distinct": 3, "duplicated": 5, "groups": 2}
    assert tm.count_duplicates(["x", "y"]) == {"items": 2, "distinct": 2, "duplicated": 0, "groups": 0}
    rel = tm.same_string_relevance(["a", "b"], ["b", "a", "a"])
    np.testing.assert_array_equal(rel, [[0, 1, 1], [1, 0, 0]])


@pytest.mark.parametrize("call, match", [
    (lambda: tm.recall_at_k(np.eye(2), 1, relevant=np.eye(3, dtype=bool)), "shape"),
    (lambda: tm.recall_at_k(np.eye(2), 1, relevant=np.eye(2)), "boolean"),
    (lambda: tm.recall_at_k(np.eye(2), 1, relevant=np.array([[True, False], [False, False]])), "query 1"),
    (lambda: tm.retrieval_ranks(np.eye(2), [0, 1], relevant=np.eye(2, dtype=bool)), "not both"),
], ids=["shape", "dtype", "empty-row", "both-given"])
def test_bad_relevance_names_the_problem(call, match):
    with pytest.raises(ValueError, match=match):
        call()


@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_relevant_against_brute_force(data):
    n_img, n_txt = data.draw(st.integers(1, 9)), data.draw(st.integers(1, 9))
    sim = data.draw(hnp.arrays(np.float64, (n_img, n_txt), elements=st.sampled_from([-1.0, 0.0, 0.5, 1.0])))
    rel = data.draw(hnp.arrays(bool, (n_img, n_txt)))
    # every image and every text needs at least one match
    rel[np.arange(n_img), np.arange(n_img) % n_txt] = True
    rel[np.arange(n_txt) % n_img, np.arange(n_txt)] = True
    for direction in ("i2t", "t2i"):
        n_cand = n_txt if direction == "i2t" else n_img
        k = data.draw(st.integers(1, n_cand))
        assert tm.recall_at_k(sim, k, direction=direction, relevant=rel) == pytest.approx(
            brute_force_recall(sim, rel, k, direction))
    # one relevant candidate per query is the targets form
    targets = data.draw(hnp.arrays(np.int64, n_img, elements=st.integers(0, n_txt - 1)))
    one = np.zeros((n_img, n_txt), dtype=bool)
    one[np.arange(n_img), targets] = True
    np.testing.assert_array_equal(tm.retrieval_ranks(sim, relevant=one), tm.retrieval_ranks(sim, targets))


@settings(max_examples=30, deadline=None)
@given(data=st.data())
def test_string_relevance_against_brute_force(data):
    words = data.draw(st.lists(st.sampled_from(["a", "b", "c", "d"]), min_size=1, max_size=10))
    n = len(words)
    sim = data.draw(hnp.arrays(np.float64, (n, n), elements=st.sampled_from([0.0, 0.5, 1.0])))
    rel = tm.same_string_relevance(words)
    assert rel.tolist() == [[words[i] == words[j] for j in range(n)] for i in range(n)]
    k = data.draw(st.integers(1, n))
    got = tm.recall_at_k(sim, k, direction="both", relevant=rel)
    for d in ("i2t", "t2i"):
        assert got[d] == pytest.approx(brute_force_recall(sim, rel, k, d))
    dup = tm.count_duplicates(words)
    assert dup["duplicated"] == sum(words.count(w) > 1 for w in words)
    assert dup["distinct"] == len(set(words))
