"""A tiny wav2vec2-for-CTC speech recogniser, written the way HuggingFace transformers'
modeling_wav2vec2.py and torchaudio's tutorials write it: a conv feature extractor (Conv1d stack,
the first layer with GroupNorm(num_groups=channels), GELU), feature projection (LayerNorm, Linear,
dropout), a positional convolution (grouped Conv1d under nn.utils.weight_norm(name="weight",
dim=2), SamePad removing the last frame, GELU), a pre-LN transformer encoder
(nn.TransformerEncoderLayer with batch_first and norm_first, src_key_padding_mask), SpecAugment
time masking through a masked_spec_embed parameter assigned by boolean indexing, output lengths
from the conv arithmetic with torch.div(rounding_mode="floor"), the attention mask built with
torch.arange(...) < lengths[:, None], the CTC loss as HF computes it (labels padded with -100,
masked_select, log_softmax(dtype=torch.float32).transpose(0, 1), F.ctc_loss with blank = pad id,
reduction "mean" / "sum", zero_infinity) next to nn.CTCLoss, the feature extractor frozen
(_freeze_parameters), AdamW + a linear warmup/decay LambdaLR, clip_grad_norm_, and greedy CTC
decoding (argmax, torch.unique_consecutive, dropping blanks) into characters, with a
character error rate from an edit distance."""
import math

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

VOCAB = ["<pad>", "|", "a", "b", "c", "d", "e"]
PAD_ID = 0


class Config:
    conv_dim = (8, 8, 8)
    conv_stride = (3, 2, 2)
    conv_kernel = (6, 3, 3)
    conv_bias = False
    hidden_size = 16
    num_attention_heads = 2
    intermediate_size = 32
    num_hidden_layers = 2
    num_conv_pos_embeddings = 4
    num_conv_pos_embedding_groups = 2
    layer_norm_eps = 1e-5
    vocab_size = len(VOCAB)
    pad_token_id = PAD_ID
    ctc_loss_reduction = "mean"
    ctc_zero_infinity = True
    mask_time_prob = 0.3
    mask_time_length = 2


class Wav2Vec2GroupNormConvLayer(nn.Module):
    def __init__(self, config, layer_id=0):
        super().__init__()
        self.in_conv_dim = config.conv_dim[layer_id - 1] if layer_id > 0 else 1
        self.out_conv_dim = config.conv_dim[layer_id]
        self.conv = nn.Conv1d(self.in_conv_dim, self.out_conv_dim, kernel_size=config.conv_kernel[layer_id],
                              stride=config.conv_stride[layer_id], bias=config.conv_bias)
        self.activation = nn.GELU()
        self.layer_norm = nn.GroupNorm(num_groups=self.out_conv_dim, num_channels=self.out_conv_dim, affine=True)

    def forward(self, hidden_states):
        hidden_states = self.conv(hidden_states)
        hidden_states = self.layer_norm(hidden_states)
        hidden_states = self.activation(hidden_states)
        return hidden_states


class Wav2Vec2NoLayerNormConvLayer(nn.Module):
    def __init__(self, config, layer_id=0):
        super().__init__()
        self.in_conv_dim = config.conv_dim[layer_id - 1] if layer_id > 0 else 1
        self.out_conv_dim = config.conv_dim[layer_id]
        self.conv = nn.Conv1d(self.in_conv_dim, self.out_conv_dim, kernel_size=config.conv_kernel[layer_id],
                              stride=config.conv_stride[layer_id], bias=config.conv_bias)
        self.activation = nn.GELU()

    def forward(self, hidden_states):
        hidden_states = self.conv(hidden_states)
        hidden_states = self.activation(hidden_states)
        return hidden_states


class Wav2Vec2FeatureEncoder(nn.Module):
    def __init__(self, config):
        super().__init__()
        conv_layers = [Wav2Vec2GroupNormConvLayer(config, layer_id=0)] + [
            Wav2Vec2NoLayerNormConvLayer(config, layer_id=i + 1) for i in range(len(config.conv_dim) - 1)]
        self.conv_layers = nn.ModuleList(conv_layers)
        self._requires_grad = True

    def _freeze_parameters(self):
        for param in self.parameters():
            param.requires_grad = False
        self._requires_grad = False

    def forward(self, input_values):
        hidden_states = input_values[:, None]
        # make sure hidden_states require grad for gradient_checkpointing
        if self._requires_grad and self.training:
            hidden_states.requires_grad = True
        for conv_layer in self.conv_layers:
            hidden_states = conv_layer(hidden_states)
        return hidden_states


