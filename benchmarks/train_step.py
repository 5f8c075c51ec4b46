"""The default model's training step: tinymm beside a PyTorch twin with the same architecture.

``tinymm bench train`` (or ``tinymm bench train_step``) builds the task's default model
(``tinymm.models.build("vqa")``, the find fusion model) at the quick preset's batch size
and learning rate, takes one real batch from the task's loader, and times on that batch:

- ``forward``: the model's forward in train mode (batch-norm statistics, no gradient kept);
- ``fwd+bwd``: forward, cross-entropy, backward;
- ``step``: forward, cross-entropy, ``zero_grad``, backward, AdamW step — one training step.

"torch" is a ``torch.nn`` twin built from the tinymm model itself (:func:`torch_twin`): every
layer's sizes, strides and flags are read from the tinymm modules (never written here), and
the tinymm state dict is loaded into it with ``strict=True``, so both start from the same
weights. ``tests/test_train_step_bench.py`` proves the twin computes the same logits and
gradients. Each composite module (backbone, question encoder, fusion head, ...) has a twin
class below whose ``forward`` mirrors the tinymm one line by line; a module without a twin
raises a clear error instead of being skipped.

After the table: the share of the time spent waiting for the quick preset's loader over
``--data-steps`` steps timed as the Trainer times them (its ``data_share``), the first batch
apart (it generates the training set), and the step time with that loader against the
fixed-batch step (the prefetch thread shares the CPU with the step).

``--threads N`` runs tinymm's Numba loops, NumPy's BLAS and PyTorch on N threads (default:
every core). On a machine that other jobs share, ``--threads 1`` compares the two
implementations' work without the noise of waiting for a second core, and times each call by
the process's CPU time (``--clock cpu``), which leaves out the time other processes held the
core; the data-wait line is always wall time (waiting is what it measures).
"""
from __future__ import annotations

import argparse
import functools
import os
import time

import numpy as np

from .harness import Workload, parse_args, run, sgemm_gflops, torch_or_none


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo (Linux), else what ``platform`` says."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    import platform

    return platform.processor() or platform.machine()


# ----------------------------------------------------------------------------- the torch twin


@functools.cache
def _twin_classes():
    """The torch twins of tinymm's composite modules, keyed by the tinymm class name.

    Each ``forward`` mirrors the tinymm module's ``forward`` (tinymm/models/*.py). Children
    and parameters are converted by :func:`torch_twin`, plain attributes copied, so a change
    of sizes in the tinymm model needs nothing here; a change of structure shows up as a
    failing ``tests/test_train_step_bench.py``.
    """
    import torch
    import torch.nn.functional as F

    class Twin(torch.nn.Module):
        def __init__(self, src):
            super().__init__()
            for name, child in src.named_children():
                setattr(self, name, torch_twin(child))
            for name, p in src._parameters.items():
                if p is not None:
                    setattr(self, name, torch.nn.Parameter(torch.zeros(p.shape)))
            for name, value in vars(src).items():
                if not name.startswith("_") and name != "training" and not hasattr(self, name):
                    setattr(self, name, value)

    class ConvBackbone(Twin):
        """conv{i} -> bn{i} -> ReLU for each stage i in order, as many stages as the model has."""

        def forward(self, x):
            stages = sorted(int(n[4:]) for n, _ in self.named_children() if n.startswith("conv"))
            for i in stages:
                x = F.relu(getattr(self, f"bn{i}")(getattr(self, f"conv{i}")(x)))
            return x

    class GRUTextEncoder(Twin):
        def forward(self, ids, mask):
            states, _ = self.gru(self.embed(ids))
            last = (mask.sum(dim=1) - 1).clamp(min=0)
            return states[torch.arange(ids.shape[0]), last], states

    def global_pool(img):
        flat = img.flatten(2)
        return torch.cat([flat.mean(dim=2), flat.max(dim=2)[0]], dim=1)

    class EarlyFusion(Twin):
        def forward(self, img, q, tokens, mask):
            return self.head(torch.cat([global_pool(img), q], dim=1))

    class FiLMBlock(Twin):
        def forward(self, x, q):
            gb = self.film(q)
            gamma = (gb[:, : self.c] + 1).unsqueeze(-1).unsqueeze(-1)
            beta = gb[:, self.c:].unsqueeze(-1).unsqueeze(-1)
            y = F.relu(self.bn(self.conv(x)) * gamma + beta)
            return y + x[:, : self.c] if x.shape[1] >= self.c else y

    class FiLMFusion(Twin):
        def modulate(self, img, q):
            x = img
            for blk in self.blocks:
                x = torch.cat([blk(x, q), img[:, -2:]], dim=1)
            return x

        def forward(self, img, q, tokens, mask):
            x = self.modulate(img, q)[:, :-2]
            return self.head(torch.cat([global_pool(x), q], dim=1))

    class AttentionHop(Twin):
        def forward(self, cells, query):
            scores = (self.key(cells) @ self.query(query).unsqueeze(-1)).squeeze(-1) * self.scale
            weights = F.softmax(scores, dim=-1)
            return (weights.unsqueeze(1) @ cells).squeeze(1)

    class RelationalFusion(FiLMFusion):
        def forward(self, img, q, tokens, mask):
            x = self.modulate(img, q)
            cells = x.flatten(2).transpose(1, 2)
            a = self.hop1(cells, q)
            b = self.hop2(cells, torch.cat([q, a], dim=1))
            return self.head(torch.cat([global_pool(x[:, :-2]), a, b, q], dim=1))

    class FindFusion(Twin):
        def forward(self, img, q, tokens, mask):
            cells = img.flatten(2).transpose(1, 2)
            feats = F.relu(self.cell(cells[:, :, :-2]))
            scores = self.slot(tokens).masked_fill(~mask.unsqueeze(-1), -1e9)
            queries = F.softmax(scores, dim=1).transpose(1, 2) @ self.value(tokens)
            logits = (queries @ self.key(feats).transpose(1, 2)) * self.scale
            found = F.softmax(logits, dim=-1) @ torch.cat([feats, cells[:, :, -2:]], dim=2)
            mass = torch.sigmoid(logits).mean(dim=-1)
            delta = found[:, 0, -2:] - found[:, 1, -2:]
            return self.head(torch.cat([found[:, 0], found[:, 1], delta, delta * self.axis(q), mass, q], dim=1))

    class VQAModel(Twin):
        def forward(self, batch):
            import tinymm as tm
            from tinymm.models.image import coordinate_channels

            image, ids, mask = batch["image"], batch["question_ids"], batch["question_mask"]
            B = image.shape[0]
            fmap = self.image(image)
            if not self.config.use_image:
                fmap = fmap * 0.0
            like = tm.tensor(np.zeros(1, dtype=str(fmap.dtype).removeprefix("torch.")))
            coords = coordinate_channels(B, fmap.shape[2], fmap.shape[3], like).numpy()
            img = torch.cat([fmap, torch.from_numpy(coords)], dim=1)
            if self.config.use_question:
                q, tokens = self.question(ids, mask)
            else:
                q = self.no_question.unsqueeze(0).expand(B, -1)
                tokens = q.unsqueeze(1)
                mask = torch.ones(B, 1, dtype=torch.bool)
            return self.head(img, q, tokens, mask)

    return {c.__name__: c for c in (ConvBackbone, GRUTextEncoder, EarlyFusion, FiLMBlock, FiLMFusion, AttentionHop,
                                     RelationalFusion, FindFusion, VQAModel)}


def _leaf_twin(module):
    """The torch.nn layer a tinymm layer stands for, built from the layer's own settings."""
    import torch.nn as tnn

    kind = type(module).__name__
    if kind == "Conv2d":
        return tnn.Conv2d(module.in_channels, module.out_channels, module.kernel_size, stride=module.stride,
                          padding=module.padding, dilation=module.dilation, groups=module.groups,
                          bias=module.bias is not None, padding_mode=module.padding_mode)
    if kind in ("BatchNorm1d", "BatchNorm2d"):
        return getattr(tnn, kind)(module.num_features, eps=module.eps, momentum=module.momentum,
                                  affine=module.affine, track_running_stats=module.track_running_stats)
    if kind == "Linear":
        return tnn.Linear(module.in_features, module.out_features, bias=module.bias is not None)
    if kind == "Embedding":
        return tnn.Embedding(module.num_embeddings, module.embedding_dim, padding_idx=module.padding_idx)
    if kind in ("GRU", "LSTM"):
        return getattr(tnn, kind)(module.input_size, module.hidden_size, num_layers=module.num_layers,
                                  bias=module.bias, batch_first=module.batch_first, dropout=module.dropout,
                                  bidirectional=module.bidirectional)
    if kind in ("ReLU", "GELU", "Tanh", "Sigmoid", "Identity"):
        return getattr(tnn, kind)()
    if kind == "Sequential":
        return tnn.Sequential(*(torch_twin(m) for m in module))
    if kind == "ModuleList":
        return tnn.ModuleList([torch_twin(m) for m in module])
    return None


def torch_twin(module):
    """A torch.nn module computing what the tinymm ``module`` computes (weights not copied:
    see :func:`load_twin`). Raises TypeError for a module that has no twin here."""
    twin = _leaf_twin(module)
    if twin is None:
        cls = _twin_classes().get(type(module).__name__)
        if cls is None:
            raise TypeError(f"benchmarks/train_step.py: no torch twin for tinymm module {type(module).__name__}; "
                            f"add one beside the others")
        twin = cls(module)
    return twin.train(module.training)


def load_twin(model):
    """The torch twin of ``model`` holding ``model``'s state dict (loaded strictly)."""
    import torch

    twin = torch_twin(model)
    state = {k: torch.from_numpy(np.array(v.numpy(), copy=True)) for k, v in model.state_dict().items()}
    twin.load_state_dict(state, strict=True)
    return twin


def torch_batch(raw: dict) -> dict:
    """The collated NumPy batch as torch tensors (numeric arrays only), as Trainer.to_tensors does."""
    import torch

    return {k: torch.from_numpy(v) for k, v in raw.items() if isinstance(v, np.ndarray) and v.dtype.kind in "fiub"}


# ----------------------------------------------------------------------------- the workloads


def default_setup(batch_size: int | None = None, seed: int = 0):
    """(recipe, tinymm model, one collated training batch, preset) for the default vqa model."""
    import tinymm as tm
    from tinymm import models
    from tinymm.data import load_task
    from tinymm.train.runs import PRESETS, _loader

    preset = dict(PRESETS["quick"])
    batch_size = batch_size or preset["batch_size"]
    rec = models.recipe("vqa")
    tm.manual_seed(seed)
    model = models.build("vqa", None, rec)
    ds = load_task("vqa", "train", num_samples=4 * batch_size, image_size=rec.image_size)
    raw = next(iter(_loader(ds, rec, batch_size, shuffle=True, seed=seed)))
    return rec, model, raw, preset


def make_workloads(torch, rec, model, raw, lr: float):
    import tinymm as tm
    from tinymm import optim
    from tinymm.train.trainer import to_tensors

    twin = load_twin(model) if torch is not None else None
    opt = optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
    target = rec.target_key

    def tm_fwd():
        with tm.no_grad():
            return model(to_tensors(raw, "cpu"))

    def tm_fb():
        model.zero_grad()
        batch = to_tensors(raw, "cpu")
        rec.loss(model(batch), batch).backward()

    def tm_step():
        batch = to_tensors(raw, "cpu")
        loss = rec.loss(model(batch), batch)
        loss.item()  # the Trainer reads the loss every step
        opt.zero_grad()
        loss.backward()
        opt.step()

    t_fwd = t_fb = t_step = None
    if twin is not None:
        F = torch.nn.functional
        topt = torch.optim.AdamW(twin.parameters(), lr=lr, weight_decay=1e-4)

        def t_fwd():
            with torch.no_grad():
                return twin(torch_batch(raw))

        def t_fb():
            twin.zero_grad()
            batch = torch_batch(raw)
            F.cross_entropy(twin(batch), batch[target]).backward()

        def t_step():
            batch = torch_batch(raw)
            loss = F.cross_entropy(twin(batch), batch[target])
            loss.item()
            topt.zero_grad()
            loss.backward()
            topt.step()

    B = raw["image"].shape[0]
    name = f"{model.config.fusion} vqa B{B}"
    return [Workload(f"forward  {name}", {"tinymm": tm_fwd, "torch": t_fwd}, note="(train mode, no grad)"),
            Workload(f"fwd+bwd  {name}", {"tinymm": tm_fb, "torch": t_fb}, note="(+ cross-entropy)"),
            Workload(f"step     {name}", {"tinymm": tm_step, "torch": t_step}, note="(+ zero_grad, AdamW)")]


def data_wait(rec, model, preset: dict, steps: int, seed: int = 0) -> dict:
    """The quick preset's loader (shuffled, prefetch as ``tinymm train`` sets it) feeding
    ``steps`` training steps, timed as the Trainer times them: the wait in ``next(loader)``
    and the step after it. The first batch of a run also generates the training set's scenes
    and questions (cached for every later epoch), so it is reported apart from the others."""
    from tinymm import optim
    from tinymm.data import load_task
    from tinymm.train.runs import _loader
    from tinymm.train.trainer import to_tensors

    train = load_task("vqa", "train", num_samples=preset["train_samples"], image_size=rec.image_size)
    loader = _loader(train, rec, preset["batch_size"], True, seed, prefetch=2)
    opt = optim.AdamW(model.parameters(), lr=preset["lr"], weight_decay=1e-4)
    waits, work = [], []
    it = iter(loader)
    try:
        for _ in range(steps):
            t0 = time.perf_counter()
            raw = next(it)
            t1 = time.perf_counter()
            batch = to_tensors(raw, "cpu")
            loss = rec.loss(model(batch), batch)
            loss.item()
            opt.zero_grad()
            loss.backward()
            opt.step()
            waits.append(t1 - t0)
            work.append(time.perf_counter() - t1)
    finally:
        it.close()
    rest_wait, rest_work = sum(waits[1:]), sum(work[1:])
    return {"steps": steps, "prefetch": loader.prefetch, "first_wait_s": waits[0],
            "share_after_first": rest_wait / max(rest_wait + rest_work, 1e-12),
            "share_all": sum(waits) / max(sum(waits) + sum(work), 1e-12),
            "step_s_after_first": rest_work / max(steps - 1, 1)}


def main(argv=None):
    extra = argparse.ArgumentParser(add_help=False)
    extra.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    extra.add_argument("--data-steps", type=int, default=40, help="Trainer steps for the data-wait share (0: skip)")
    extra.add_argument("--clock", choices=("cpu", "wall"), default=None,
                       help="cpu: the process's CPU time (default with --threads 1: on a shared machine it "
                            "leaves out the time other processes had the core); wall: elapsed time (default "
                            "otherwise: several threads' CPU time would add up)")
    known, rest = extra.parse_known_args(argv)
    args = parse_args(rest, description="tinymm benchmark: the default vqa model's training step beside a "
                                        "PyTorch twin (also: --threads N, --data-steps N)")
    import numba
    from threadpoolctl import threadpool_limits

    from tinymm.train.trainer import to_tensors

    threads = max(1, known.threads)
    torch = torch_or_none()
    numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
    threadpool_limits(threads)
    if torch is not None:
        torch.set_num_threads(threads)
    sgemm = sgemm_gflops(threads)
    info = {"cpu_model": cpu_model(), "threads": threads, f"sgemm_gflops_{threads}_threads": sgemm,
            "load_average": os.getloadavg()}
    print(f"# CPU: {cpu_model()}; --threads {threads}; sgemm 1024^3 float32 on {threads} thread(s): "
          f"{sgemm:.0f} GF/s; load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    rec, model, raw, preset = default_setup()
    print(f"# model: {model.config}")
    t0 = time.perf_counter()
    model(to_tensors(raw, "cpu"))
    print(f"# first forward (kernel compilation or cache load): {time.perf_counter() - t0:.1f} s")
    clock = known.clock or ("cpu" if threads == 1 else "wall")
    info["clock"] = clock
    print(f"# times: {'the process CPU time' if clock == 'cpu' else 'wall time'} per call")
    rows = run("train_step", make_workloads(torch, rec, model, raw, preset["lr"]), args=args, info=info,
               clock=time.process_time if clock == "cpu" else time.perf_counter)
    if known.data_steps > 0:
        d = data_wait(rec, model, preset, max(2, known.data_steps))
        step = next((r.get("tinymm_median_s") for r in rows if r["workload"].startswith("step")), None)
        print(f"# data: {d['steps']} steps on the quick preset's loader (shuffled, prefetch {d['prefetch']}): "
              f"the first batch waited {d['first_wait_s']:.2f} s (it generates the training set's scenes and "
              f"questions, once per run); after it {100 * d['share_after_first']:.1f}% of the time waiting "
              f"for a batch ({100 * d['share_all']:.1f}% with the first); "
              f"{d['step_s_after_first'] * 1e3:.1f} ms per step with the loader's thread running"
              + (f", {step * 1e3:.1f} ms on a fixed batch" if step else ""))
    return rows


if __name__ == "__main__":
    main()
