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

from tinymm.data.generate import SPLITS, check_num_samples, check_split
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


def _stats_size(ds: TaskDataset, max_samples: int | None) -> int:
    return len(ds) if max_samples is None else min(len(ds), check_num_samples(max_samples))


def question_only_accuracy(train: QATask, test: QATask, min_count: int = 3, max_samples: int | None = None) -> float:
    """Accuracy on ``test`` of the majority answer per question seen in ``train`` (module doc);
    with ``max_samples``, fit and score on at most that many samples of each split."""
    full: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    tmpl: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    n_train, n_test = _stats_size(train, max_samples), _stats_size(test, max_samples)
    train_targets = train.head_targets(n_train).tolist()
    overall = collections.Counter(train_targets)
    for q, a in zip(train.world.head("questions", n_train), train_targets):
        k, t = _keys(q)
        full[k][a] += 1
        tmpl[t][a] += 1
    fallback = _majority(overall)
    hits = 0
    for q, a in zip(test.world.head("questions", n_test), test.head_targets(n_test).tolist()):
        k, t = _keys(q)
        if k in full and sum(full[k].values()) >= min_count:
            pred = _majority(full[k])
        elif t in tmpl:
            pred = _majority(tmpl[t])
        else:
            pred = fallback
        hits += pred == a
    return hits / n_test


def image_only_accuracy(ds: QATask, k: int = 24, seed: int = 0, max_samples: int | None = 2000) -> float:
    """Accuracy of betting, for each scene, on its most common answer over ``k`` fresh questions."""
    n = _stats_size(ds, max_samples)
    scenes = ds.world.head("scenes", n).to_dicts()
    r = random.Random(seed)
    types = ds.world.question_types
    hits = 0
    for scene, a in zip(scenes, ds.head_targets(n).tolist()):
        c = collections.Counter(ANSWER_INDEX[make_question(scene, r, types)[1]] for _ in range(k))
        hits += _majority(c) == a
    return hits / n


def class_balance(ds: TaskDataset, max_samples: int | None = None) -> list[tuple[str, int]]:
    """(class name, count) for every class of ``ds`` (its first ``max_samples``), in class order."""
    counts = np.bincount(ds.head_targets(_stats_size(ds, max_samples)), minlength=ds.num_classes)
    return [(name, int(c)) for name, c in zip(ds.class_names, counts)]


def summarize(task: str = "vqa", split: str = "train", *, eval_split: str = "test", max_samples: int = 100_000,
              **kw) -> str:
    """A printable summary of ``task``: split sizes, class balance of ``split`` and, for QA tasks,
    the question-only (fit on ``split``, scored on ``eval_split``) and image-only (on
    ``eval_split``) majority heuristics. ``kw`` goes to :func:`~tinymm.data.tasks.load_task`
    (``num_samples`` sets the size of ``split`` only). The statistics read at most the first
    ``max_samples`` samples of a split (generation is lazy: a larger split costs nothing
    until read), and say so when they do."""
    check_split(eval_split)
    n_main = kw.pop("num_samples", None)
    ds = load_task(task, split, num_samples=n_main, **kw)
    n = _stats_size(ds, max_samples)
    sizes = {s: (len(ds) if s == split else DEFAULT_SIZES[s]) for s in SPLITS}
    lines = [f"task {task}: {TASKS[task]}"]
    lines.append("sizes: " + ", ".join(f"{s} {k}" for s, k in sizes.items()))
    if ds.num_classes is None:
        lines.append(f"{len(ds)} image-caption pairs in {split}; no classes")
        return "\n".join(lines)
    if n < len(ds):
        lines.append(f"statistics below: the first {n} of {len(ds)} {split} samples")
    bal = class_balance(ds, n)
    total = sum(c for _, c in bal)
    lines.append(f"class balance ({split}, {ds.num_classes} classes):")
    for name, c in bal:
        if c:
            lines.append(f"  {name:10s} {c:6d}  {c / total:6.1%}")
    majority = max(c for _, c in bal) / total
    lines.append(f"majority-class rate: {majority:.3f}")
    if isinstance(ds, QATask):
        types = collections.Counter(ds.world.head("question_type_names", n))
        lines.append("question types: " + ", ".join(f"{t} {c / total:.1%}" for t, c in sorted(types.items())))
        other = load_task(task, eval_split, **kw)
        q_only = question_only_accuracy(ds, other, max_samples=n)
        i_only = image_only_accuracy(other)
        lines.append(f"question-only majority heuristic ({split} -> {eval_split}): {q_only:.3f}")
        lines.append(f"image-only majority heuristic ({eval_split}, best bet per scene): {i_only:.3f}")
        lines.append("question + scene graph: 1.000 (every answer re-derived by the checker)")
    if ds.label_rate > 0:
        if n == len(ds):
            lines.append(f"label noise: {len(ds.label_noise)} of {len(ds)} targets flipped (rate {ds.label_rate})")
        else:
            lines.append(f"label noise: rate {ds.label_rate}")
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
