"""examples/clip_retrieval.py and examples/pretrain_finetune.py run to the end at tiny settings
(TINYMM_EXAMPLE_TINY=1) and print their tables."""
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_example(script):
    env = {**os.environ, "TINYMM_EXAMPLE_TINY": "1",
           "PYTHONPATH": os.pathsep.join(p for p in [ROOT, os.environ.get("PYTHONPATH", "")] if p)}
    out = subprocess.run([sys.executable, os.path.join("examples", script)], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    return out.stdout


def test_clip_retrieval_tiny_prints_the_table():
    text = run_example("clip_retrieval.py")
    assert "gallery: 32 held-out test pairs" in text and "string-equal duplicate" in text
    assert "ceiling under string equality" in text
    assert "CLIP (scratch)" in text
    try:
        from tinymm.models import resolve_pretrained

        resolve_pretrained("all-MiniLM-L6-v2")
    except FileNotFoundError:
        assert "locked-text variant skipped" in text
    else:
        assert "LiT (MiniLM frozen)" in text


@pytest.mark.parametrize("script", ["pretrain_finetune.py"])
def test_pretrain_finetune_tiny_compares_pretrained_and_scratch(script):
    text = run_example(script)
    assert "scratch" in text and "CLIP-pretrained" in text and "pretrained − scratch" in text
    assert "relation" in text  # the per-question-type columns
    assert "grounded stage on" in text and "unlabelled vqa questions" in text  # stage 2 ran
    assert "mean over seeds" in text
