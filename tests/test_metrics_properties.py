"""Properties of tinymm.metrics on hypothesis-drawn inputs (no reference library needed).

F1 is the harmonic mean of precision and recall; micro-F1 equals accuracy for single-label
targets; metrics do not depend on the order of the samples; the per-batch accumulator gives
the numbers of the one-shot computation on the concatenated epoch.
"""
import warnings
from functools import partial

import numpy as np
import pytest

hypothesis = pytest.importorskip("hypothesis", reason="hypothesis draws the test inputs")
from hypothesis import given, strategies as st  # noqa: E402
from hypothesis.extra import numpy as hnp  # noqa: E402

import tinymm.metrics as tm  # noqa: E402
from tinymm.metrics import MetricCollection  # noqa: E402


@pytest.fixture(autouse=True)
def _quiet():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # undefined-metric warnings are part of the cases
        yield


def assert_same(a, b, rtol=1e-9):
    if isinstance(b, dict):
        assert list(a) == list(b)
        for key in b:
            assert_same(a[key], b[key], rtol)
    elif isinstance(b, tuple):
        for x, y in zip(a, b):
            assert_same(x, y, rtol)
    elif b is None or isinstance(b, str):
        assert a == b
    else:
        np.testing.assert_allclose(np.asarray(a, float), np.asarray(b, float), rtol=rtol,
                                   atol=1e-12, equal_nan=True)


@st.composite
def multiclass(draw, min_n=1, max_n=40):
    k = draw(st.integers(2, 10))
    n = draw(st.integers(min_n, max_n))
    y_true = draw(hnp.arrays(np.int64, n, elements=st.integers(0, k - 1)))
    y_pred = draw(hnp.arrays(np.int64, n, elements=st.integers(0, k - 1)))
    return y_true, y_pred, k


@st.composite
def multilabel(draw, max_n=30):
    n, c = draw(st.integers(1, max_n)), draw(st.integers(2, 6))
    y_true = draw(hnp.arrays(np.int64, (n, c), elements=st.integers(0, 1)))
    y_pred = draw(hnp.arrays(np.int64, (n, c), elements=st.integers(0, 1)))
    return y_true, y_pred


def optional_weights(draw, n):
    if draw(st.booleans()):
        return None
    w = draw(hnp.arrays(np.float64, n, elements=st.sampled_from([0.0, 0.5, 1.0, 2.0, 3.5])))
    w[0] = 1.0  # at least one nonzero weight
    return w


# ----------------------------------------------------------------------------- F1, micro


