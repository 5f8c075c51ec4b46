"""A tiny Whisper (speech-to-text encoder-decoder), written the way openai/whisper's model.py,
audio.py and decoding.py write it: pad_or_trim with F.pad, log_mel_spectrogram (torch.stft with
a hann_window, stft[..., :-1].abs() ** 2, filters @ magnitudes, clamp(min=1e-10).log10(),
torch.maximum against max - 8, (x + 4) / 4), the dtype-following subclasses LayerNorm
(super().forward(x.float()).type(x.dtype)), Linear (F.linear with weight.to(x.dtype)) and Conv1d
(an overridden _conv_forward), sinusoidal positions from torch.exp / torch.arange, a causal mask
buffer from torch.empty().fill_(-np.inf).triu_(1), attention through
F.scaled_dot_product_attention(is_causal=...) with q/k/v from Linear layers, a key/value cache
kept by forward hooks on the key and value projections (a hook that returns the concatenated
output replaces it) and removed through the hook handles, alignment heads as a sparse boolean
buffer (to_sparse(), indices().T), logits against the token embedding's transposed weight,
language detection by masking every non-language token with a boolean index and -np.inf,
SuppressBlank / SuppressTokens / ApplyTimestampRules filters (list indexing = -np.inf,
logsumexp of the timestamp block against the max text logprob), greedy decoding with sum_logprobs
gathered with torch.arange indexing, and a median filter over the cross-attention weights by
F.pad(mode="reflect") + unfold + sort."""
from typing import Dict, Iterable, Optional

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

SAMPLE_RATE, N_FFT, HOP_LENGTH, CHUNK_LENGTH = 1600, 64, 16, 1
N_SAMPLES = CHUNK_LENGTH * SAMPLE_RATE  # 1600 samples in a 1-second chunk
N_FRAMES = N_SAMPLES // HOP_LENGTH      # 100 frames in a mel spectrogram input
N_MELS = 10

# a toy tokenizer's ids: text tokens 0..19, then the specials, then 11 timestamps
EOT, SOT, LANG_EN, LANG_DE, TRANSCRIBE, NO_TIMESTAMPS, SPACE = 20, 21, 22, 23, 24, 25, 3
TIMESTAMP_BEGIN = 26
N_VOCAB = TIMESTAMP_BEGIN + 11


def pad_or_trim(array, length: int = N_SAMPLES, *, axis: int = -1):
    if array.shape[axis] > length:
        array = array.index_select(dim=axis, index=torch.arange(length, device=array.device))
    if array.shape[axis] < length:
        pad_widths = [(0, 0)] * array.ndim
        pad_widths[axis] = (0, length - array.shape[axis])
        array = F.pad(array, [pad for sizes in pad_widths[::-1] for pad in sizes])
    return array


def mel_filters(n_mels: int) -> torch.Tensor:
    """A triangular filterbank over the rfft bins (librosa's, precomputed in whisper; built here)."""
    n_freqs = N_FFT // 2 + 1
    edges = np.linspace(0, n_freqs - 1, n_mels + 2)
    bins = np.arange(n_freqs)
    fb = np.maximum(0, np.minimum((bins[None] - edges[:-2, None]) / (edges[1:-1, None] - edges[:-2, None]),
                                  (edges[2:, None] - bins[None]) / (edges[2:, None] - edges[1:-1, None])))
    return torch.from_numpy(fb.astype(np.float32))


def log_mel_spectrogram(audio, n_mels: int = N_MELS, padding: int = 0):
    if padding > 0:
        audio = F.pad(audio, (0, padding))
    window = torch.hann_window(N_FFT).to(audio.device)
    stft = torch.stft(audio, N_FFT, HOP_LENGTH, window=window, return_complex=True)
    magnitudes = stft[..., :-1].abs() ** 2
    filters = mel_filters(n_mels)
    mel_spec = filters @ magnitudes
    log_spec = torch.clamp(mel_spec, min=1e-10).log10()
    log_spec = torch.maximum(log_spec, log_spec.max() - 8.0)
    log_spec = (log_spec + 4.0) / 4.0
    return log_spec


