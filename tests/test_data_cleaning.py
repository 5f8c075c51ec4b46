"""Cleaning: clean() finds injected faults from the data alone and drops exactly those."""
import numpy as np
import pytest

from tinymm.data.cleaning import FAULT_KINDS, SampleList, clean, find_fault, inject_faults
from tinymm.data.tasks import load_task
from tinymm.data.world import ConfigError


def _same(a: dict, b: dict) -> bool:
    if set(a) != set(b):
        return False
    for k in a:
        if isinstance(a[k], np.ndarray):
            if not (a[k].dtype == b[k].dtype and np.array_equal(a[k], b[k])):
                return False
        elif a[k] != b[k]:
            return False
    return True


@pytest.mark.parametrize(
    "name, n",
    [("vqa", 400), ("av_qa", 60), ("audio_cls", 150), ("retrieval", 300), ("video_cls", 60), ("text_cls", 300)],
)
def test_clean_removes_exactly_the_injected_faults(name, n):
    ds = load_task(name, num_samples=n, seed=5)
    original = [ds[i] for i in range(n)]
    faulty, record = inject_faults(ds, rate=0.3, seed=11)
    assert record.total == round(0.3 * n)
    assert len(faulty) == n + len(record.kinds.get("duplicate", []))
    cleaned, report = clean(faulty)
    survivors = [original[i] for i in range(n) if i not in set(record.corrupted)]
    assert len(cleaned) == len(survivors)
    assert all(_same(a, b) for a, b in zip(cleaned, survivors))
    # the report counts each kind as injected and names the same positions
    for kind in FAULT_KINDS:
        assert report.counts[kind] == len(record.kinds.get(kind, [])), kind
        assert report.dropped[kind] == record.kinds.get(kind, []), kind
    assert report.total_dropped == record.total
    # the kinds that apply to this task were all used
    applicable = {
        "vqa": {"nan_pixels", "blank_text", "duplicate", "label_out_of_range"},
        "av_qa": set(FAULT_KINDS),
        "audio_cls": {"silent_audio", "clipped_audio", "truncated_audio", "nan_audio", "duplicate", "label_out_of_range"},
        "retrieval": {"nan_pixels", "blank_text", "duplicate"},
        "video_cls": {"nan_pixels", "duplicate", "label_out_of_range"},
        "text_cls": {"blank_text", "duplicate", "label_out_of_range"},
    }[name]
    assert {k for k, v in record.kinds.items() if v} == applicable
    assert "kept" in str(report) and "duplicate" in str(report)


def test_clean_data_is_left_alone():
    for name, n in (("vqa", 300), ("audio_cls", 100), ("image_cls", 2000)):
        ds = load_task(name, num_samples=n, seed=9)
        cleaned, report = clean(ds)
        assert len(cleaned) == n and report.total_dropped == 0


def test_inject_does_not_touch_its_input():
    samples = SampleList([load_task("vqa", num_samples=30)[i] for i in range(30)], num_classes=23)
    before = [dict(s, image=s["image"].copy()) for s in samples]
    inject_faults(samples, 1.0, seed=0)
    assert all(_same(a, b) for a, b in zip(samples, before))


def test_rate_zero_and_one_and_kinds():
    ds = load_task("retrieval", num_samples=40)
    faulty, rec = inject_faults(ds, 0.0)
    assert len(faulty) == 40 and rec.total == 0
    faulty, rec = inject_faults(ds, 1.0, kinds=["blank_text"], seed=3)
    assert rec.kinds == {"blank_text": list(range(40))}
    cleaned, rep = clean(faulty)
    assert len(cleaned) == 0 and rep.counts["blank_text"] == 40
    faulty, rec = inject_faults(ds, 0.5, kinds=["duplicate"], seed=3)
    assert len(faulty) == 60
    for pos in rec.kinds["duplicate"]:  # each copy comes after its source
        src = rec.original[pos]
        assert rec.original.index(src) < pos


def test_fault_detectors_one_by_one():
    s = load_task("av_qa", num_samples=3)[0]
    assert find_fault(s, 23) is None
    audio = s["audio"]
    assert find_fault(dict(s, audio=np.zeros_like(audio)), 23) == "silent_audio"
    assert find_fault(dict(s, audio=np.clip(audio * 50, -1, 1)), 23) == "clipped_audio"
    img = s["image"].copy()
    img[0, 3, 3] = np.inf
    assert find_fault(dict(s, image=img), 23) == "nan_pixels"
    assert find_fault(dict(s, question=" \t"), 23) == "blank_text"
    assert find_fault(dict(s, answer=23), 23) == "label_out_of_range"
    assert find_fault(dict(s, answer=-1), 23) == "label_out_of_range"


def test_bad_arguments():
    ds = load_task("vqa", num_samples=10)
    with pytest.raises(ConfigError, match=r"rate must be in \[0, 1\], got 1.5"):
        inject_faults(ds, 1.5)
    with pytest.raises(ValueError, match="unknown fault kinds"):
        inject_faults(ds, 0.1, kinds=["gremlins"])
    with pytest.raises(ValueError, match="does not apply"):
        inject_faults(ds, 0.1, kinds=["silent_audio"])
    with pytest.raises(ValueError, match="num_classes"):
        clean([ds[0], ds[1]])
    cleaned, rep = clean([ds[0], ds[1], ds[0]], num_classes=23)
    assert len(cleaned) == 2 and rep.counts["duplicate"] == 1
