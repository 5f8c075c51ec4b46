"""A tiny Flamingo, written the way lucidrains' flamingo-pytorch and open_flamingo write it (their
einops rearrange / repeat spelled out as reshape, permute, expand): a frozen vision encoder
applied per frame of a video clip (B, T_img, F, C, H, W) flattened to (b T F) images, a Perceiver
resampler with learned latents (nn.Parameter(torch.randn)), frame and media-position
embeddings, attention whose keys are torch.cat of the media and the latents, the row max
subtracted with sim.amax(...).detach(), and gated cross-attention blocks interleaved with a frozen
decoder-only LM: tanh gates initialised at 0 (nn.Parameter(torch.tensor([0.]))), media
positions from the <image> token, text_time = media_locations.cumsum(dim=-1) matched against
torch.arange(T_img) + 1 so each token sees only its most recent media, masked_fill with
-torch.finfo(dtype).max, and attention of text before any media zeroed with masked_fill. The LM
is frozen with requires_grad_(False), labels mask pad and media tokens with -100 before the shift,
AdamW over the trainable parameters only, a constant-with-warmup LambdaLR, clip_grad_norm_, and
greedy generation that appends torch.argmax tokens with torch.cat."""
import numpy as np
import torch
import torch.nn.functional as F
from torch import einsum, nn

VOCAB = 20
PAD, BOS, MEDIA, EOC = 0, 1, 2, 3


def exists(val):
    return val is not None


def FeedForward(dim, mult=2):
    inner_dim = int(dim * mult)
    return nn.Sequential(
        nn.LayerNorm(dim),
        nn.Linear(dim, inner_dim, bias=False),
        nn.GELU(),
        nn.Linear(inner_dim, dim, bias=False),
    )


class PerceiverAttention(nn.Module):
    def __init__(self, *, dim, dim_head=8, heads=2):
        super().__init__()
        self.scale = dim_head ** -0.5
        self.heads = heads
        inner_dim = dim_head * heads
        self.norm_media = nn.LayerNorm(dim)
        self.norm_latents = nn.LayerNorm(dim)
        self.to_q = nn.Linear(dim, inner_dim, bias=False)
        self.to_kv = nn.Linear(dim, inner_dim * 2, bias=False)
        self.to_out = nn.Linear(inner_dim, dim, bias=False)

    def forward(self, x, latents):
        """x: (b, T, n1, D) media features; latents: (b, T, n2, D)"""
        x = self.norm_media(x)
        latents = self.norm_latents(latents)
        h = self.heads
        q = self.to_q(latents)
        kv_input = torch.cat((x, latents), dim=-2)
        k, v = self.to_kv(kv_input).chunk(2, dim=-1)
        # rearrange "b t n (h d) -> b h t n d"
        q, k, v = (t.reshape(*t.shape[:3], h, -1).permute(0, 3, 1, 2, 4) for t in (q, k, v))
        q = q * self.scale
        sim = einsum("... i d, ... j d  -> ... i j", q, k)
        sim = sim - sim.amax(dim=-1, keepdim=True).detach()
        attn = sim.softmax(dim=-1)
        out = einsum("... i j, ... j d -> ... i d", attn, v)
        out = out.permute(0, 2, 3, 1, 4).flatten(-2)     # "b h t n d -> b t n (h d)"
        return self.to_out(out)


