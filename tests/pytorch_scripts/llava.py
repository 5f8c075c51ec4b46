"""A tiny LLaVA (a vision tower, a projector and a LLaMA-style language model), written the way
HuggingFace transformers' modeling_llava.py / modeling_llama.py and the LLaVA repository write it:
a CLIP-like ViT returning every hidden state (the penultimate one taken, the CLS token dropped
with [:, 1:]), a two-layer GELU projector, image features merged into the token embeddings with
masked_scatter at the <image> positions ((input_ids == id).unsqueeze(-1).expand_as(embeds)),
RMSNorm, rotary embeddings (inv_freq as a non-persistent buffer, torch.outer via matmul of
expanded tensors, cat((freqs, freqs)).cos(), rotate_half), grouped-query attention (repeat_kv
through expand + reshape) under F.scaled_dot_product_attention with a 4-D additive causal mask
built from torch.finfo(dtype).min, triu and masked_fill with the padding mask, SwiGLU MLPs,
left-padded batches with position_ids = attention_mask.cumsum(-1) - 1 and masked_fill_, a
key/value cache concatenated along the sequence, the HF init (_init_weights through apply, tied
input/output embeddings), resize_token_embeddings for an added <image> token (new rows at the mean
of the old ones), labels with IGNORE_INDEX on prompt and image positions, a frozen vision tower,
AdamW with get_cosine_schedule_with_warmup, and generation through a repetition-penalty and top-p
logits processor (gather / torch.where / scatter_, sort + softmax + cumsum + scatter) then argmax,
with the cache and without it."""
import math

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

IGNORE_INDEX = -100
PAD, BOS, EOS = 0, 1, 2


class Config:
    vocab_size = 24           # <image> is added later as id 24
    hidden_size = 16
    intermediate_size = 32
    num_hidden_layers = 2
    num_attention_heads = 4
    num_key_value_heads = 2
    rms_norm_eps = 1e-6
    rope_theta = 10000.0
    initializer_range = 0.02
    vision_hidden = 12
    vision_layers = 2
    patch_size = 4
    image_size = 8
    vision_feature_layer = -2