class LayerNorm(nn.LayerNorm):
    def forward(self, x: Tensor) -> Tensor:
        return super().forward(x.float()).type(x.dtype)


class Linear(nn.Linear):
    def forward(self, x: Tensor) -> Tensor:
        return F.linear(x, self.weight.to(x.dtype), None if self.bias is None else self.bias.to(x.dtype))


class Conv1d(nn.Conv1d):
    def _conv_forward(self, x: Tensor, weight: Tensor, bias: Optional[Tensor]) -> Tensor:
        return super()._conv_forward(x, weight.to(x.dtype), None if bias is None else bias.to(x.dtype))


def sinusoids(length, channels, max_timescale=10000):
    """Returns sinusoids for positional embedding"""
    assert channels % 2 == 0
    log_timescale_increment = np.log(max_timescale) / (channels // 2 - 1)
    inv_timescales = torch.exp(-log_timescale_increment * torch.arange(channels // 2))
    scaled_time = torch.arange(length)[:, np.newaxis] * inv_timescales[np.newaxis, :]
    return torch.cat([torch.sin(scaled_time), torch.cos(scaled_time)], dim=1)


class MultiHeadAttention(nn.Module):
    def __init__(self, n_state: int, n_head: int):
        super().__init__()
        self.n_head = n_head
        self.query = Linear(n_state, n_state)
        self.key = Linear(n_state, n_state, bias=False)
        self.value = Linear(n_state, n_state)
        self.out = Linear(n_state, n_state)

    def forward(self, x: Tensor, xa: Optional[Tensor] = None, mask: Optional[Tensor] = None,
                kv_cache: Optional[dict] = None):
        q = self.query(x)
        if kv_cache is None or xa is None or self.key not in kv_cache:
            # hooks, if installed (i.e. kv_cache is not None), will prepend the cached kv tensors;
            # otherwise, perform key/value projections for self- or cross-attention as usual.
            k = self.key(x if xa is None else xa)
            v = self.value(x if xa is None else xa)
        else:
            # for cross-attention, calculate keys and values once and reuse in subsequent calls.
            k = kv_cache[self.key]
            v = kv_cache[self.value]
        wv, qk = self.qkv_attention(q, k, v, mask)
        return self.out(wv), qk

    def qkv_attention(self, q: Tensor, k: Tensor, v: Tensor, mask: Optional[Tensor] = None):
        n_batch, n_ctx, n_state = q.shape
        scale = (n_state // self.n_head) ** -0.25
        q = q.view(*q.shape[:2], self.n_head, -1).permute(0, 2, 1, 3)
        k = k.view(*k.shape[:2], self.n_head, -1).permute(0, 2, 1, 3)
        v = v.view(*v.shape[:2], self.n_head, -1).permute(0, 2, 1, 3)
        if mask is not None and n_ctx > 1 and k.shape[2] == n_ctx:
            a = F.scaled_dot_product_attention(q, k, v, is_causal=True)
            out = a.permute(0, 2, 1, 3).flatten(start_dim=2)
            qk = None
        else:
            qk = (q * scale) @ (k * scale).transpose(-1, -2)
            if mask is not None:
                qk = qk + mask[:n_ctx, :n_ctx]
            qk = qk.float()
            w = F.softmax(qk, dim=-1).to(q.dtype)
            out = (w @ v).permute(0, 2, 1, 3).flatten(start_dim=2)
            qk = qk.detach()
        return out, qk


class ResidualAttentionBlock(nn.Module):
    def __init__(self, n_state: int, n_head: int, cross_attention: bool = False):
        super().__init__()
        self.attn = MultiHeadAttention(n_state, n_head)
        self.attn_ln = LayerNorm(n_state)
        self.cross_attn = MultiHeadAttention(n_state, n_head) if cross_attention else None
        self.cross_attn_ln = LayerNorm(n_state) if cross_attention else None
        n_mlp = n_state * 4
        self.mlp = nn.Sequential(Linear(n_state, n_mlp), nn.GELU(), Linear(n_mlp, n_state))
        self.mlp_ln = LayerNorm(n_state)

    def forward(self, x, xa=None, mask=None, kv_cache=None):
        x = x + self.attn(self.attn_ln(x), mask=mask, kv_cache=kv_cache)[0]
        cross_qk = None
        if self.cross_attn:
            out, cross_qk = self.cross_attn(self.cross_attn_ln(x), xa, kv_cache=kv_cache)
            x = x + out
        x = x + self.mlp(self.mlp_ln(x))
        return x, cross_qk


class AudioEncoder(nn.Module):
    def __init__(self, n_mels, n_ctx, n_state, n_head, n_layer):
        super().__init__()
        self.conv1 = Conv1d(n_mels, n_state, kernel_size=3, padding=1)
        self.conv2 = Conv1d(n_state, n_state, kernel_size=3, stride=2, padding=1)
        self.register_buffer("positional_embedding", sinusoids(n_ctx, n_state))
        self.blocks: Iterable[ResidualAttentionBlock] = nn.ModuleList(
            [ResidualAttentionBlock(n_state, n_head) for _ in range(n_layer)])
        self.ln_post = LayerNorm(n_state)

    def forward(self, x: Tensor):
        """x : torch.Tensor, shape = (batch_size, n_mels, n_ctx)"""
        x = F.gelu(self.conv1(x))
        x = F.gelu(self.conv2(x))
        x = x.permute(0, 2, 1)
        assert x.shape[1:] == self.positional_embedding.shape, "incorrect audio shape"
        x = (x + self.positional_embedding).to(x.dtype)
        for block in self.blocks:
            x, _ = block(x)
        return self.ln_post(x)


class TextDecoder(nn.Module):
    def __init__(self, n_vocab, n_ctx, n_state, n_head, n_layer):
        super().__init__()
        self.token_embedding = nn.Embedding(n_vocab, n_state)
        self.positional_embedding = nn.Parameter(torch.empty(n_ctx, n_state))
        self.blocks: Iterable[ResidualAttentionBlock] = nn.ModuleList(
            [ResidualAttentionBlock(n_state, n_head, cross_attention=True) for _ in range(n_layer)])
        self.ln = LayerNorm(n_state)
        mask = torch.empty(n_ctx, n_ctx).fill_(-np.inf).triu_(1)
        self.register_buffer("mask", mask, persistent=False)

    def forward(self, x: Tensor, xa: Tensor, kv_cache: Optional[dict] = None, return_cross_qk=False):
        offset = next(iter(kv_cache.values())).shape[1] if kv_cache else 0
        x = self.token_embedding(x) + self.positional_embedding[offset: offset + x.shape[-1]]
        x = x.to(xa.dtype)
        cross_qks = []
        for block in self.blocks:
            x, cross_qk = block(x, xa, mask=self.mask, kv_cache=kv_cache)
            cross_qks.append(cross_qk)
        x = self.ln(x)
        logits = (x @ torch.transpose(self.token_embedding.weight.to(x.dtype), 0, 1)).float()
        return (logits, cross_qks) if return_cross_qk else logits


class Whisper(nn.Module):
    def __init__(self, n_state=16, n_head=2, n_layer=2, n_text_ctx=12):
        super().__init__()
        self.encoder = AudioEncoder(N_MELS, N_FRAMES // 2, n_state, n_head, n_layer)
        self.decoder = TextDecoder(N_VOCAB, n_text_ctx, n_state, n_head, n_layer)
        nn.init.normal_(self.decoder.positional_embedding, std=0.02)
        # use the last half among the decoder layers for time alignment by default;
        all_heads = torch.zeros(n_layer, n_head, dtype=torch.bool)
        all_heads[n_layer // 2:] = True
        self.register_buffer("alignment_heads", all_heads.to_sparse(), persistent=False)

    def embed_audio(self, mel):
        return self.encoder(mel)

    def logits(self, tokens, audio_features):
        return self.decoder(tokens, audio_features)

    def forward(self, mel, tokens):
        return self.decoder(tokens, self.encoder(mel))

    def install_kv_cache_hooks(self, cache: Optional[dict] = None):
        cache = {**cache} if cache is not None else {}
        hooks = []

        def save_to_cache(module, _, output):
            if module not in cache or output.shape[1] > self.decoder.positional_embedding.shape[0]:
                # save as-is, for the first token or cross attention
                cache[module] = output
            else:
                cache[module] = torch.cat([cache[module], output], dim=1).detach()
            return cache[module]

        def install_hooks(layer: nn.Module):
            if isinstance(layer, MultiHeadAttention):
                hooks.append(layer.key.register_forward_hook(save_to_cache))
                hooks.append(layer.value.register_forward_hook(save_to_cache))

        self.decoder.apply(install_hooks)
        return cache, hooks

    @torch.no_grad()
    def detect_language(self, mel):
        audio_features = self.embed_audio(mel)
        n_audio = mel.shape[0]
        x = torch.tensor([[SOT]] * n_audio)
        logits = self.logits(x, audio_features)[:, 0]
        # collect detected languages; suppress all non-language tokens
        mask = torch.ones(logits.shape[-1], dtype=torch.bool)
        mask[[LANG_EN, LANG_DE]] = False
        logits[:, mask] = -np.inf
        language_tokens = logits.argmax(dim=-1)
        language_token_probs = logits.softmax(dim=-1).cpu()
        return language_tokens, language_token_probs[:, [LANG_EN, LANG_DE]]


class SuppressBlank:
    def __init__(self, sample_begin: int):
        self.sample_begin = sample_begin

    def apply(self, logits: Tensor, tokens: Tensor):
        if tokens.shape[1] == self.sample_begin:
            logits[:, [SPACE] + [EOT]] = -np.inf


class SuppressTokens:
    def __init__(self, suppress_tokens):
        self.suppress_tokens = list(suppress_tokens)

    def apply(self, logits: Tensor, tokens: Tensor):
        logits[:, self.suppress_tokens] = -np.inf


class ApplyTimestampRules:
    def __init__(self, sample_begin: int, max_initial_timestamp_index: Optional[int] = 3):
        self.sample_begin = sample_begin
        self.max_initial_timestamp_index = max_initial_timestamp_index

    def apply(self, logits: Tensor, tokens: Tensor):
        # suppress <|notimestamps|> which is handled by without_timestamps
        logits[:, NO_TIMESTAMPS] = -np.inf
        # timestamps have to appear in pairs, except directly before EOT; mask logits accordingly
        for k in range(tokens.shape[0]):
            sampled_tokens = tokens[k, self.sample_begin:]
            seq = [t for t in sampled_tokens.tolist()]
            last_was_timestamp = len(seq) >= 1 and seq[-1] >= TIMESTAMP_BEGIN
            penultimate_was_timestamp = len(seq) < 2 or seq[-2] >= TIMESTAMP_BEGIN
            if last_was_timestamp:
                if penultimate_was_timestamp:  # has to be non-timestamp
                    logits[k, TIMESTAMP_BEGIN:] = -np.inf
                else:  # cannot be normal text tokens
                    logits[k, : EOT] = -np.inf
            timestamps = sampled_tokens[sampled_tokens.ge(TIMESTAMP_BEGIN)]
            if timestamps.numel() > 0:
                # timestamps shouldn't decrease; forbid timestamp tokens smaller than the last
                if last_was_timestamp and not penultimate_was_timestamp:
                    timestamp_last = timestamps[-1]
                else:
                    timestamp_last = timestamps[-1] + 1
                logits[k, TIMESTAMP_BEGIN: timestamp_last] = -np.inf
        if tokens.shape[1] == self.sample_begin:
            # suppress generating non-timestamp tokens at the beginning
            logits[:, : TIMESTAMP_BEGIN] = -np.inf
            # apply the `max_initial_timestamp` option
            if self.max_initial_timestamp_index is not None:
                last_allowed = TIMESTAMP_BEGIN + self.max_initial_timestamp_index
                logits[:, last_allowed + 1:] = -np.inf
        # if sum of probability over timestamps is above any other token, sample timestamp
        logprobs = F.log_softmax(logits.float(), dim=-1)
        for k in range(tokens.shape[0]):
            timestamp_logprob = logprobs[k, TIMESTAMP_BEGIN:].logsumexp(dim=-1)
            max_text_token_logprob = logprobs[k, : TIMESTAMP_BEGIN].max()
            if timestamp_logprob > max_text_token_logprob:
                logits[k, : TIMESTAMP_BEGIN] = -np.inf


@torch.no_grad()
def greedy_decode(model, mel, timestamps=True, sample_len=8):
    n_audio = mel.shape[0]
    audio_features = model.embed_audio(mel)
    sot_sequence = [SOT, LANG_EN, TRANSCRIBE] + ([] if timestamps else [NO_TIMESTAMPS])
    sample_begin = len(sot_sequence)
    tokens = torch.tensor([sot_sequence]).repeat(n_audio, 1)
    filters = [SuppressBlank(sample_begin), SuppressTokens([SOT, LANG_EN, LANG_DE, TRANSCRIBE])]
    if timestamps:
        filters.append(ApplyTimestampRules(sample_begin))
    kv_cache, hooks = model.install_kv_cache_hooks()
    sum_logprobs = torch.zeros(n_audio)
    completed = torch.zeros(n_audio, dtype=torch.bool)
    try:
        for i in range(sample_len):
            step_tokens = tokens if i == 0 else tokens[:, -1:]
            logits = model.decoder(step_tokens, audio_features, kv_cache=kv_cache)[:, -1]
            for logit_filter in filters:
                logit_filter.apply(logits, tokens)
            next_tokens = logits.argmax(dim=-1)
            logprobs = F.log_softmax(logits.float(), dim=-1)
            current_logprobs = logprobs[torch.arange(logprobs.shape[0]), next_tokens]
            sum_logprobs += current_logprobs * (tokens[:, -1] != EOT)
            next_tokens[tokens[:, -1] == EOT] = EOT
            tokens = torch.cat([tokens, next_tokens[:, None]], dim=-1)
            completed = (tokens[:, -1] == EOT).all()
            if completed or tokens.shape[-1] > model.decoder.positional_embedding.shape[0] - 1:
                break
    finally:
        for hook in hooks:
            hook.remove()
    return tokens, sum_logprobs, sorted(kv_cache_shape(kv_cache))


def kv_cache_shape(kv_cache: Dict[nn.Module, Tensor]):
    return [tuple(v.shape) for v in kv_cache.values()]


def median_filter(x: torch.Tensor, filter_width: int):
    """Apply a median filter of width `filter_width` along the last dimension of `x`"""
    pad_width = filter_width // 2
    if x.shape[-1] <= pad_width:
        # F.pad requires the padding width to be smaller than the input dimension
        return x
    if (ndim := x.ndim) <= 2:
        # `F.pad` does not support 1D or 2D inputs for reflect padding but supports 3D and 4D
        x = x[None, None, :]
    assert filter_width > 0 and filter_width % 2 == 1, "`filter_width` should be an odd number"
    x = F.pad(x, (filter_width // 2, filter_width // 2, 0, 0), mode="reflect")
    # sort() is faster than torch.median (https://github.com/pytorch/pytorch/issues/51450)
    result = x.unfold(-1, filter_width, 1).sort()[0][..., filter_width // 2]
    if ndim <= 2:
        result = result[0, 0]
    return result


def make_batch(rng, n=3):
    """A chirp per utterance whose pitch says the word; tokens "<sot> <en> <transcribe> <ts0> w
    w+5 <ts3> <eot>"; utterances of different lengths padded by pad_or_trim."""
    mels, tokens = [], []
    for _ in range(n):
        w = int(rng.integers(0, 5))
        length = int(rng.integers(1000, 1800))
        t = np.arange(length) / SAMPLE_RATE
        audio = (0.5 * np.sin(2 * np.pi * (100 + 120 * w) * t) + 0.05 * rng.standard_normal(length)).astype(np.float32)
        audio = pad_or_trim(torch.from_numpy(audio))
        mels.append(log_mel_spectrogram(audio))
        tokens.append([SOT, LANG_EN, TRANSCRIBE, TIMESTAMP_BEGIN, 4 + w, 9 + w, TIMESTAMP_BEGIN + 3, EOT])
    return torch.stack(mels), torch.tensor(tokens)


torch.manual_seed(0)
rng = np.random.default_rng(0)
model = Whisper()
share_init(model)
report("alignment_heads", model.alignment_heads.indices().T.tolist(), model.alignment_heads.is_sparse,
       sorted(k for k in model.state_dict() if "mask" in k or "positional" in k))
mel, tokens = make_batch(rng)
report("mel", tuple(mel.shape), mel.max().item(), mel.min().item(), mel.mean().item())

optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2, weight_decay=0.01)
for step in range(25):
    mel, tokens = make_batch(rng)
    model.train()
    logits = model(mel, tokens[:, :-1])
    # the loss starts after the prompt (<sot> <en> <transcribe>)
    targets = tokens[:, 1:].clone()
    targets[:, :2] = -100
    loss = F.cross_entropy(logits.transpose(1, 2), targets, ignore_index=-100)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    report("step", step, loss.item(), model.decoder.positional_embedding.grad.abs().sum().item())

model.eval()
mel, tokens = make_batch(rng, 4)
langs, lang_probs = model.detect_language(mel)
report("language", langs.tolist(), lang_probs.tolist())
decoded, sum_logprobs, cache_shapes = greedy_decode(model, mel, timestamps=True)
report("greedy ts", decoded.tolist(), sum_logprobs.tolist(), cache_shapes, tokens.tolist())
decoded, sum_logprobs, _ = greedy_decode(model, mel, timestamps=False)
report("greedy", decoded.tolist(), sum_logprobs.tolist())
with torch.no_grad():
    no_cache = model(mel, decoded[:, :6])[:, -1]
    kv_cache, hooks = model.install_kv_cache_hooks()
    audio_features = model.embed_audio(mel)
    model.decoder(decoded[:, :5], audio_features, kv_cache=kv_cache)
    cached = model.decoder(decoded[:, 5:6], audio_features, kv_cache=kv_cache)[:, -1]
    for hook in hooks:
        hook.remove()
    shapes_before = kv_cache_shape(kv_cache)
    model.decoder(decoded[:, :3], audio_features)  # the removed hooks no longer write to the cache
    n_hooks = kv_cache_shape(kv_cache) == shapes_before
    logits, cross_qks = model.decoder(decoded[:, :6], audio_features, return_cross_qk=True)
    weights = torch.stack([cross_qks[_l][:, _h] for _l, _h in model.alignment_heads.indices().T])  # (heads, B, T, S)
    weights = (weights * 1.0).softmax(dim=-1)
    std, mean = torch.std_mean(weights, dim=-2, keepdim=True, unbiased=False)
    weights = (weights - mean) / std
    weights = median_filter(weights, 7)
report("cache", (no_cache - cached).abs().max().item() < 1e-5, n_hooks, tuple(weights.shape), weights[0, 0, :, :4].tolist(),
       median_filter(torch.tensor([3.0, 1, 4, 1, 5, 9, 2, 6]), 3).tolist())