class PerceiverResampler(nn.Module):
    def __init__(self, *, dim, depth=2, dim_head=8, heads=2, num_latents=4, max_num_media=None, max_num_frames=None,
                 ff_mult=2):
        super().__init__()
        self.latents = nn.Parameter(torch.randn(num_latents, dim))
        self.frame_embs = nn.Parameter(torch.randn(max_num_frames, dim)) if exists(max_num_frames) else None
        self.media_time_embs = nn.Parameter(torch.randn(max_num_media, 1, dim)) if exists(max_num_media) else None
        self.layers = nn.ModuleList([])
        for _ in range(depth):
            self.layers.append(nn.ModuleList([
                PerceiverAttention(dim=dim, dim_head=dim_head, heads=heads),
                FeedForward(dim=dim, mult=ff_mult),
            ]))
        self.norm = nn.LayerNorm(dim)

    def forward(self, x):
        """x: (b, T, F, v, D) -> (b, T, n, D)"""
        b, T, F_, v = x.shape[:4]
        if exists(self.frame_embs):
            frame_embs = self.frame_embs[:F_][None, None, :, None, :].expand(b, T, F_, v, -1)
            x = x + frame_embs
        x = x.reshape(b, T, F_ * v, x.shape[-1])                       # "b T F v d -> b T (F v) d"
        if exists(self.media_time_embs):
            x = x + self.media_time_embs[:T]
        latents = self.latents[None, None].expand(b, T, -1, -1)       # "n d -> b T n d"
        for attn, ff in self.layers:
            latents = attn(x, latents) + latents
            latents = ff(latents) + latents
        return self.norm(latents)


class MaskedCrossAttention(nn.Module):
    def __init__(self, *, dim, dim_visual, dim_head=8, heads=2, only_attend_immediate_media=True):
        super().__init__()
        self.scale = dim_head ** -0.5
        self.heads = heads
        inner_dim = dim_head * heads
        self.norm = nn.LayerNorm(dim)
        self.to_q = nn.Linear(dim, inner_dim, bias=False)
        self.to_kv = nn.Linear(dim_visual, inner_dim * 2, bias=False)
        self.to_out = nn.Linear(inner_dim, dim, bias=False)
        self.only_attend_immediate_media = only_attend_immediate_media

    def forward(self, x, media, media_locations=None):
        b, t, m = media.shape[:3]
        h = self.heads
        x = self.norm(x)
        q = self.to_q(x)
        media = media.reshape(b, t * m, media.shape[-1])               # "b t n d -> b (t n) d"
        k, v = self.to_kv(media).chunk(2, dim=-1)
        q, k, v = (t_.reshape(b, t_.shape[1], h, -1).transpose(1, 2) for t_ in (q, k, v))
        q = q * self.scale
        sim = einsum("... i d, ... j d -> ... i j", q, k)
        if exists(media_locations):
            # at each text position, the index of the latest preceding media (0: none yet)
            text_time = media_locations.cumsum(dim=-1)                 # (b, i)
            media_time = torch.arange(t, device=x.device) + 1
            mask_op = torch.eq if self.only_attend_immediate_media else torch.ge
            text_to_media_mask = mask_op(text_time[:, None, :, None],
                                         media_time.repeat_interleave(m)[None, None, None, :])
            sim = sim.masked_fill(~text_to_media_mask, -torch.finfo(sim.dtype).max)
        sim = sim - sim.amax(dim=-1, keepdim=True).detach()
        attn = sim.softmax(dim=-1)
        if exists(media_locations) and self.only_attend_immediate_media:
            # text before any media attends to nothing
            text_without_media_mask = text_time == 0
            text_without_media_mask = text_without_media_mask[:, None, :, None]
            attn = attn.masked_fill(text_without_media_mask, 0.0)
        out = einsum("... i j, ... j d -> ... i d", attn, v)
        out = out.transpose(1, 2).flatten(2)                            # "b h n d -> b n (h d)"
        return self.to_out(out)


class GatedCrossAttentionBlock(nn.Module):
    def __init__(self, *, dim, dim_visual, dim_head=8, heads=2, ff_mult=2, only_attend_immediate_media=True):
        super().__init__()
        self.attn = MaskedCrossAttention(dim=dim, dim_visual=dim_visual, dim_head=dim_head, heads=heads,
                                         only_attend_immediate_media=only_attend_immediate_media)
        self.attn_gate = nn.Parameter(torch.tensor([0.]))
        self.ff = FeedForward(dim, mult=ff_mult)
        self.ff_gate = nn.Parameter(torch.tensor([0.]))

    def forward(self, x, media, media_locations=None):
        x = self.attn(x, media, media_locations=media_locations) * self.attn_gate.tanh() + x
        x = self.ff(x) * self.ff_gate.tanh() + x
        return x


