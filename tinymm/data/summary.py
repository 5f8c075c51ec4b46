"""Dataset summaries and the majority heuristics that show fusion is needed (floor 6).

Two baselines measure how much of a QA task one modality alone can answer:

- **question only** (:func:`question_only_accuracy`): for each question, predict the answer seen
  most often with that question in the training split (questions compared in canonical form,
  synonyms folded), backing off to the most common answer of its *template* (attribute words
  masked) and then to the overall most common answer. Evaluated on another split.
- **image only** (:func:`image_only_accuracy`): for each scene, ask ``k`` fresh questions about it
  from the same generator and predict the most common of their answers, i.e. the answer an ideal
  image-only model would bet on (it knows the scene exactly but not the question). An upper
  bound, up to sampling error, on any image-only model.

Both stay near or below a half on the QA tasks while question + scene determine every answer.
``summarize("vqa")`` prints them with split sizes and class balance; the CLI runs
``tinymm data summary --task vqa`` (or ``python -m tinymm.data.summary --task vqa``).
"""
from __future__ import annotations

import argparse
import collections
import random

import numpy as np

from tinymm.data.generate import SPLITS
from tinymm.data.language import canonical_tokens
from tinymm.data.questions import ANSWER_INDEX, make_question
from tinymm.data.tasks import DEFAULT_SIZES, TASKS, QATask, TaskDataset, load_task
from tinymm.data.world import COLOURS, SHAPES, SIZES

__all__ = ["question_only_accuracy", "image_only_accuracy", "class_balance", "summarize", "main"]

_MASK = {**{c: "<colour>" for c in COLOURS}, **{s: "<shape>" for s in SHAPES}, **{z: "<size>" for z in SIZES}}


def _keys(question: str) -> tuple[str, str]:
    toks = canonical_tokens(question)
    return " ".join(toks), " ".join(_MASK.get(t, t) for t in toks)


def _majority(counter: collections.Counter):
    # ties broken by the answer index, so the heuristic is deterministic
    best = max(counter.values())
    return min(a for a, c in counter.items() if c == best)


def question_only_accuracy(train: QATask, test: QATask, min_count: int = 3) -> float:
    """Accuracy on ``test`` of the majority answer per question seen in ``train`` (module doc)."""
    full: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    tmpl: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    overall = collections.Counter(train.targets.tolist())
    for q, a in zip(train.world.questions, train.targets.tolist()):
        k, t = _keys(q)
        full[k][a] += 1
        tmpl[t][a] += 1
    fallback = _majority(overall)
    hits = 0
    for q, a in zip(test.world.questions, test.targets.tolist()):
        k, t = _keys(q)
        if k in full and sum(full[k].values()) >= min_count:
            pred = _majority(full[k])
        elif t in tmpl:
            pred = _majority(tmpl[t])
        else:
            pred = fallback
        hits += pred == a
    return hits / len(test)


def image_only_accuracy(ds: QATask, k: int = 24, seed: int = 0, max_samples: int | None = 2000) -> float:
    """Accuracy of betting, for each scene, on its most common answer over ``k`` fresh questions."""
    n = len(ds) if max_samples is None else min(len(ds), max_samples)
    scenes = ds.world.scenes.take(slice(0, n)).to_dicts()
    r = random.Random(seed)
    types = ds.world.question_types
    hits = 0
    for scene, a in zip(scenes, ds.targets[:n].tolist()):
        c = collections.Counter(ANSWER_INDEX[make_question(scene, r, types)[1]] for _ in range(k))
        hits += _majority(c) == a
    return hits / n


def class_balance(ds: TaskDataset) -> list[tuple[str, int]]:
    """(class name, count) for every class of ``ds``, in class order."""
    counts = np.bincount(ds.targets, minlength=ds.num_classes)
    return [(name, int(c)) for name, c in zip(ds.class_names, counts)]


def summarize(task: str = "vqa", split: str = "train", *, eval_split: str = "test", **kw) -> str:
    """A printable summary of ``task``: split sizes, class balance of ``split`` and, for QA tasks,
    the question-only (fit on ``split``, scored on ``eval_split``) and image-only (on
    ``eval_split``) majority heuristics. ``kw`` goes to :func:`~tinymm.data.tasks.load_task`
    (``num_samples`` sets the size of ``split`` only)."""
    n_main = kw.pop("num_samples", None)
    ds = load_task(task, split, num_samples=n_main, **kw)
    sizes = {s: (len(ds) if s == split else DEFAULT_SIZES[s]) for s in SPLITS}
    lines = [f"task {task}: {TASKS[task]}"]
    lines.append("sizes: " + ", ".join(f"{s} {n}" for s, n in sizes.items()))
    if ds.num_classes is None:
        lines.append(f"{len(ds)} image-caption pairs in {split}; no classes")
        return "\n".join(lines)
    bal = class_balance(ds)
    total = sum(c for _, c in bal)
    lines.append(f"class balance ({split}, {ds.num_classes} classes):")
    for name, c in bal:
        if c:
            lines.append(f"  {name:10s} {c:6d}  {c / total:6.1%}")
    majority = max(c for _, c in bal) / total
    lines.append(f"majority-class rate: {majority:.3f}")
    if isinstance(ds, QATask):
        types = collections.Counter(ds.question_types)
        lines.append("question types: " + ", ".join(f"{t} {c / total:.1%}" for t, c in sorted(types.items())))
        other = load_task(task, eval_split, **kw)
        q_only = question_only_accuracy(ds, other)
        i_only = image_only_accuracy(other)
        lines.append(f"question-only majority heuristic ({split} -> {eval_split}): {q_only:.3f}")
        lines.append(f"image-only majority heuristic ({eval_split}, best bet per scene): {i_only:.3f}")
        lines.append("question + scene graph: 1.000 (every answer re-derived by the checker)")
    if getattr(ds, "label_noise", None) is not None:
        lines.append(f"label noise: {len(ds.label_noise)} of {len(ds)} targets flipped (rate {ds.label_noise.rate})")
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="tinymm data summary", description="Summarise a generated task.")
    p.add_argument("--task", default="vqa")
    p.add_argument("--split", default="train")
    p.add_argument("--num-samples", type=int, default=None)
    p.add_argument("--image-size", type=int, default=32)
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args(argv)
    print(summarize(a.task, a.split, num_samples=a.num_samples, image_size=a.image_size, seed=a.seed))
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
