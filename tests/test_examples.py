"""Every script in examples/ runs to the end (the quick variant where it has one)."""
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# examples with their own test file, which also checks what they print
OWN_TESTS = {"clip_retrieval.py", "pretrain_finetune.py"}  # tests/test_clip_examples.py
EXAMPLES = sorted(f for f in os.listdir(os.path.join(ROOT, "examples")) if f.endswith(".py") and f not in OWN_TESTS)
QUICK = {"two_spirals.py": ["--quick"],
         "image_classifier.py": ["--tiny"], "audio_visual.py": ["--tiny"], "video_motion.py": ["--tiny"]}
# --- text examples (issues 14 and 17): seconds-long settings
QUICK.update({"text_classifier.py": ["--tiny"], "pretrained_minilm.py": ["--tiny"], "vqa_fusion.py": ["--tiny"]})


@pytest.mark.parametrize("script", EXAMPLES)
def test_example_runs(script):
    env = {**os.environ, "TINYMM_EXAMPLE_TINY": "1"}  # examples that take it run their seconds-long settings
    out = subprocess.run([sys.executable, os.path.join("examples", script), *QUICK.get(script, [])],
                         cwd=ROOT, capture_output=True, text=True, timeout=600, env=env)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