class DecoderLayer(nn.Module):
    """A pre-LN causal self-attention block of the (frozen) language model."""

    def __init__(self, dim, heads):
        super().__init__()
        self.ln1 = nn.LayerNorm(dim)
        self.attn = nn.MultiheadAttention(dim, heads, batch_first=True)
        self.ln2 = nn.LayerNorm(dim)
        self.mlp = FeedForward(dim)

    def forward(self, x, attn_mask, key_padding_mask):
        h = self.ln1(x)
        x = x + self.attn(h, h, h, attn_mask=attn_mask, key_padding_mask=key_padding_mask, need_weights=False)[0]
        return x + self.mlp(x)


class FlamingoLM(nn.Module):
    def __init__(self, *, num_tokens=VOCAB, dim=16, depth=4, heads=2, dim_visual=12, cross_attn_every=2,
                 max_len=16, media_token_id=MEDIA):
        super().__init__()
        self.token_emb = nn.Embedding(num_tokens, dim)
        self.pos_emb = nn.Embedding(max_len, dim)
        self.media_token_id = media_token_id
        self.vision_encoder = nn.Sequential(               # a stand-in for the frozen CLIP ViT
            nn.Conv2d(3, dim_visual, 4, stride=4), nn.Flatten(2))
        self.perceiver_resampler = PerceiverResampler(dim=dim_visual, depth=1, num_latents=3, max_num_media=3,
                                                      max_num_frames=2)
        self.layers = nn.ModuleList([])
        for ind in range(depth):
            self.layers.append(nn.ModuleList([
                DecoderLayer(dim, heads),
                GatedCrossAttentionBlock(dim=dim, dim_visual=dim_visual) if not (ind % cross_attn_every) else None,
            ]))
        self.to_logits = nn.Sequential(nn.LayerNorm(dim), nn.Linear(dim, num_tokens, bias=False))

    def freeze_lm(self):
        for module in (self.token_emb, self.pos_emb, self.vision_encoder, self.to_logits):
            module.requires_grad_(False)
        for lm_layer, _ in self.layers:
            lm_layer.requires_grad_(False)

    def encode_vision_x(self, vision_x):
        """vision_x: (b, T_img, F, C, H, W) -> (b, T_img, n_latents, D)"""
        assert vision_x.ndim == 6, "vision_x should be of shape (b, T_img, F, C, H, W)"
        b, T, F_ = vision_x.shape[:3]
        vision_x = vision_x.reshape(b * T * F_, *vision_x.shape[3:])          # "b T F c h w -> (b T F) c h w"
        with torch.no_grad():
            vision_x = self.vision_encoder(vision_x).transpose(1, 2)          # (bTF, v, d)
        vision_x = vision_x.reshape(b, T, F_, *vision_x.shape[1:])            # "(b T F) v d -> b T F v d"
        return self.perceiver_resampler(vision_x)

    def forward(self, text, vision_x, attention_mask):
        n = text.shape[1]
        media = self.encode_vision_x(vision_x)
        media_locations = text == self.media_token_id
        x = self.token_emb(text) + self.pos_emb(torch.arange(n, device=text.device))
        causal = torch.ones((n, n), dtype=torch.bool, device=text.device).triu(1)
        for attn_ff, flamingo_cross_attn in self.layers:
            if exists(flamingo_cross_attn):
                x = flamingo_cross_attn(x, media, media_locations=media_locations)
            x = attn_ff(x, causal, ~attention_mask.bool())
        return self.to_logits(x)


