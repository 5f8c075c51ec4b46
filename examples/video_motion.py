"""Motion in video: which way do the objects move (``video_cls``), and questions about a moving
scene (``video_qa``: motion, existence, count, colour, shape, size), each model against its
baselines, in two small tables.

    python examples/video_motion.py [--epochs 5] [--train-samples 2000] [--tiny]

tinymm.models.VideoEncoder embeds every frame with a small CNN (flattened, so the embedding
says *where* things are) and runs a GRU, an LSTM or a Transformer layer over the frames. One
frame cannot tell left from right motion (the first row of the first table: a single-frame
model, the temporal model seeing only frame 0), the sequence can. For ``video_qa`` the frame
states become a 1×T map that the question modulates (FiLM), against the video-only and
question-only baselines.

Runs are bounded by epochs and samples (seeded), never by time. ``--tiny`` (or env
TINYMM_EXAMPLE_TINY=1) is a seconds-long smoke run.
"""
import argparse
import os

import tinymm as tm
from tinymm import models
from tinymm.data import load_task
from tinymm.train import format_table, score, train_epochs


def materialise(task, split, n, keep):
    ds = load_task(task, split, num_samples=n)
    return [{k: s[k] for k in keep} for s in (ds[i] for i in range(n))]


def first_frame(samples):
    """The same clips cut to their first frame: a video model that cannot see motion."""
    return [{**s, "video": s["video"][:1]} for s in samples]


def train_and_score(task, name, rec, train, test, epochs, lr, config, seed=0):
    """Train model ``name`` of ``task``; return {"accuracy": ..., and per question type for QA} on ``test``."""
    tm.manual_seed(seed)
    model = models.build(task, name, rec, **models.preset_config(task, name, config))
    trainer = train_epochs(model, rec, train, epochs, lr, seed=seed,
                           log=lambda msg: print(f"  {task} {name:<11}", msg, flush=True))
    return score(trainer, rec, test)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--train-samples", type=int, default=2000)
    p.add_argument("--test-samples", type=int, default=1000)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--tasks", default="video_cls,video_qa", help="which tables (default both)")
    p.add_argument("--tiny", action="store_true", help="a seconds-long smoke run (also env TINYMM_EXAMPLE_TINY=1)")
    args = p.parse_args(argv)
    tiny = args.tiny or os.environ.get("TINYMM_EXAMPLE_TINY") == "1"
    epochs, n_train, n_test = (1, 64, 64) if tiny else (args.epochs, args.train_samples, args.test_samples)
    config = {"channels": 4, "embed_dim": 8, "hidden": 16, "head_hidden": 16} if tiny else \
        {"channels": 16, "embed_dim": 64, "hidden": 64, "head_hidden": 128}

    tasks = args.tasks.split(",")
    if "video_cls" in tasks:
        video_cls(n_train, n_test, epochs, args.lr, config)
    if "video_qa" in tasks:
        video_qa(n_train, n_test, epochs, args.lr, config)


def video_cls(n_train, n_test, epochs, lr, config):
    rec = models.recipe("video_cls")
    print(f"video_cls ({', '.join(rec.class_names)}): {n_train} train / {n_test} test clips of 8 frames; {epochs} epochs")
    keep = ("video", "label", "index")
    train, test = materialise("video_cls", "train", n_train, keep), materialise("video_cls", "test", n_test, keep)
    rows = [("gru, first frame only", train_and_score("video_cls", "gru", rec, first_frame(train), first_frame(test),
                                                      epochs, lr, config))]
    rows += [(name, train_and_score("video_cls", name, rec, train, test, epochs, lr, config))
             for name in ("gru", "lstm", "attention")]
    print(format_table(f"\ntest accuracy on video_cls (video -> motion direction), {epochs} epochs", rows))


def video_qa(n_train, n_test, epochs, lr, config):
    rec = models.recipe("video_qa")
    print(f"\nvideo_qa: {n_train} train / {n_test} test; {epochs} epochs per model")
    keep = ("video", "question", "answer", "question_type", "index")
    train, test = materialise("video_qa", "train", n_train, keep), materialise("video_qa", "test", n_test, keep)
    rows = [(name, train_and_score("video_qa", name, rec, train, test, epochs, lr, config))
            for name in (models.DEFAULT_MODEL["video_qa"], *models.BASELINES["video_qa"])]
    print(format_table(f"\ntest accuracy on video_qa (video + question -> answer), {epochs} epochs", rows))


if __name__ == "__main__":
    main()