class Wav2Vec2FeatureProjection(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.layer_norm = nn.LayerNorm(config.conv_dim[-1], eps=config.layer_norm_eps)
        self.projection = nn.Linear(config.conv_dim[-1], config.hidden_size)
        self.dropout = nn.Dropout(0.0)

    def forward(self, hidden_states):
        norm_hidden_states = self.layer_norm(hidden_states)
        hidden_states = self.projection(norm_hidden_states)
        hidden_states = self.dropout(hidden_states)
        return hidden_states, norm_hidden_states


class Wav2Vec2SamePadLayer(nn.Module):
    def __init__(self, num_conv_pos_embeddings):
        super().__init__()
        self.num_pad_remove = 1 if num_conv_pos_embeddings % 2 == 0 else 0

    def forward(self, hidden_states):
        if self.num_pad_remove > 0:
            hidden_states = hidden_states[:, :, : -self.num_pad_remove]
        return hidden_states


class Wav2Vec2PositionalConvEmbedding(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.conv = nn.Conv1d(config.hidden_size, config.hidden_size, kernel_size=config.num_conv_pos_embeddings,
                              padding=config.num_conv_pos_embeddings // 2, groups=config.num_conv_pos_embedding_groups)
        weight_norm = nn.utils.weight_norm
        if hasattr(nn.utils.parametrizations, "weight_norm"):
            weight_norm = nn.utils.parametrizations.weight_norm
        self.conv = weight_norm(self.conv, name="weight", dim=2)
        self.padding = Wav2Vec2SamePadLayer(config.num_conv_pos_embeddings)
        self.activation = nn.GELU()

    def forward(self, hidden_states):
        hidden_states = hidden_states.transpose(1, 2)
        hidden_states = self.conv(hidden_states)
        hidden_states = self.padding(hidden_states)
        hidden_states = self.activation(hidden_states)
        hidden_states = hidden_states.transpose(1, 2)
        return hidden_states


class Wav2Vec2Encoder(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.pos_conv_embed = Wav2Vec2PositionalConvEmbedding(config)
        self.layer_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(0.0)
        layer = nn.TransformerEncoderLayer(config.hidden_size, config.num_attention_heads, config.intermediate_size,
                                           dropout=0.0, activation="gelu", layer_norm_eps=config.layer_norm_eps,
                                           batch_first=True, norm_first=True)
        self.layers = nn.TransformerEncoder(layer, config.num_hidden_layers, enable_nested_tensor=False)

    def forward(self, hidden_states, attention_mask=None):
        if attention_mask is not None:
            # make sure padded tokens output 0
            expand_attention_mask = attention_mask.unsqueeze(-1).repeat(1, 1, hidden_states.shape[2])
            hidden_states[~expand_attention_mask] = 0
        position_embeddings = self.pos_conv_embed(hidden_states)
        hidden_states = hidden_states + position_embeddings
        hidden_states = self.dropout(hidden_states)
        key_padding_mask = None if attention_mask is None else ~attention_mask
        hidden_states = self.layers(hidden_states, src_key_padding_mask=key_padding_mask)
        hidden_states = self.layer_norm(hidden_states)
        return hidden_states


class Wav2Vec2ForCTC(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.config = config
        self.feature_extractor = Wav2Vec2FeatureEncoder(config)
        self.feature_projection = Wav2Vec2FeatureProjection(config)
        self.masked_spec_embed = nn.Parameter(torch.Tensor(config.hidden_size).uniform_())
        self.encoder = Wav2Vec2Encoder(config)
        self.dropout = nn.Dropout(0.0)
        self.lm_head = nn.Linear(config.hidden_size, config.vocab_size)

    def freeze_feature_encoder(self):
        self.feature_extractor._freeze_parameters()

    def _get_feat_extract_output_lengths(self, input_lengths):
        def _conv_out_length(input_length, kernel_size, stride):
            # 1D convolutional layer output length formula taken
            # from https://pytorch.org/docs/stable/generated/torch.nn.Conv1d.html
            return torch.div(input_length - kernel_size, stride, rounding_mode="floor") + 1

        for kernel_size, stride in zip(self.config.conv_kernel, self.config.conv_stride):
            input_lengths = _conv_out_length(input_lengths, kernel_size, stride)
        return input_lengths

    def _get_feature_vector_attention_mask(self, feature_vector_length, attention_mask):
        non_padded_lengths = attention_mask.cumsum(dim=-1)[:, -1]
        output_lengths = self._get_feat_extract_output_lengths(non_padded_lengths).to(torch.long)
        batch_size = attention_mask.shape[0]
        attention_mask = torch.zeros(
            (batch_size, feature_vector_length), dtype=attention_mask.dtype, device=attention_mask.device)
        # these two operations makes sure that all values before the output lengths idxs are attended to
        attention_mask[(torch.arange(attention_mask.shape[0], device=attention_mask.device), output_lengths - 1)] = 1
        attention_mask = attention_mask.flip([-1]).cumsum(-1).flip([-1]).bool()
        return attention_mask

    def forward(self, input_values, attention_mask=None, labels=None, mask_time_indices=None):
        extract_features = self.feature_extractor(input_values)
        extract_features = extract_features.transpose(1, 2)
        if attention_mask is not None:
            attention_mask = self._get_feature_vector_attention_mask(extract_features.shape[1], attention_mask)
        hidden_states, extract_features = self.feature_projection(extract_features)
        if mask_time_indices is not None:
            hidden_states[mask_time_indices] = self.masked_spec_embed.to(hidden_states.dtype)
        hidden_states = self.encoder(hidden_states, attention_mask=attention_mask)
        hidden_states = self.dropout(hidden_states)
        logits = self.lm_head(hidden_states)

        loss = None
        if labels is not None:
            if labels.max() >= self.config.vocab_size:
                raise ValueError(f"Label values must be <= vocab_size: {self.config.vocab_size}")
            # retrieve loss input_lengths from attention_mask
            attention_mask = (
                attention_mask if attention_mask is not None else torch.ones_like(input_values, dtype=torch.long))
            input_lengths = attention_mask.sum(-1).to(torch.long)
            # assuming that padded tokens are filled with -100
            # when not being attended to
            labels_mask = labels >= 0
            target_lengths = labels_mask.sum(-1)
            flattened_targets = labels.masked_select(labels_mask)
            # ctc_loss doesn't support fp16
            log_probs = nn.functional.log_softmax(logits, dim=-1, dtype=torch.float32).transpose(0, 1)
            with torch.backends.cudnn.flags(enabled=False):
                loss = nn.functional.ctc_loss(
                    log_probs, flattened_targets, input_lengths, target_lengths, blank=self.config.pad_token_id,
                    reduction=self.config.ctc_loss_reduction, zero_infinity=self.config.ctc_zero_infinity)
        return loss, logits, attention_mask


def compute_mask_indices(shape, mask_prob, mask_length, rng, min_masks=0):
    """SpecAugment spans in NumPy (a simplified _compute_mask_indices, drawn from a seeded rng)."""
    batch_size, sequence_length = shape
    spec_aug_mask = np.zeros((batch_size, sequence_length), dtype=bool)
    num_masked_span = max(int(mask_prob * sequence_length / mask_length + rng.random()), min_masks)
    for b in range(batch_size):
        starts = rng.choice(sequence_length - mask_length + 1, num_masked_span, replace=False)
        for s in starts:
            spec_aug_mask[b, s:s + mask_length] = True
    return spec_aug_mask


class GreedyCTCDecoder(torch.nn.Module):
    def __init__(self, labels, blank=0):
        super().__init__()
        self.labels = labels
        self.blank = blank

    def forward(self, emission: torch.Tensor) -> str:
        indices = torch.argmax(emission, dim=-1)  # [num_seq,]
        indices = torch.unique_consecutive(indices, dim=-1)
        indices = [i for i in indices if i != self.blank]
        return "".join([self.labels[i] for i in indices])


def edit_distance(a, b):
    d = list(range(len(b) + 1))
    for i in range(1, len(a) + 1):
        prev, d[0] = d[0], i
        for j in range(1, len(b) + 1):
            cur = min(d[j] + 1, d[j - 1] + 1, prev + (a[i - 1] != b[j - 1]))
            prev, d[j] = d[j], cur
    return d[len(b)]


def encode(text):
    return [VOCAB.index(c) for c in text.replace(" ", "|")]


rng = np.random.default_rng(0)
config = Config()
torch.manual_seed(0)
model = Wav2Vec2ForCTC(config)
share_init(model)
report("state", sorted(k for k in model.state_dict() if "pos_conv" in k), sum(p.numel() for p in model.parameters()))
model.freeze_feature_encoder()
report("trainable", sum(p.numel() for p in model.parameters() if p.requires_grad))

# a batch of 3 "utterances" of different lengths, zero-padded, with padded labels (-100)
lengths = [160, 130, 100]
waves = np.zeros((3, 160), np.float32)
for i, n in enumerate(lengths):
    waves[i, :n] = rng.standard_normal(n).astype(np.float32)
input_values = torch.from_numpy(waves)
input_values = (input_values - input_values.mean(-1, keepdim=True)) / torch.sqrt(input_values.var(-1, keepdim=True) + 1e-7)
attention_mask = torch.from_numpy((np.arange(160)[None, :] < np.array(lengths)[:, None]).astype(np.int64))
texts = ["abc d", "bad", "ce"]
label_lists = [encode(t) for t in texts]
labels = torch.full((3, max(map(len, label_lists))), -100, dtype=torch.long)
for i, l in enumerate(label_lists):
    labels[i, :len(l)] = torch.tensor(l)
report("feat lengths", model._get_feat_extract_output_lengths(torch.tensor(lengths)).tolist())

optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=3e-3, weight_decay=0.005)
num_training_steps, num_warmup_steps = 5, 1


def lr_lambda(current_step: int):
    if current_step < num_warmup_steps:
        return float(current_step) / float(max(1, num_warmup_steps))
    return max(0.0, float(num_training_steps - current_step) / float(max(1, num_training_steps - num_warmup_steps)))


scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_lambda)
for step in range(num_training_steps):
    model.train()
    mask_time_indices = torch.from_numpy(compute_mask_indices((3, 12), config.mask_time_prob, config.mask_time_length, rng, min_masks=1))
    loss, logits, feat_mask = model(input_values, attention_mask=attention_mask, labels=labels,
                                    mask_time_indices=mask_time_indices)
    loss.backward()
    grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    optimizer.step()
    scheduler.step()
    optimizer.zero_grad()
    report("step", step, loss.item(), grad_norm.item(), scheduler.get_last_lr()[0], feat_mask.sum(-1).tolist())

# the same loss three ways: HF's "sum" reduction, nn.CTCLoss on padded targets, and a per-sample
# loss; an impossible alignment (target longer than the input) is inf, or 0 with zero_infinity
model.eval()
with torch.no_grad():
    _, logits, feat_mask = model(input_values, attention_mask=attention_mask)
log_probs = logits.log_softmax(-1).transpose(0, 1).detach().requires_grad_()
input_lengths = feat_mask.sum(-1)
target_lengths = (labels >= 0).sum(-1)
padded_targets = labels.clamp(min=0)
ctc = nn.CTCLoss(blank=0, reduction="none", zero_infinity=False)
per_sample = ctc(log_probs, padded_targets, input_lengths, target_lengths)
summed = F.ctc_loss(log_probs, labels.masked_select(labels >= 0), input_lengths, target_lengths, reduction="sum")
summed.backward()
report("ctc", per_sample.tolist(), summed.item(), log_probs.grad.abs().sum().item(), log_probs.grad[:, 2].abs().sum().item())
short = torch.full((2,), 2, dtype=torch.long)
impossible = F.ctc_loss(log_probs[:2, :2], torch.tensor([[2, 3, 4], [2, 2, 2]]), short, torch.tensor([3, 3]), reduction="none")
report("impossible", [math.isinf(v) for v in impossible.tolist()],
       F.ctc_loss(log_probs[:2, :2], torch.tensor([[2, 3, 4], [2, 2, 2]]), short, torch.tensor([3, 3]), zero_infinity=True).item())

decoder = GreedyCTCDecoder(labels=VOCAB, blank=0)
transcripts = [decoder(logits[i, :n]) for i, n in enumerate(input_lengths.tolist())]
cer = sum(edit_distance(t, r.replace(" ", "|")) for t, r in zip(transcripts, texts)) / sum(len(r) for r in texts)
report("decode", transcripts, cer)
ids = torch.tensor([0, 2, 2, 0, 0, 3, 3, 3, 2, 0])
out, inverse, counts = torch.unique_consecutive(ids, return_inverse=True, return_counts=True)
report("unique_consecutive", out.tolist(), inverse.tolist(), counts.tolist(),
       torch.unique_consecutive(torch.tensor([[1, 1, 2], [1, 1, 2], [3, 3, 3]]), dim=0).tolist())