@given(data=multiclass())
def test_f1_is_harmonic_mean_of_precision_and_recall(data):
    y_true, y_pred, k = data
    labels = list(range(k))
    p, r, f, _ = tm.precision_recall_fscore_support(y_true, y_pred, labels=labels,
                                                    zero_division=0.0)
    harmonic = np.where(p + r > 0, 2 * p * r / np.where(p + r > 0, p + r, 1), 0.0)
    np.testing.assert_allclose(f, harmonic, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(tm.f1_score(y_true, y_pred, average=None, labels=labels,
                                           zero_division=0.0), harmonic, atol=1e-15)


@given(data=multiclass())
def test_micro_f1_equals_accuracy_for_single_label_targets(data):
    y_true, y_pred, _ = data
    accuracy = tm.accuracy_score(y_true, y_pred)
    for metric in (tm.f1_score, tm.precision_score, tm.recall_score):
        assert metric(y_true, y_pred, average="micro") == pytest.approx(accuracy, abs=1e-15)
    # weighted recall is accuracy too
    assert tm.recall_score(y_true, y_pred, average="weighted") == pytest.approx(accuracy)


# ----------------------------------------------------------------------------- permutation


def _all_label_metrics(y_true, y_pred, sw):
    out = {"acc": tm.accuracy_score(y_true, y_pred, sample_weight=sw)}
    for average in ("micro", "macro", "weighted") + (("samples",) if y_true.ndim == 2 else ()):
        out[average] = tm.precision_recall_fscore_support(y_true, y_pred, average=average,
                                                          sample_weight=sw, beta=2.0)
    out["none"] = tm.precision_recall_fscore_support(y_true, y_pred, sample_weight=sw)
    if y_true.ndim == 1:
        out["bacc"] = tm.balanced_accuracy_score(y_true, y_pred, sample_weight=sw)
        out["cm"] = tm.confusion_matrix(y_true, y_pred, sample_weight=sw, normalize="true")
    out["report"] = tm.classification_report(y_true, y_pred, sample_weight=sw,
                                             output_dict=True)
    return out


@given(data=st.data())
def test_label_metrics_are_invariant_to_sample_order(data):
    if data.draw(st.booleans()):
        y_true, y_pred, _ = data.draw(multiclass())
    else:
        y_true, y_pred = data.draw(multilabel())
    sw = optional_weights(data.draw, len(y_true))
    perm = data.draw(st.permutations(range(len(y_true))))
    perm = np.array(perm, dtype=np.int64)
    before = _all_label_metrics(y_true, y_pred, sw)
    after = _all_label_metrics(y_true[perm], y_pred[perm], None if sw is None else sw[perm])
    assert_same(after, before)


@given(data=st.data())
def test_score_metrics_are_invariant_to_sample_order(data):
    y_true, _, k = data.draw(multiclass(min_n=2))
    n = len(y_true)
    mass = data.draw(hnp.arrays(np.float64, (n, k), elements=st.sampled_from([0.0, 1.0, 2.0])))
    mass[:, 0] += 0.5
    proba = mass / mass.sum(axis=1, keepdims=True)
    labels = list(range(k))
    perm = np.array(data.draw(st.permutations(range(n))), dtype=np.int64)

    def all_scores(y, p):
        binary = (y == 0).astype(int)
        out = {
            "top1": tm.top_k_accuracy_score(y, p if k > 2 else p[:, 1], k=1, labels=labels),
            "logloss": tm.log_loss(y, p, labels=labels),
            "auc": tm.roc_auc_score(binary, p[:, 0]) if 0 < binary.sum() < n else 0,
            "ap": tm.average_precision_score(binary, p[:, 0]),
        }
        if k >= 3:
            out["auc_ovr"] = tm.roc_auc_score(y, p, multi_class="ovr", labels=labels)
        return out

    assert_same(all_scores(y_true[perm], proba[perm]), all_scores(y_true, proba))


# ----------------------------------------------------------------------------- accumulator

LABEL_METRICS = {
    "acc": tm.accuracy_score,
    "acc_count": partial(tm.accuracy_score, normalize=False),
    "bacc": tm.balanced_accuracy_score,
    "f1_macro": partial(tm.f1_score, average="macro"),
    "f1_none": partial(tm.f1_score, average=None, zero_division=np.nan),
    "p_weighted": partial(tm.precision_score, average="weighted", zero_division=1.0),
    "r_micro": partial(tm.recall_score, average="micro"),
    "f2": partial(tm.fbeta_score, beta=2.0, average="macro", labels=[0, 1, 2, 11]),
    "prfs": partial(tm.precision_recall_fscore_support, average=None),
    "cm": partial(tm.confusion_matrix, normalize="pred"),
    "report": partial(tm.classification_report, output_dict=True),
    "text": tm.classification_report,
    # not streamable (a user callable): gets the concatenated epoch
    "custom": lambda y_true, y_pred, sample_weight=None: float(
        np.average(np.asarray(y_true) == np.asarray(y_pred), weights=sample_weight)),
}


def _one_shot(metrics, y_true, y_pred, sw):
    out = {}
    for name, metric in metrics.items():
        out[name] = metric(y_true, y_pred) if sw is None else metric(y_true, y_pred,
                                                                     sample_weight=sw)
    return out


def _split(draw, n):
    cuts = sorted(set(draw(st.lists(st.integers(1, max(1, n - 1)), max_size=4))))
    edges = [0] + [c for c in cuts if 0 < c < n] + [n]
    return list(zip(edges[:-1], edges[1:]))


@pytest.mark.parametrize("streaming", [True, False], ids=["streaming", "buffered"])
@given(data=st.data())
def test_accumulator_equals_one_shot_for_label_metrics(streaming, data):
    y_true, y_pred, _ = data.draw(multiclass(max_n=30))
    sw = optional_weights(data.draw, len(y_true))
    collection = MetricCollection(LABEL_METRICS, streaming=streaming)
    assert set(collection._streaming) == (set(LABEL_METRICS) - {"custom"} if streaming else set())
    for start, stop in _split(data.draw, len(y_true)):
        collection.update(y_true[start:stop], y_pred[start:stop],
                          None if sw is None else sw[start:stop])
    got = collection.compute()
    expected = _one_shot(LABEL_METRICS, y_true, y_pred, sw)
    text_got, text_expected = got.pop("text"), expected.pop("text")
    assert_same(got, expected)
    if sw is None:  # with float weights the last printed digit may differ by summation order
        assert text_got == text_expected


@given(data=st.data())
def test_accumulator_equals_one_shot_for_multilabel_and_scores(data):
    y_true, y_pred = data.draw(multilabel())
    sw = optional_weights(data.draw, len(y_true))
    scores = data.draw(hnp.arrays(np.float64, y_true.shape,
                                  elements=st.sampled_from([0.0, 0.2, 0.5, 0.9])))
    label_metrics = {
        "subset_acc": tm.accuracy_score,
        "f1_samples": partial(tm.f1_score, average="samples"),
        "p_macro": partial(tm.precision_score, average="macro", labels=[1, 0]),
        "report": partial(tm.classification_report, output_dict=True),
    }
    score_metrics = {
        "auc_micro": partial(tm.roc_auc_score, average="micro"),
        "ap_macro": tm.average_precision_score,
    }
    labels_acc, scores_acc = MetricCollection(label_metrics), MetricCollection(score_metrics)
    for start, stop in _split(data.draw, len(y_true)):
        w = None if sw is None else sw[start:stop]
        labels_acc.update(y_true[start:stop], y_pred[start:stop], w)
        scores_acc.update(y_true[start:stop], scores[start:stop], w)
    assert_same(labels_acc.compute(), _one_shot(label_metrics, y_true, y_pred, sw))
    assert_same(scores_acc.compute(), _one_shot(score_metrics, y_true, scores, sw))


def test_accumulator_streams_without_keeping_predictions():
    collection = MetricCollection({"acc": tm.accuracy_score,
                                   "f1": partial(tm.f1_score, average="macro")})
    rng = np.random.default_rng(0)
    y_all, p_all = [], []
    for _ in range(50):
        y, p = rng.integers(0, 5, 64), rng.integers(0, 5, 64)
        collection.update(y, p)
        y_all.append(y)
        p_all.append(p)
    assert collection._batches == []  # nothing buffered: only the confusion counts
    assert collection.n_samples == 50 * 64
    y, p = np.concatenate(y_all), np.concatenate(p_all)
    assert collection.compute() == {"acc": tm.accuracy_score(y, p),
                                    "f1": tm.f1_score(y, p, average="macro")}
    # labels first seen in a later batch, and string labels
    strings = MetricCollection([tm.accuracy_score, tm.confusion_matrix])
    strings.update(["a", "b"], ["a", "a"])
    strings.update(["c"], ["b"])
    result = strings.compute()
    assert result["accuracy_score"] == 1 / 3
    np.testing.assert_array_equal(result["confusion_matrix"],
                                  tm.confusion_matrix(["a", "b", "c"], ["a", "a", "b"]))


def test_accumulator_reset_and_errors():
    collection = MetricCollection({"acc": tm.accuracy_score, "auc": tm.roc_auc_score})
    with pytest.raises(ValueError, match="before any update"):
        collection.compute()
    collection.update([0, 1], [0, 1])
    with pytest.raises(ValueError, match="inconsistent numbers of samples"):
        collection.update([0, 1, 1], [0, 1])
    with pytest.raises(ValueError, match="sample_weight"):
        collection.update([0, 1], [0, 1], sample_weight=[1.0, 2.0])
    with pytest.raises(ValueError, match="batch 2"):
        collection.update([[0, 1], [1, 0]], [[0, 1], [1, 0]])
    with pytest.raises(ValueError, match="batch 2"):
        streaming_only = MetricCollection([tm.accuracy_score])
        streaming_only.update([0, 1], [0, 1])
        streaming_only.update([[0, 1], [1, 0]], [[0, 1], [1, 0]])
    assert collection.n_batches == 1  # a refused batch changes nothing
    collection.update([1, 0], [1, 1])
    assert collection.compute()["acc"] == 3 / 4
    collection.reset()
    collection.update([1], [0])
    assert collection.compute()["acc"] == 0.0
    with pytest.raises(TypeError, match="not callable"):
        MetricCollection({"x": 3})