def make_batch(rng, b=3):
    """Interleaved "<image> caption <eoc> <image> caption <eoc>" sequences over video clips of two
    frames; each caption's first word is the brightest colour channel of its clip."""
    vision = rng.standard_normal((b, 2, 2, 3, 8, 8)).astype(np.float32) * 0.5
    colours = rng.integers(0, 3, (b, 2))
    for i in range(b):
        for t in range(2):
            vision[i, t, :, colours[i, t]] += 1.5
    text = np.full((b, 12), PAD, np.int64)
    for i in range(b):
        seq = [BOS]
        for t in range(2 if i != b - 1 else 1):
            seq += [MEDIA, 4 + colours[i, t], 7 + rng.integers(0, 5), EOC]
        text[i, :len(seq)] = seq
    return torch.from_numpy(vision), torch.from_numpy(text), torch.from_numpy((text != PAD).astype(np.int64))


torch.manual_seed(0)
rng = np.random.default_rng(0)
model = FlamingoLM()
share_init(model)
model.freeze_lm()
trainable = [p for p in model.parameters() if p.requires_grad]
report("params", sum(p.numel() for p in model.parameters()), sum(p.numel() for p in trainable),
       sorted(n for n, p in model.named_parameters() if "gate" in n))

optimizer = torch.optim.AdamW(trainable, lr=1e-2, weight_decay=0.1)
warmup = 2
scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: min(1.0, (step + 1) / warmup))
for step in range(5):
    vision_x, input_ids, attention_mask = make_batch(rng)
    labels = input_ids.clone()
    labels[labels == PAD] = -100
    labels[:, 0] = -100
    labels[labels == MEDIA] = -100
    logits = model(input_ids, vision_x, attention_mask)
    shift_logits = logits[..., :-1, :].contiguous()
    shift_labels = labels[..., 1:].contiguous()
    loss = F.cross_entropy(shift_logits.view(-1, shift_logits.size(-1)), shift_labels.view(-1), ignore_index=-100)
    loss.backward()
    gate_grads = [blk.attn_gate.grad.item() for _, blk in model.layers if blk is not None]
    cross_grad = model.layers[0][1].attn.to_q.weight.grad.abs().sum().item()
    grad_norm = torch.nn.utils.clip_grad_norm_(trainable, 1.0)
    optimizer.step()
    scheduler.step()
    optimizer.zero_grad(set_to_none=True)
    report("step", step, loss.item(), grad_norm.item(), gate_grads, cross_grad, scheduler.get_last_lr()[0],
           [blk.attn_gate.item() for _, blk in model.layers if blk is not None])

# the media mask: which latents each text position may see, and the frozen LM untouched
model.eval()
vision_x, input_ids, attention_mask = make_batch(rng)
with torch.no_grad():
    media = model.encode_vision_x(vision_x)
    xattn = model.layers[0][1].attn
    text_time = (input_ids == MEDIA).cumsum(dim=-1)
    report("media", tuple(media.shape), text_time.tolist(), media.norm(dim=-1).mean().item())
    x = model.token_emb(input_ids)
    out_immediate = xattn(x, media, media_locations=input_ids == MEDIA)
    xattn.only_attend_immediate_media = False
    out_all = xattn(x, media, media_locations=input_ids == MEDIA)
    xattn.only_attend_immediate_media = True
    report("xattn", out_immediate[:, 0].abs().max().item(), (out_immediate - out_all)[:, :5].abs().max().item(),
           (out_immediate - out_all)[:, 5:].abs().sum().item() > 0)

    # greedy captioning after "<bos> <image>" for one clip
    ids = torch.tensor([[BOS, MEDIA]])
    clip = vision_x[:1, :1]
    for _ in range(3):
        logits = model(ids, clip, torch.ones_like(ids))
        next_token = torch.argmax(logits[:, -1, :], dim=-1, keepdim=True)
        ids = torch.cat([ids, next_token], dim=-1)
    report("generate", ids.tolist(), logits[0, -1].softmax(-1).max().item())
report("frozen", model.token_emb.weight.requires_grad, model.token_emb.weight.grad is None,
       model.perceiver_resampler.latents.grad is None)
