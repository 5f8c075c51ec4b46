"""Answering a *spoken* question about an image (task ``av_qa``): the fused model against the
image-only and audio-only baselines, overall and per question type, in one table.

    python examples/audio_visual.py [--epochs 8] [--train-samples 2000] [--tiny]

The fused model (tinymm.models.AVQAModel) reads the image with a small CNN and the waveform with
tinymm.models.AudioEncoder (log-mel -> conv1d -> GRU); its FiLM head lets the spoken question
scale and shift the image's feature maps. The baselines are the same model with one input cut.
A question about an image cannot be answered from the image alone (which question?), nor from
the audio alone (which image?) beyond guessing the likeliest answer of its question type, so
the gap between the rows is what fusion buys.

Samples are generated once and kept in memory (speech synthesis is the slow part), so the run
is bounded by epochs and samples, not time. ``--tiny`` (or env TINYMM_EXAMPLE_TINY=1) is a
seconds-long smoke run.
"""
import argparse
import os

import tinymm as tm
from tinymm import models
from tinymm.data import load_task
from tinymm.train import format_table, score, train_epochs

KEEP = ("image", "audio", "sample_rate", "answer", "question_type", "index")  # what the model and scoring read


def materialise(task, split, n, types):
    ds = load_task(task, split, num_samples=n, question_types=types)
    return [{k: s[k] for k in KEEP} for s in (ds[i] for i in range(n))]


def train_and_score(name, rec, train, test, epochs, lr, config, seed=0):
    """Train model ``name`` of ``av_qa``; return {"accuracy": ..., per question type: ...} on ``test``."""
    tm.manual_seed(seed)
    model = models.build(rec.task, name, rec, **config)
    trainer = train_epochs(model, rec, train, epochs, lr, seed=seed, log=lambda msg: print(f"  {name:<11}", msg, flush=True))
    return score(trainer, rec, test)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--epochs", type=int, default=8)
    p.add_argument("--train-samples", type=int, default=2000)
    p.add_argument("--test-samples", type=int, default=1000)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--question-types", default="exist,count,colour,shape,size",
                   help="comma-separated av_qa question types (default: the single-object ones)")
    p.add_argument("--tiny", action="store_true", help="a seconds-long smoke run (also env TINYMM_EXAMPLE_TINY=1)")
    args = p.parse_args(argv)
    tiny = args.tiny or os.environ.get("TINYMM_EXAMPLE_TINY") == "1"
    epochs, n_train, n_test = (1, 64, 64) if tiny else (args.epochs, args.train_samples, args.test_samples)
    config = {"channels": 8, "audio_channels": 8, "hidden": 16, "head_hidden": 16} if tiny else \
        {"channels": 24, "audio_channels": 32, "hidden": 64, "head_hidden": 128}
    types = tuple(args.question_types.split(","))

    rec = models.recipe("av_qa")
    print(f"av_qa: {n_train} train / {n_test} test samples, question types {', '.join(types)}; {epochs} epochs per model")
    train, test = materialise("av_qa", "train", n_train, types), materialise("av_qa", "test", n_test, types)
    rows = [(name, train_and_score(name, rec, train, test, epochs, args.lr, config))
            for name in (models.DEFAULT_MODEL["av_qa"], *models.BASELINES["av_qa"])]

    print(format_table(f"\ntest accuracy on av_qa (image + spoken question -> answer), {epochs} epochs", rows))


if __name__ == "__main__":
    main()