class CLIPVisionTower(nn.Module):
    def __init__(self, config):
        super().__init__()
        d = config.vision_hidden
        self.patch_embedding = nn.Conv2d(3, d, kernel_size=config.patch_size, stride=config.patch_size, bias=False)
        num_positions = (config.image_size // config.patch_size) ** 2 + 1
        self.class_embedding = nn.Parameter(torch.randn(d))
        self.position_embedding = nn.Embedding(num_positions, d)
        self.register_buffer("position_ids", torch.arange(num_positions).expand((1, -1)), persistent=False)
        self.pre_layrnorm = nn.LayerNorm(d)
        layer = nn.TransformerEncoderLayer(d, 2, d * 2, dropout=0.0, activation="gelu", batch_first=True,
                                           norm_first=True)
        self.layers = nn.ModuleList([layer] + [type(layer)(d, 2, d * 2, dropout=0.0, activation="gelu",
                                                             batch_first=True, norm_first=True)
                                               for _ in range(config.vision_layers - 1)])

    def forward(self, pixel_values, output_hidden_states=True):
        batch_size = pixel_values.shape[0]
        patch_embeds = self.patch_embedding(pixel_values).flatten(2).transpose(1, 2)
        class_embeds = self.class_embedding.expand(batch_size, 1, -1)
        embeddings = torch.cat([class_embeds, patch_embeds], dim=1) + self.position_embedding(self.position_ids)
        hidden_states = self.pre_layrnorm(embeddings)
        all_hidden = (hidden_states,)
        for layer in self.layers:
            hidden_states = layer(hidden_states)
            all_hidden = all_hidden + (hidden_states,)
        return all_hidden


class LlavaMultiModalProjector(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.linear_1 = nn.Linear(config.vision_hidden, config.hidden_size, bias=True)
        self.act = nn.GELU()
        self.linear_2 = nn.Linear(config.hidden_size, config.hidden_size, bias=True)

    def forward(self, image_features):
        return self.linear_2(self.act(self.linear_1(image_features)))


class LlamaRMSNorm(nn.Module):
    def __init__(self, hidden_size, eps=1e-6):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(hidden_size))
        self.variance_epsilon = eps

    def forward(self, hidden_states):
        input_dtype = hidden_states.dtype
        hidden_states = hidden_states.to(torch.float32)
        variance = hidden_states.pow(2).mean(-1, keepdim=True)
        hidden_states = hidden_states * torch.rsqrt(variance + self.variance_epsilon)
        return self.weight * hidden_states.to(input_dtype)


class LlamaRotaryEmbedding(nn.Module):
    def __init__(self, dim, base=10000.0):
        super().__init__()
        inv_freq = 1.0 / (base ** (torch.arange(0, dim, 2, dtype=torch.int64).float() / dim))
        self.register_buffer("inv_freq", inv_freq, persistent=False)

    @torch.no_grad()
    def forward(self, x, position_ids):
        inv_freq_expanded = self.inv_freq[None, :, None].float().expand(position_ids.shape[0], -1, 1)
        position_ids_expanded = position_ids[:, None, :].float()
        freqs = (inv_freq_expanded.float() @ position_ids_expanded.float()).transpose(1, 2)
        emb = torch.cat((freqs, freqs), dim=-1)
        return emb.cos().to(dtype=x.dtype), emb.sin().to(dtype=x.dtype)


def rotate_half(x):
    x1 = x[..., : x.shape[-1] // 2]
    x2 = x[..., x.shape[-1] // 2:]
    return torch.cat((-x2, x1), dim=-1)


def apply_rotary_pos_emb(q, k, cos, sin, unsqueeze_dim=1):
    cos = cos.unsqueeze(unsqueeze_dim)
    sin = sin.unsqueeze(unsqueeze_dim)
    q_embed = (q * cos) + (rotate_half(q) * sin)
    k_embed = (k * cos) + (rotate_half(k) * sin)
    return q_embed, k_embed


def repeat_kv(hidden_states, n_rep):
    batch, num_key_value_heads, slen, head_dim = hidden_states.shape
    if n_rep == 1:
        return hidden_states
    hidden_states = hidden_states[:, :, None, :, :].expand(batch, num_key_value_heads, n_rep, slen, head_dim)
    return hidden_states.reshape(batch, num_key_value_heads * n_rep, slen, head_dim)


class LlamaAttention(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.head_dim = config.hidden_size // config.num_attention_heads
        self.num_heads = config.num_attention_heads
        self.num_key_value_heads = config.num_key_value_heads
        self.num_key_value_groups = self.num_heads // self.num_key_value_heads
        self.q_proj = nn.Linear(config.hidden_size, self.num_heads * self.head_dim, bias=False)
        self.k_proj = nn.Linear(config.hidden_size, self.num_key_value_heads * self.head_dim, bias=False)
        self.v_proj = nn.Linear(config.hidden_size, self.num_key_value_heads * self.head_dim, bias=False)
        self.o_proj = nn.Linear(self.num_heads * self.head_dim, config.hidden_size, bias=False)

    def forward(self, hidden_states, position_embeddings, attention_mask, past_key_value=None):
        bsz, q_len, _ = hidden_states.size()
        hidden_shape = (bsz, q_len, -1, self.head_dim)
        query_states = self.q_proj(hidden_states).view(hidden_shape).transpose(1, 2)
        key_states = self.k_proj(hidden_states).view(hidden_shape).transpose(1, 2)
        value_states = self.v_proj(hidden_states).view(hidden_shape).transpose(1, 2)
        cos, sin = position_embeddings
        query_states, key_states = apply_rotary_pos_emb(query_states, key_states, cos, sin)
        if past_key_value is not None:
            key_states = torch.cat([past_key_value[0], key_states], dim=-2)
            value_states = torch.cat([past_key_value[1], value_states], dim=-2)
        present = (key_states, value_states)
        key_states = repeat_kv(key_states, self.num_key_value_groups)
        value_states = repeat_kv(value_states, self.num_key_value_groups)
        causal_mask = attention_mask[:, :, :, : key_states.shape[-2]]
        attn_output = F.scaled_dot_product_attention(query_states, key_states, value_states, attn_mask=causal_mask,
                                                     dropout_p=0.0, is_causal=False)
        attn_output = attn_output.transpose(1, 2).contiguous().reshape(bsz, q_len, -1)
        return self.o_proj(attn_output), present


class LlamaMLP(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.gate_proj = nn.Linear(config.hidden_size, config.intermediate_size, bias=False)
        self.up_proj = nn.Linear(config.hidden_size, config.intermediate_size, bias=False)
        self.down_proj = nn.Linear(config.intermediate_size, config.hidden_size, bias=False)
        self.act_fn = nn.SiLU()

    def forward(self, x):
        return self.down_proj(self.act_fn(self.gate_proj(x)) * self.up_proj(x))


class LlamaDecoderLayer(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.self_attn = LlamaAttention(config)
        self.mlp = LlamaMLP(config)
        self.input_layernorm = LlamaRMSNorm(config.hidden_size, eps=config.rms_norm_eps)
        self.post_attention_layernorm = LlamaRMSNorm(config.hidden_size, eps=config.rms_norm_eps)

    def forward(self, hidden_states, position_embeddings, attention_mask, past_key_value=None):
        residual = hidden_states
        hidden_states = self.input_layernorm(hidden_states)
        hidden_states, present = self.self_attn(hidden_states, position_embeddings, attention_mask, past_key_value)
        hidden_states = residual + hidden_states
        residual = hidden_states
        hidden_states = self.post_attention_layernorm(hidden_states)
        hidden_states = self.mlp(hidden_states)
        return residual + hidden_states, present


def _prepare_4d_causal_attention_mask(attention_mask, input_shape, dtype, past_key_values_length):
    """(B, kv) 1/0 padding mask -> (B, 1, q, kv) additive mask, causal over the new tokens."""
    bsz, q_len = input_shape
    kv_len = q_len + past_key_values_length
    min_dtype = torch.finfo(dtype).min
    causal_mask = torch.full((q_len, kv_len), fill_value=min_dtype, dtype=dtype)
    causal_mask = torch.triu(causal_mask, diagonal=past_key_values_length + 1)
    causal_mask = causal_mask[None, None, :, :].expand(bsz, 1, -1, -1).clone()
    padding_mask = causal_mask == 0.0
    padding_mask = padding_mask & (attention_mask[:, None, None, :] == 0)
    causal_mask = causal_mask.masked_fill(padding_mask, min_dtype)
    return causal_mask


class LlamaModel(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.embed_tokens = nn.Embedding(config.vocab_size, config.hidden_size, PAD)
        self.layers = nn.ModuleList([LlamaDecoderLayer(config) for _ in range(config.num_hidden_layers)])
        self.norm = LlamaRMSNorm(config.hidden_size, eps=config.rms_norm_eps)
        self.rotary_emb = LlamaRotaryEmbedding(config.hidden_size // config.num_attention_heads, config.rope_theta)

    def forward(self, inputs_embeds, attention_mask, position_ids, past_key_values=None):
        past_len = 0 if past_key_values is None else past_key_values[0][0].shape[-2]
        mask = _prepare_4d_causal_attention_mask(attention_mask, inputs_embeds.shape[:2], inputs_embeds.dtype, past_len)
        position_embeddings = self.rotary_emb(inputs_embeds, position_ids)
        hidden_states = inputs_embeds
        presents = ()
        for i, decoder_layer in enumerate(self.layers):
            past = None if past_key_values is None else past_key_values[i]
            hidden_states, present = decoder_layer(hidden_states, position_embeddings, mask, past)
            presents = presents + (present,)
        return self.norm(hidden_states), presents


class LlavaForConditionalGeneration(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.config = config
        self.vision_tower = CLIPVisionTower(config)
        self.multi_modal_projector = LlavaMultiModalProjector(config)
        self.model = LlamaModel(config)
        self.lm_head = nn.Linear(config.hidden_size, config.vocab_size, bias=False)
        self.post_init()

    def _init_weights(self, module):
        std = self.config.initializer_range
        if isinstance(module, nn.Linear):
            module.weight.data.normal_(mean=0.0, std=std)
            if module.bias is not None:
                module.bias.data.zero_()
        elif isinstance(module, nn.Embedding):
            module.weight.data.normal_(mean=0.0, std=std)
            if module.padding_idx is not None:
                module.weight.data[module.padding_idx].zero_()

    def post_init(self):
        self.apply(self._init_weights)
        self.tie_weights()

    def tie_weights(self):
        self.lm_head.weight = self.model.embed_tokens.weight

    def get_input_embeddings(self):
        return self.model.embed_tokens

    def resize_token_embeddings(self, new_num_tokens):
        old = self.get_input_embeddings()
        old_num_tokens, dim = old.weight.shape
        new = nn.Embedding(new_num_tokens, dim, padding_idx=old.padding_idx)
        with torch.no_grad():
            new.weight[:old_num_tokens] = old.weight.data
            new.weight[old_num_tokens:] = old.weight.data.mean(dim=0, keepdim=True)
        self.model.embed_tokens = new
        self.lm_head = nn.Linear(dim, new_num_tokens, bias=False)
        self.tie_weights()
        self.config.vocab_size = new_num_tokens
        return new

    def get_image_features(self, pixel_values):
        image_outputs = self.vision_tower(pixel_values, output_hidden_states=True)
        selected_image_feature = image_outputs[self.config.vision_feature_layer]
        selected_image_feature = selected_image_feature[:, 1:]
        return self.multi_modal_projector(selected_image_feature)

    def forward(self, input_ids, attention_mask, pixel_values=None, position_ids=None, past_key_values=None,
                labels=None):
        inputs_embeds = self.get_input_embeddings()(input_ids)
        if pixel_values is not None:
            image_features = self.get_image_features(pixel_values)
            special_image_mask = (input_ids == self.config.image_token_index).unsqueeze(-1)
            special_image_mask = special_image_mask.expand_as(inputs_embeds).to(inputs_embeds.device)
            n_image_tokens = (input_ids == self.config.image_token_index).sum()
            if n_image_tokens != image_features.shape[0] * image_features.shape[1]:
                raise ValueError(f"Image features and image tokens do not match: tokens: {n_image_tokens}, "
                                 f"features {image_features.shape[0] * image_features.shape[1]}")
            image_features = image_features.to(inputs_embeds.device, inputs_embeds.dtype)
            inputs_embeds = inputs_embeds.masked_scatter(special_image_mask, image_features)
        if position_ids is None:
            position_ids = attention_mask.long().cumsum(-1) - 1
            position_ids.masked_fill_(attention_mask == 0, 1)
        hidden_states, presents = self.model(inputs_embeds, attention_mask, position_ids, past_key_values)
        logits = self.lm_head(hidden_states)
        loss = None
        if labels is not None:
            shift_logits = logits[..., :-1, :].contiguous()
            shift_labels = labels[..., 1:].contiguous()
            loss = nn.CrossEntropyLoss()(shift_logits.view(-1, shift_logits.size(-1)), shift_labels.view(-1))
        return loss, logits, presents, position_ids


def get_cosine_schedule_with_warmup(optimizer, num_warmup_steps, num_training_steps, num_cycles=0.5):
    def lr_lambda(current_step):
        if current_step < num_warmup_steps:
            return float(current_step) / float(max(1, num_warmup_steps))
        progress = float(current_step - num_warmup_steps) / float(max(1, num_training_steps - num_warmup_steps))
        return max(0.0, 0.5 * (1.0 + math.cos(math.pi * float(num_cycles) * 2.0 * progress)))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, lr_lambda, -1)


class RepetitionPenaltyLogitsProcessor:
    def __init__(self, penalty):
        self.penalty = penalty

    def __call__(self, input_ids, scores):
        score = torch.gather(scores, 1, input_ids)
        # if score < 0 then repetition penalty has to be multiplied to reduce the token probabilities
        score = torch.where(score < 0, score * self.penalty, score / self.penalty)
        scores_processed = scores.scatter(1, input_ids, score)
        return scores_processed


class TopPLogitsWarper:
    def __init__(self, top_p, filter_value=-float("Inf"), min_tokens_to_keep=1):
        self.top_p = top_p
        self.filter_value = filter_value
        self.min_tokens_to_keep = min_tokens_to_keep

    def __call__(self, input_ids, scores):
        sorted_logits, sorted_indices = torch.sort(scores, descending=False)
        cumulative_probs = sorted_logits.softmax(dim=-1).cumsum(dim=-1)
        # Remove tokens with cumulative top_p above the threshold (token with 0 are kept)
        sorted_indices_to_remove = cumulative_probs <= (1 - self.top_p)
        # Keep at least min_tokens_to_keep
        sorted_indices_to_remove[..., -self.min_tokens_to_keep:] = 0
        # scatter sorted tensors to original indexing
        indices_to_remove = sorted_indices_to_remove.scatter(1, sorted_indices, sorted_indices_to_remove)
        scores_processed = scores.masked_fill(indices_to_remove, self.filter_value)
        return scores_processed


def make_example(rng, image_token, n_patches=4):
    """An image whose colour channel c is bright; prompt "<bos> <image>x4 7 8" (what colour?) and the
    answer "10+c 13+shade <eos>"."""
    c, shade = rng.integers(0, 3), rng.integers(0, 2)
    image = rng.standard_normal((3, 8, 8)).astype(np.float32) * 0.3
    image[c] += 1.0 + shade
    prompt = [BOS] + [image_token] * n_patches + [7, 8]
    answer = [10 + c, 13 + shade, EOS]
    return image, prompt, answer


def collate(batch, padding_side="left"):
    max_len = max(len(p) + len(a) for _, p, a in batch)
    input_ids = torch.full((len(batch), max_len), PAD, dtype=torch.long)
    labels = torch.full((len(batch), max_len), IGNORE_INDEX, dtype=torch.long)
    attention_mask = torch.zeros((len(batch), max_len), dtype=torch.long)
    for i, (_, p, a) in enumerate(batch):
        ids = torch.tensor(p + a)
        start = max_len - len(ids) if padding_side == "left" else 0
        input_ids[i, start:start + len(ids)] = ids
        labels[i, start + len(p):start + len(ids)] = torch.tensor(a)
        attention_mask[i, start:start + len(ids)] = 1
    pixel_values = torch.from_numpy(np.stack([im for im, _, _ in batch]))
    return input_ids, attention_mask, pixel_values, labels


@torch.no_grad()
def generate(model, input_ids, attention_mask, pixel_values, max_new_tokens=3, use_cache=True):
    processors = [RepetitionPenaltyLogitsProcessor(1.3), TopPLogitsWarper(0.8)]
    past_key_values, position_ids = None, None
    all_ids = input_ids
    step_ids = input_ids
    kept = []
    for _ in range(max_new_tokens):
        if use_cache:
            _, logits, past_key_values, pos = model(step_ids, attention_mask, pixel_values if past_key_values is None
                                                    else None, position_ids=position_ids,
                                                    past_key_values=past_key_values)
        else:
            _, logits, _, pos = model(all_ids, attention_mask, pixel_values)
        scores = logits[:, -1, :]
        for processor in processors:
            scores = processor(all_ids, scores)
        kept.append(torch.isfinite(scores).sum(-1).tolist())
        next_tokens = torch.argmax(scores, dim=-1)
        all_ids = torch.cat([all_ids, next_tokens[:, None]], dim=-1)
        attention_mask = torch.cat([attention_mask, attention_mask.new_ones((attention_mask.shape[0], 1))], dim=-1)
        position_ids = pos[:, -1:] + 1
        step_ids = next_tokens[:, None]
    return all_ids, kept


torch.manual_seed(0)
rng = np.random.default_rng(0)
config = Config()
model = LlavaForConditionalGeneration(config)
# the tokenizer gains <image>; the embeddings grow (tied to the head) before the weights are shared
model.resize_token_embeddings(config.vocab_size + 1)
config.image_token_index = config.vocab_size - 1
share_init(model)
report("tied", model.lm_head.weight is model.model.embed_tokens.weight, tuple(model.lm_head.weight.shape),
       sorted(k for k in model.state_dict() if "embed_tokens" in k or "lm_head" in k or "inv_freq" in k))
model.vision_tower.requires_grad_(False)
params = [p for p in model.parameters() if p.requires_grad]
optimizer = torch.optim.AdamW(params, lr=1.5e-2, weight_decay=0.0)
scheduler = get_cosine_schedule_with_warmup(optimizer, 2, 24)
for step in range(20):
    batch = [make_example(rng, config.image_token_index) for _ in range(4)]
    # prompts of two lengths: drop the question word from some, so the left padding varies
    batch = [(im, p[:-1] if i % 2 else p, a) for i, (im, p, a) in enumerate(batch)]
    input_ids, attention_mask, pixel_values, labels = collate(batch, padding_side="right")
    model.train()
    loss, logits, _, _ = model(input_ids, attention_mask, pixel_values, labels=labels)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(params, 1.0)
    optimizer.step()
    scheduler.step()
    optimizer.zero_grad()
    report("step", step, loss.item(), scheduler.get_last_lr()[0], model.model.embed_tokens.weight[PAD].abs().sum().item())

model.eval()
batch = [make_example(rng, config.image_token_index) for _ in range(4)]
batch = [(im, p[:-1] if i % 2 else p, []) for i, (im, p, a) in enumerate(batch)]
input_ids, attention_mask, pixel_values, _ = collate(batch, padding_side="left")
with_cache, kept = generate(model, input_ids, attention_mask, pixel_values, use_cache=True)
without_cache, _ = generate(model, input_ids, attention_mask, pixel_values, use_cache=False)
report("generate", with_cache[:, input_ids.shape[1]:].tolist(), torch.equal(with_cache, without_cache), kept,
       attention_mask.sum(-1).tolist())
with torch.no_grad():
    _, logits, presents, position_ids = model(input_ids, attention_mask, pixel_values)
report("positions", position_ids.tolist(), tuple(presents[0][0].shape), logits[:, -1].softmax(-1).max(-1).values.tolist())
