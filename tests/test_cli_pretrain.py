"""`tinymm pretrain` end to end at the tiny preset, through subprocesses."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest


def tinymm(*args, cwd):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    return subprocess.run([sys.executable, "-m", "tinymm.cli", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=600)


def test_pretrain_tiny_reports_recall_and_saves_the_model(tmp_path):
    out = tmp_path / "clip"
    r = tinymm("pretrain", "--preset", "tiny", "--out", str(out), "--no-progress", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "image→text" in r.stdout and "text→image" in r.stdout and "R@10" in r.stdout
    assert "gallery of 64 image-caption pairs" in r.stdout and "duplicate" in r.stdout
    for name in ("run.json", "report.json", "tokenizer.json", "history.json", "model/config.json",
                 "model/model.safetensors", "checkpoints/last.safetensors"):
        assert (out / name).is_file(), name
    report = json.loads((out / "report.json").read_text())
    for direction in ("i2t", "t2i"):
        values = [report[direction][k] for k in ("1", "5", "10")]
        assert all(0.0 <= v <= 1.0 for v in values) and values == sorted(values)
    assert report["duplicates"]["items"] == 64

    from tinymm.data import Tokenizer
    from tinymm.models.clip import CLIPModel
    from tinymm.train.pretrain import retrieval_report
    from tinymm import models

    model = CLIPModel.from_pretrained(out / "model")
    rec = models.recipe("retrieval", tokenizer=Tokenizer.load(out / "tokenizer.json"))
    again = retrieval_report(model, rec, num_samples=64)
    for direction in ("i2t", "t2i"):
        np.testing.assert_allclose([again[direction][k] for k in (1, 5, 10)],
                                   [report[direction][k] for k in ("1", "5", "10")])

    # `tinymm eval` on a pretrain run reports the same recall; `predict` says why it cannot answer
    r = tinymm("eval", str(out), "--num-samples", "64", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    i2t = next(line for line in r.stdout.splitlines() if line.strip().startswith("image→text")).split()[1:]
    assert [float(v) for v in i2t] == [round(100 * report["i2t"][k], 1) for k in ("1", "5", "10")]
    r = tinymm("predict", str(out), cwd=tmp_path)
    assert r.returncode != 0 and "contrastive model" in r.stderr and "tinymm eval" in r.stderr
    assert "Traceback" not in r.stderr


def test_pretrain_help():
    r = tinymm("pretrain", "--help", cwd=None)
    assert r.returncode == 0 and "--preset" in r.stdout and "--gallery" in r.stdout


@pytest.mark.parametrize("args, words", [
    (("pretrain", "--task", "vqa", "--preset", "tiny"), "only such task is 'retrieval'"),
    (("pretrain", "--model", "bogus", "--preset", "tiny"), "unknown model 'bogus'"),
    (("pretrain", "--gallery", "5", "--preset", "tiny"), "at least 10 pairs"),
    (("pretrain", "--epochs", "0", "--preset", "tiny"), "epochs must be at least 1"),
])
def test_pretrain_user_errors_are_one_line_and_exit_2(tmp_path, args, words):
    r = tinymm(*args, cwd=tmp_path)
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert words in r.stderr and len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr
