"""Real PyTorch code, run unchanged but for its imports: each script in ``pytorch_scripts/`` is
written for PyTorch (minGPT, the CIFAR tutorial CNN with a checkpoint, a seq2seq with attention,
the VAE example with a custom autograd.Function, a CIFAR ResNet with mixup, a Transformer text
classifier, the DCGAN example, an actor-critic, the word language model, a U-Net; and probe3's: a timm-style
ViT, the MNIST VAE, the attention seq2seq tutorial, nanoGPT's model.py + train.py, a torchvision
ResNet training loop; and probe4's, from the PyTorch examples: time_sequence_prediction (LSTMCell, LBFGS,
float64), fast_neural_style, super_resolution, siamese_network, reinforce and language_translation; and probe5's: a
DDPM, a Mixture-of-Experts transformer, a RealNVP flow, a TCN and a WaveNet, a CLIP-style trainer, LoRA fine-tuning,
CleanRL's PPO, a VQ-VAE, EmbeddingBag and packed-RNN text classifiers with checkpointing, GCN/GAT graph
networks, and an STFT log-mel audio classifier; and probe6's: ConvNeXt + Swin (shifted windows with torch.roll),
a diffusers-style conditional UNet with EMA, MAE pre-training + layer-decay fine-tuning, SimCLR + DINO (+ LARS), a
wav2vec2 CTC recogniser with greedy decoding, and torchvision's MobileNetV2 / EfficientNet blocks; and probe7's: the
PyTorch tutorial's BiLSTM-CRF tagger, MAML sine regression (second-order, first-order, Meta-SGD, learn2learn's
clone/update_module), the DQN tutorial on a grid world, a Burgers PINN with LBFGS plus an RK4 neural ODE, exact GP
regression from scratch, and a HuggingFace-style BERT masked-LM pretraining step; and the lead's: pygcn with its
torch.sparse adjacency, and the Double Backward with Custom Functions tutorial; and probe9's, multimodal: ViLT, a
Flamingo (Perceiver resampler + gated cross-attention), BLIP/ALBEF retrieval with momentum queues and multinomial hard
negatives, an audio-visual fusion classifier (log-mel + R(2+1)D video), a CoCa captioner with beam search, a VQA
trainer (checkpointing, GradScaler, OneCycleLR, EMA), LLaVA, Whisper, and CoOp/CoCoOp prompt learning with
Tip-Adapter; and probe8's: pytorch-forecasting's
Temporal Fusion Transformer, N-BEATS with an N-HiTS block, GluonTS-style DeepAR with StudentT/NegativeBinomial
likelihoods and ancestral sampling (and a low-rank Gaussian DeepVAR), rtdl's FT-Transformer with TabTransformer, DLRM with a two-tower retriever, and
Autoformer/FEDformer with RevIN, TabNet (sparsemax/entmax Functions, ghost batch norm) with missing-value
imputation and quantile-bin encodings, PatchTST / TimesNet / Informer's embeddings and distilling / LSTNet, and SASRec / LightGCN (torch.sparse.mm) /
NeuMF / DeepFM recommenders, and ES-RNN (Holt-Winters recursion, dilated residual LSTMs, pinball loss)); and probe10's,
video and speech: a HiFi-GAN vocoder step (weight-normed ConvTranspose1d, MRF blocks, period/scale discriminators,
remove_weight_norm), an ESPnet/WeNet Conformer CTC (relative-position MHA with rel_shift, GLU depthwise conv module),
VideoMAE tube-masked pre-training with a TimeSformer divided space-time classifier, SlowFast with lateral fusion and
precise BN plus an X3D block, a fairseq speech-to-text model (ConvTBC under weight_norm, label-smoothed NLL), and a WaveGlow flow
(invertible 1x1 convs with logdet, WN coupling layers, reverse inference); and probe11's: WGAN-GP with SNGAN/BigGAN pieces (both spectral_norm APIs, conditional BatchNorm, hinge loss, SAGAN attention), StyleGAN2 (modulated grouped conv, R1, path-length regularisation), CycleGAN + pix2pix, DiffAugment with an EMA generator deep-copied before training, and taming-transformers' VQGAN loss (adaptive weight from autograd.grad w.r.t. the decoder's last layer); and probe12's, detection and dense prediction: DETR (sine position embedding, Hungarian matching by SciPy on cdist / GIoU costs, aux losses), FCOS with a YOLO head (focal / GIoU / centerness losses, hand-written batched NMS), DeepLabV3 / V3+ / SegNet (ASPP, OHEM, bincount confusion matrix, max_unpool2d), PointNet / PointNet++ / DGCNN (farthest point sampling, ball query, knn by topk), RAFT with a PWC warp and the STN tutorial (correlation pyramid, grid_sample lookups, convex upsampling by unfold, affine_grid), pose / CenterNet / Mask R-CNN heads (soft-argmax, pixel_shuffle, cummax corner pooling, RoIAlign by grid_sample) and monodepth2 (backprojection, SSIM, auto-masked min reprojection); and probe15's, modern LLM code: a LLaMA decoder (complex RoPE, GQA, KV cache, top-p), a T5 encoder-decoder with relative position buckets and beam search, DPO / reward-model / PPO-GAE losses, a byte-level LM on packed sequences (cu_seqlens, FlexAttention document masks), HF-style training and generation utilities (cosine warmup, checkpointing, logits processors), and a Mamba selective-scan LM with recurrent inference. The test runs it with torch, then with its ``import torch...`` lines pointed at tinymm, from the same initial
weights, and compares everything the script reports (losses per step, accuracies, learning
rates, generated tokens, final statistics) to float32 rounding."""
import linecache
import math
import re
import sys
import types
from pathlib import Path

import numpy as np
import pytest

from helpers import TORCH_REASON, torch

SCRIPTS = sorted((Path(__file__).parent / "pytorch_scripts").glob("*.py"))


def swap_imports(src: str) -> str:
    """``import torch[.x] [as y]`` and ``from torch[.x] import ...`` lines pointed at tinymm."""
    def one(item: str) -> str:
        item = item.strip()
        if item == "torch":
            return "tinymm as torch"
        return re.sub(r"^torch(\.|\s|$)", r"tinymm\1", item)

    out = []
    for line in src.split("\n"):
        m = re.match(r"^(\s*)import (.*)$", line)
        if m and "torch" in m.group(2):
            line = m.group(1) + "import " + ", ".join(one(i) for i in m.group(2).split(","))
        line = re.sub(r"^(\s*)from torch(\.| )", r"\1from tinymm\2", line)
        out.append(line)
    return "\n".join(out)


def _run(path: Path, lib: str, tmp: Path):
    reports = []
    if lib == "torch":
        def share_init(module, name="model"):
            np.savez(tmp / f"{name}.npz", **{k: v.detach().numpy() for k, v in module.state_dict().items()})
        src = path.read_text()
    else:
        import tinymm

        def share_init(module, name="model"):
            saved = np.load(tmp / f"{name}.npz")
            module.load_state_dict({k: tinymm.tensor(saved[k]) for k in saved.files})
        src = swap_imports(path.read_text())
    # the script runs as an importable module: torch's dynamo (behind FlexAttention's eager path)
    # imports the module a traced function's globals name
    module = types.ModuleType(f"pytorch_script_{path.stem}")
    g = module.__dict__
    g.update({"report": lambda *v: reports.append(v), "share_init": share_init, "TMP": str(tmp)})
    filename = f"{path} ({lib})"
    # the source registered as a file's would be: torch.jit.script reads a function's source lines
    linecache.cache[filename] = (len(src), None, src.splitlines(True), filename)
    sys.modules[module.__name__] = module
    try:
        exec(compile(src, filename, "exec"), g)
    finally:
        sys.modules.pop(module.__name__, None)
    return reports


def _same(a, b, where):
    if isinstance(a, (list, tuple)):
        assert isinstance(b, (list, tuple)) and len(a) == len(b), f"{where}: {a!r} vs {b!r}"
        for i, (x, y) in enumerate(zip(a, b)):
            _same(x, y, f"{where}[{i}]")
    elif isinstance(a, float) or isinstance(b, float):
        assert math.isclose(float(a), float(b), rel_tol=1e-4, abs_tol=1e-5), f"{where}: torch {a!r}, tinymm {b!r}"
    else:
        assert a == b, f"{where}: torch {a!r}, tinymm {b!r}"


def test_swap_imports_points_every_torch_import_at_tinymm():
    src = ("import torch, torch.nn as nn, torch.nn.functional as F\nimport numpy as np\n"
           "from torch.utils.data import DataLoader\n    from torch import nn\nimport torch.utils.checkpoint as cp")
    assert swap_imports(src) == (
        "import tinymm as torch, tinymm.nn as nn, tinymm.nn.functional as F\nimport numpy as np\n"
        "from tinymm.utils.data import DataLoader\n    from tinymm import nn\nimport tinymm.utils.checkpoint as cp")


@pytest.mark.skipif(torch is None, reason=TORCH_REASON)
@pytest.mark.parametrize("path", SCRIPTS, ids=[p.stem for p in SCRIPTS])
def test_a_pytorch_script_runs_unchanged_and_reports_torchs_numbers(path, tmp_path):
    # torch on one thread: its intra-op pool spun up for these tiny models cost 10-20 s a
    # script on a 2-core CI machine whose other core runs another test process
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    # process-wide switches a script may flip (resume_training turns on deterministic
    # algorithms): restored after it, for both libraries, so that later tests in this process
    # see the defaults
    import tinymm

    settings = [(lib.are_deterministic_algorithms_enabled(), lib.is_deterministic_algorithms_warn_only_enabled(),
                 lib.get_default_dtype(), lib.is_grad_enabled()) for lib in (torch, tinymm)]
    try:
        theirs = _run(path, "torch", tmp_path)
        torch.set_num_threads(threads)
        ours = _run(path, "tinymm", tmp_path)
    finally:
        torch.set_num_threads(threads)
        for lib, (det, warn_only, dtype, grad) in zip((torch, tinymm), settings):
            lib.use_deterministic_algorithms(det, warn_only=warn_only)
            lib.set_default_dtype(dtype)
            lib.set_grad_enabled(grad)
    assert theirs, "the script reported nothing"
    assert len(ours) == len(theirs)
    for i, (a, b) in enumerate(zip(theirs, ours)):
        _same(list(a), list(b), f"{path.stem} report {i}")
