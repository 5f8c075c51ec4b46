"""Benchmark: generating the multimodal world (``python -m benchmarks.data`` / ``tinymm bench data``).

The headline workload generates 10,000 samples with images (3x32x32), captions and questions
(scene sampling, rendering, text), the issue's target being under 2 s on one core. The other rows
split that cost up and time the lazy per-item modalities (video frames, spoken questions).
There is no NumPy/PyTorch twin for these, so only the tinymm column is filled.
"""
from __future__ import annotations

import random

import numpy as np

from .harness import Workload, parse_args, run
from tinymm.data.generate import World
from tinymm.data.language import make_caption
from tinymm.data.questions import make_question
from tinymm.data.render import render_images
from tinymm.data.world import sample_scenes


def _generate_all(world):
    return world.images, world.captions, world.questions


def workloads(quick: bool = False) -> list[Workload]:
    n = 10_000
    scenes = sample_scenes(n, np.random.default_rng(0))
    dicts = scenes.to_dicts()
    small = World(64, captions=False, questions=True)
    video_world = World(64, video=True, captions=False, questions=False, images=False)

    def captions():
        r = random.Random(0)
        return [make_caption(d, r) for d in dicts]

    def questions():
        r = random.Random(0)
        return [make_question(d, r) for d in dicts]

    def spoken(k=10):
        return [small.audio(i) for i in range(k)]

    def frames(k=10):
        return [video_world.video(i) for i in range(k)]

    return [
        # World is lazy: asking for the whole-world arrays generates every block.
        Workload("generate vqa 10k @32px", {"tinymm": lambda: _generate_all(World(n))},
                 note="scenes + images + captions + questions"),
        Workload("sample 10k scenes", {"tinymm": lambda: sample_scenes(n, np.random.default_rng(0))}),
        Workload("render 10k images @32px", {"tinymm": lambda: render_images(scenes)}),
        Workload("render 10k images @32px, noise 0.05",
                 {"tinymm": lambda: render_images(scenes, noise=0.05, rng=np.random.default_rng(0))}),
        Workload("10k captions", {"tinymm": captions}),
        Workload("10k questions", {"tinymm": questions}),
        Workload("10 spoken questions @8kHz (lazy)", {"tinymm": spoken}),
        Workload("10 videos T=8 @32px (lazy)", {"tinymm": frames}),
    ]


def main(argv=None):
    args = parse_args(argv, description="tinymm benchmark: data generation")
    rows = run(title="data", workloads=workloads(args.quick), args=args)
    for row in rows:
        if row["workload"].startswith("generate vqa 10k") and "tinymm_median_s" in row:
            t = row["tinymm_median_s"]
            print(f"10,000 samples (images, captions, questions) in {t:.2f} s "
                  f"({'within' if t < 2.0 else 'over'} the 2 s target)")
    return rows


if __name__ == "__main__":
    main()
