"""`tinymm train / eval / predict` end to end at the tiny preset, through subprocesses."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest


def tinymm(*args, cwd):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    return subprocess.run([sys.executable, "-m", "tinymm.cli", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("runs")
    r = tinymm("train", "--preset", "tiny", "--out", str(d / "vqa"), "--no-progress", cwd=d)
    assert r.returncode == 0, r.stderr
    assert "accuracy" in r.stdout and "relation" in r.stdout and "macro precision" in r.stdout
    return d / "vqa"


def test_train_writes_every_file(run_dir):
    for name in ("run.json", "report.json", "history.json", "history.csv", "loss.png", "metrics.png",
                 "confusion_matrix.png", "tokenizer.json", "checkpoints/last.safetensors",
                 "checkpoints/best.safetensors", "model/config.json", "model/model.safetensors"):
        assert (run_dir / name).is_file(), name
    report = json.loads((run_dir / "report.json").read_text())
    assert 0.0 <= report["accuracy"] <= 1.0 and set(report["per_type"]) >= {"colour", "relation", "side"}


def test_eval_and_predict_read_the_run(run_dir):
    r = tinymm("eval", str(run_dir), "--num-samples", "64", cwd=run_dir)
    assert r.returncode == 0, r.stderr
    assert "accuracy" in r.stdout
    r = tinymm("predict", str(run_dir), "--index", "5", cwd=run_dir)
    assert r.returncode == 0, r.stderr
    assert "answer" in r.stdout and "truth:" in r.stdout and "question" in r.stdout


def test_resume_continues_the_run(run_dir):
    r = tinymm("train", "--preset", "tiny", "--epochs", "2", "--out", str(run_dir), "--resume", "--no-progress",
               cwd=run_dir)
    assert r.returncode == 0, r.stderr
    assert len(json.loads((run_dir / "history.json").read_text())) == 2


@pytest.mark.parametrize("args, words", [
    (("train", "--task", "nope", "--preset", "tiny"), "unknown task 'nope'"),
    (("train", "--model", "bogus", "--preset", "tiny"), "unknown model 'bogus'"),
    (("eval", "no-such-run"), "not a tinymm run directory"),
    (("predict", "no-such-run"), "not a tinymm run directory"),
])
def test_user_errors_are_one_line_and_exit_2(tmp_path, args, words):
    r = tinymm(*args, cwd=tmp_path)
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert words in r.stderr and "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


def test_resume_with_another_model_or_a_corrupt_checkpoint_exits_2(run_dir, tmp_path):
    r = tinymm("train", "--preset", "tiny", "--model", "film", "--out", str(run_dir), "--resume", cwd=tmp_path)
    assert r.returncode == 2 and "trained with model='find'" in r.stderr and "Traceback" not in r.stderr
    import shutil

    broken = tmp_path / "broken"
    shutil.copytree(run_dir, broken)
    (broken / "checkpoints" / "last.safetensors").write_bytes(b"garbage!")
    r = tinymm("train", "--preset", "tiny", "--out", str(broken), "--resume", cwd=tmp_path)
    assert r.returncode == 2 and "last.safetensors" in r.stderr and "Traceback" not in r.stderr


def test_cuda_without_a_gpu_is_one_line(tmp_path):
    pytest.importorskip("numpy")
    try:
        import cupy  # noqa: F401

        pytest.skip("a CUDA stack is importable here: the no-GPU message cannot be shown")
    except ImportError:
        pass
    r = tinymm("train", "--preset", "tiny", "--device", "cuda", "--out", str(tmp_path / "x"), cwd=tmp_path)
    assert r.returncode == 2 and "cuda" in r.stderr.lower() and "Traceback" not in r.stderr


def test_threads_below_one_is_one_line(tmp_path):
    r = tinymm("train", "--preset", "tiny", "--threads", "0", "--out", str(tmp_path / "x"), cwd=tmp_path)
    assert r.returncode == 2 and "--threads must be at least 1, got 0" in r.stderr and "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
