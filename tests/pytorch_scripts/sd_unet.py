"""A tiny Stable-Diffusion UNet, written the way diffusers (UNet2DConditionModel's blocks) and
CompVis/stable-diffusion's openaimodel.py write it: get_timestep_embedding (sinusoids with
flip_sin_to_cos and downscale_freq_shift) through a TimestepEmbedding MLP, ResnetBlock2D
(GroupNorm, SiLU, time projection added as [:, :, None, None], dropout, 1x1 shortcut,
output_scale_factor), Transformer2DModel (GroupNorm, proj_in, BasicTransformerBlock with
self-attention, cross-attention to a text context via head_to_batch_dim/batch_to_head_dim and
torch.baddbmm, GEGLU feed-forward with chunk + F.gelu, proj_out zero-initialised through
zero_module), Downsample2D (strided conv), Upsample2D (F.interpolate nearest, and to an explicit
size), skip connections through torch.cat, classifier-free guidance at sampling (chunk, torch.cat
of the unconditional context), an EMA of the weights (diffusers' EMAModel: decay warmup,
torch.no_grad, sub_ / lerp_ / mul_().add_(), copy_to), AdamW, clip_grad_norm_, epsilon-prediction
MSE loss. The noise and timesteps come from NumPy so both libraries see the same numbers."""
import copy
import math

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


def get_timestep_embedding(timesteps, embedding_dim, flip_sin_to_cos=False, downscale_freq_shift=1,
                           scale=1, max_period=10000):
    assert len(timesteps.shape) == 1, "Timesteps should be a 1d-array"
    half_dim = embedding_dim // 2
    exponent = -math.log(max_period) * torch.arange(start=0, end=half_dim, dtype=torch.float32, device=timesteps.device)
    exponent = exponent / (half_dim - downscale_freq_shift)
    emb = torch.exp(exponent)
    emb = timesteps[:, None].float() * emb[None, :]
    emb = scale * emb
    emb = torch.cat([torch.sin(emb), torch.cos(emb)], dim=-1)
    if flip_sin_to_cos:
        emb = torch.cat([emb[:, half_dim:], emb[:, :half_dim]], dim=-1)
    if embedding_dim % 2 == 1:
        emb = torch.nn.functional.pad(emb, (0, 1, 0, 0))
    return emb


def zero_module(module):
    for p in module.parameters():
        p.detach().zero_()
    return module


class TimestepEmbedding(nn.Module):
    def __init__(self, in_channels, time_embed_dim):
        super().__init__()
        self.linear_1 = nn.Linear(in_channels, time_embed_dim)
        self.act = nn.SiLU()
        self.linear_2 = nn.Linear(time_embed_dim, time_embed_dim)

    def forward(self, sample):
        return self.linear_2(self.act(self.linear_1(sample)))


class ResnetBlock2D(nn.Module):
    def __init__(self, *, in_channels, out_channels=None, dropout=0.0, temb_channels=32, groups=4, eps=1e-6,
                 output_scale_factor=1.0):
        super().__init__()
        self.in_channels = in_channels
        out_channels = in_channels if out_channels is None else out_channels
        self.out_channels = out_channels
        self.output_scale_factor = output_scale_factor
        self.norm1 = torch.nn.GroupNorm(num_groups=groups, num_channels=in_channels, eps=eps, affine=True)
        self.conv1 = torch.nn.Conv2d(in_channels, out_channels, kernel_size=3, stride=1, padding=1)
        self.time_emb_proj = torch.nn.Linear(temb_channels, out_channels)
        self.norm2 = torch.nn.GroupNorm(num_groups=groups, num_channels=out_channels, eps=eps, affine=True)
        self.dropout = torch.nn.Dropout(dropout)
        self.conv2 = torch.nn.Conv2d(out_channels, out_channels, kernel_size=3, stride=1, padding=1)
        self.nonlinearity = nn.SiLU()
        self.use_in_shortcut = self.in_channels != out_channels
        self.conv_shortcut = None
        if self.use_in_shortcut:
            self.conv_shortcut = torch.nn.Conv2d(in_channels, out_channels, kernel_size=1, stride=1, padding=0)

    def forward(self, input_tensor, temb):
        hidden_states = input_tensor
        hidden_states = self.norm1(hidden_states)
        hidden_states = self.nonlinearity(hidden_states)
        hidden_states = self.conv1(hidden_states)
        temb = self.nonlinearity(temb)
        temb = self.time_emb_proj(temb)[:, :, None, None]
        hidden_states = hidden_states + temb
        hidden_states = self.norm2(hidden_states)
        hidden_states = self.nonlinearity(hidden_states)
        hidden_states = self.dropout(hidden_states)
        hidden_states = self.conv2(hidden_states)
        if self.conv_shortcut is not None:
            input_tensor = self.conv_shortcut(input_tensor)
        output_tensor = (input_tensor + hidden_states) / self.output_scale_factor
        return output_tensor


class Attention(nn.Module):
    def __init__(self, query_dim, cross_attention_dim=None, heads=2, dim_head=8, dropout=0.0, bias=False):
        super().__init__()
        inner_dim = dim_head * heads
        cross_attention_dim = cross_attention_dim if cross_attention_dim is not None else query_dim
        self.scale = dim_head ** -0.5
        self.heads = heads
        self.to_q = nn.Linear(query_dim, inner_dim, bias=bias)
        self.to_k = nn.Linear(cross_attention_dim, inner_dim, bias=bias)
        self.to_v = nn.Linear(cross_attention_dim, inner_dim, bias=bias)
        self.to_out = nn.ModuleList([])
        self.to_out.append(nn.Linear(inner_dim, query_dim))
        self.to_out.append(nn.Dropout(dropout))

    def batch_to_head_dim(self, tensor):
        head_size = self.heads
        batch_size, seq_len, dim = tensor.shape
        tensor = tensor.reshape(batch_size // head_size, head_size, seq_len, dim)
        tensor = tensor.permute(0, 2, 1, 3).reshape(batch_size // head_size, seq_len, dim * head_size)
        return tensor

    def head_to_batch_dim(self, tensor, out_dim=3):
        head_size = self.heads
        batch_size, seq_len, dim = tensor.shape
        tensor = tensor.reshape(batch_size, seq_len, head_size, dim // head_size)
        tensor = tensor.permute(0, 2, 1, 3)
        if out_dim == 3:
            tensor = tensor.reshape(batch_size * head_size, seq_len, dim // head_size)
        return tensor

    def get_attention_scores(self, query, key, attention_mask=None):
        dtype = query.dtype
        if attention_mask is None:
            baddbmm_input = torch.empty(
                query.shape[0], query.shape[1], key.shape[1], dtype=query.dtype, device=query.device)
            beta = 0
        else:
            baddbmm_input = attention_mask
            beta = 1
        attention_scores = torch.baddbmm(baddbmm_input, query, key.transpose(-1, -2), beta=beta, alpha=self.scale)
        del baddbmm_input
        attention_probs = attention_scores.softmax(dim=-1)
        del attention_scores
        attention_probs = attention_probs.to(dtype)
        return attention_probs

    def forward(self, hidden_states, encoder_hidden_states=None, attention_mask=None):
        query = self.to_q(hidden_states)
        if encoder_hidden_states is None:
            encoder_hidden_states = hidden_states
        key = self.to_k(encoder_hidden_states)
        value = self.to_v(encoder_hidden_states)
        query = self.head_to_batch_dim(query)
        key = self.head_to_batch_dim(key)
        value = self.head_to_batch_dim(value)
        attention_probs = self.get_attention_scores(query, key, attention_mask)
        hidden_states = torch.bmm(attention_probs, value)
        hidden_states = self.batch_to_head_dim(hidden_states)
        hidden_states = self.to_out[0](hidden_states)
        hidden_states = self.to_out[1](hidden_states)
        return hidden_states


class GEGLU(nn.Module):
    def __init__(self, dim_in, dim_out):
        super().__init__()
        self.proj = nn.Linear(dim_in, dim_out * 2)

    def gelu(self, gate):
        return F.gelu(gate)

    def forward(self, hidden_states):
        hidden_states, gate = self.proj(hidden_states).chunk(2, dim=-1)
        return hidden_states * self.gelu(gate)


class FeedForward(nn.Module):
    def __init__(self, dim, mult=2, dropout=0.0):
        super().__init__()
        inner_dim = int(dim * mult)
        self.net = nn.ModuleList([GEGLU(dim, inner_dim), nn.Dropout(dropout), nn.Linear(inner_dim, dim)])

    def forward(self, hidden_states):
        for module in self.net:
            hidden_states = module(hidden_states)
        return hidden_states


class BasicTransformerBlock(nn.Module):
    def __init__(self, dim, num_attention_heads, attention_head_dim, cross_attention_dim):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, elementwise_affine=True)
        self.attn1 = Attention(query_dim=dim, heads=num_attention_heads, dim_head=attention_head_dim)
        self.norm2 = nn.LayerNorm(dim, elementwise_affine=True)
        self.attn2 = Attention(query_dim=dim, cross_attention_dim=cross_attention_dim,
                               heads=num_attention_heads, dim_head=attention_head_dim)
        self.norm3 = nn.LayerNorm(dim, elementwise_affine=True)
        self.ff = FeedForward(dim)

    def forward(self, hidden_states, encoder_hidden_states=None):
        norm_hidden_states = self.norm1(hidden_states)
        attn_output = self.attn1(norm_hidden_states)
        hidden_states = attn_output + hidden_states
        norm_hidden_states = self.norm2(hidden_states)
        attn_output = self.attn2(norm_hidden_states, encoder_hidden_states=encoder_hidden_states)
        hidden_states = attn_output + hidden_states
        norm_hidden_states = self.norm3(hidden_states)
        ff_output = self.ff(norm_hidden_states)
        hidden_states = ff_output + hidden_states
        return hidden_states


class Transformer2DModel(nn.Module):
    def __init__(self, num_attention_heads=2, attention_head_dim=8, in_channels=16, norm_num_groups=4,
                 cross_attention_dim=12):
        super().__init__()
        inner_dim = num_attention_heads * attention_head_dim
        self.norm = torch.nn.GroupNorm(num_groups=norm_num_groups, num_channels=in_channels, eps=1e-6, affine=True)
        self.proj_in = nn.Conv2d(in_channels, inner_dim, kernel_size=1, stride=1, padding=0)
        self.transformer_blocks = nn.ModuleList(
            [BasicTransformerBlock(inner_dim, num_attention_heads, attention_head_dim, cross_attention_dim)])
        self.proj_out = zero_module(nn.Conv2d(inner_dim, in_channels, kernel_size=1, stride=1, padding=0))

    def forward(self, hidden_states, encoder_hidden_states=None):
        batch, _, height, width = hidden_states.shape
        residual = hidden_states
        hidden_states = self.norm(hidden_states)
        hidden_states = self.proj_in(hidden_states)
        inner_dim = hidden_states.shape[1]
        hidden_states = hidden_states.permute(0, 2, 3, 1).reshape(batch, height * width, inner_dim)
        for block in self.transformer_blocks:
            hidden_states = block(hidden_states, encoder_hidden_states=encoder_hidden_states)
        hidden_states = hidden_states.reshape(batch, height, width, inner_dim).permute(0, 3, 1, 2).contiguous()
        hidden_states = self.proj_out(hidden_states)
        return hidden_states + residual


class Downsample2D(nn.Module):
    def __init__(self, channels, out_channels=None, padding=1):
        super().__init__()
        self.conv = nn.Conv2d(channels, out_channels or channels, 3, stride=2, padding=padding)

    def forward(self, hidden_states):
        return self.conv(hidden_states)


class Upsample2D(nn.Module):
    def __init__(self, channels, out_channels=None):
        super().__init__()
        self.conv = nn.Conv2d(channels, out_channels or channels, 3, padding=1)

    def forward(self, hidden_states, output_size=None):
        if output_size is None:
            hidden_states = F.interpolate(hidden_states, scale_factor=2.0, mode="nearest")
        else:
            hidden_states = F.interpolate(hidden_states, size=output_size, mode="nearest")
        return self.conv(hidden_states)


class TinyUNet2DConditionModel(nn.Module):
    def __init__(self, in_channels=2, block_out_channels=(8, 16), cross_attention_dim=12):
        super().__init__()
        c0, c1 = block_out_channels
        time_embed_dim = c0 * 4
        self.time_proj_dim = c0
        self.conv_in = nn.Conv2d(in_channels, c0, kernel_size=3, padding=1)
        self.time_embedding = TimestepEmbedding(c0, time_embed_dim)
        self.down_res = ResnetBlock2D(in_channels=c0, out_channels=c0, temb_channels=time_embed_dim)
        self.downsample = Downsample2D(c0)
        self.mid_res1 = ResnetBlock2D(in_channels=c0, out_channels=c1, temb_channels=time_embed_dim)
        self.mid_attn = Transformer2DModel(in_channels=c1, cross_attention_dim=cross_attention_dim)
        self.mid_res2 = ResnetBlock2D(in_channels=c1, out_channels=c1, temb_channels=time_embed_dim)
        self.upsample = Upsample2D(c1)
        self.up_res = ResnetBlock2D(in_channels=c1 + c0, out_channels=c0, temb_channels=time_embed_dim)
        self.conv_norm_out = nn.GroupNorm(num_channels=c0, num_groups=4, eps=1e-5)
        self.conv_act = nn.SiLU()
        self.conv_out = nn.Conv2d(c0, in_channels, kernel_size=3, padding=1)

    def forward(self, sample, timestep, encoder_hidden_states):
        timesteps = timestep
        if not torch.is_tensor(timesteps):
            timesteps = torch.tensor([timesteps], dtype=torch.long, device=sample.device)
        elif len(timesteps.shape) == 0:
            timesteps = timesteps[None].to(sample.device)
        timesteps = timesteps.expand(sample.shape[0])
        t_emb = get_timestep_embedding(timesteps, self.time_proj_dim, flip_sin_to_cos=True, downscale_freq_shift=0)
        t_emb = t_emb.to(dtype=sample.dtype)
        emb = self.time_embedding(t_emb)
        sample = self.conv_in(sample)
        down_block_res_samples = (sample,)
        sample = self.down_res(sample, emb)
        down_block_res_samples += (sample,)
        sample = self.downsample(sample)
        sample = self.mid_res1(sample, emb)
        sample = self.mid_attn(sample, encoder_hidden_states=encoder_hidden_states)
        sample = self.mid_res2(sample, emb)
        upsample_size = down_block_res_samples[-1].shape[2:]
        sample = self.upsample(sample, output_size=upsample_size)
        res_hidden_states = down_block_res_samples[-1]
        sample = torch.cat([sample, res_hidden_states], dim=1)
        sample = self.up_res(sample, emb)
        sample = self.conv_norm_out(sample)
        sample = self.conv_act(sample)
        sample = self.conv_out(sample)
        return sample


class EMAModel:
    """diffusers' EMAModel, the parts a training script touches."""
    def __init__(self, parameters, decay=0.9999, min_decay=0.0, update_after_step=0, use_ema_warmup=False,
                 inv_gamma=1.0, power=2 / 3):
        parameters = list(parameters)
        self.shadow_params = [p.clone().detach() for p in parameters]
        self.decay = decay
        self.min_decay = min_decay
        self.update_after_step = update_after_step
        self.use_ema_warmup = use_ema_warmup
        self.inv_gamma = inv_gamma
        self.power = power
        self.optimization_step = 0
        self.cur_decay_value = None

    def get_decay(self, optimization_step):
        step = max(0, optimization_step - self.update_after_step - 1)
        if step <= 0:
            return 0.0
        if self.use_ema_warmup:
            cur_decay_value = 1 - (1 + step / self.inv_gamma) ** -self.power
        else:
            cur_decay_value = (1 + step) / (10 + step)
        cur_decay_value = min(cur_decay_value, self.decay)
        cur_decay_value = max(cur_decay_value, self.min_decay)
        return cur_decay_value

    @torch.no_grad()
    def step(self, parameters):
        parameters = list(parameters)
        self.optimization_step += 1
        decay = self.get_decay(self.optimization_step)
        self.cur_decay_value = decay
        one_minus_decay = 1 - decay
        for s_param, param in zip(self.shadow_params, parameters):
            if param.requires_grad:
                s_param.sub_(one_minus_decay * (s_param - param))
            else:
                s_param.copy_(param)

    def copy_to(self, parameters):
        parameters = list(parameters)
        for s_param, param in zip(self.shadow_params, parameters):
            param.data.copy_(s_param.to(param.device).data)

    def state_dict(self):
        return {"decay": self.decay, "optimization_step": self.optimization_step, "shadow_params": self.shadow_params}


def lerp_ema(ema_model, model, decay):
    # the k-diffusion / EDM form of the same update
    with torch.no_grad():
        for p_ema, p in zip(ema_model.parameters(), model.parameters()):
            p_ema.lerp_(p, 1 - decay)
        for b_ema, b in zip(ema_model.buffers(), model.buffers()):
            b_ema.copy_(b)


def linear_betas(num_train_timesteps=50, beta_start=0.00085, beta_end=0.012):
    # Stable Diffusion's "scaled_linear" schedule
    return torch.linspace(beta_start ** 0.5, beta_end ** 0.5, num_train_timesteps, dtype=torch.float32) ** 2


torch.manual_seed(0)
rng = np.random.default_rng(0)
unet = TinyUNet2DConditionModel()
share_init(unet, "unet")
report("zero proj_out", unet.mid_attn.proj_out.weight.abs().sum().item(), unet.mid_attn.proj_out.bias.tolist())
temb = get_timestep_embedding(torch.tensor([0, 3, 49]), 8, flip_sin_to_cos=True, downscale_freq_shift=0)
report("timestep emb", temb.tolist(), get_timestep_embedding(torch.tensor([1, 2]), 5).shape)

betas = linear_betas()
alphas_cumprod = torch.cumprod(1.0 - betas, dim=0)
report("schedule", alphas_cumprod[[0, 10, 49]].tolist())

ema = EMAModel(unet.parameters(), decay=0.999)
ema_unet = copy.deepcopy(unet)
optimizer = torch.optim.AdamW(unet.parameters(), lr=1e-3, betas=(0.9, 0.999), weight_decay=1e-2, eps=1e-08)
latents = torch.from_numpy(rng.standard_normal((3, 2, 8, 8)).astype(np.float32))
context = torch.from_numpy(rng.standard_normal((3, 5, 12)).astype(np.float32))
for step in range(4):
    unet.train()
    noise = torch.from_numpy(rng.standard_normal(latents.shape).astype(np.float32))
    timesteps = torch.from_numpy(rng.integers(0, 50, (latents.shape[0],))).long()
    sqrt_alpha_prod = alphas_cumprod[timesteps] ** 0.5
    sqrt_alpha_prod = sqrt_alpha_prod.flatten()
    while len(sqrt_alpha_prod.shape) < len(latents.shape):
        sqrt_alpha_prod = sqrt_alpha_prod.unsqueeze(-1)
    sqrt_one_minus_alpha_prod = (1 - alphas_cumprod[timesteps]) ** 0.5
    sqrt_one_minus_alpha_prod = sqrt_one_minus_alpha_prod.flatten()
    while len(sqrt_one_minus_alpha_prod.shape) < len(latents.shape):
        sqrt_one_minus_alpha_prod = sqrt_one_minus_alpha_prod.unsqueeze(-1)
    noisy_latents = sqrt_alpha_prod * latents + sqrt_one_minus_alpha_prod * noise
    model_pred = unet(noisy_latents, timesteps, context)
    loss = F.mse_loss(model_pred.float(), noise.float(), reduction="mean")
    loss.backward()
    grad_norm = torch.nn.utils.clip_grad_norm_(unet.parameters(), 1.0)
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    ema.step(unet.parameters())
    lerp_ema(ema_unet, unet, 0.9)
    report("step", step, loss.item(), grad_norm.item(), ema.cur_decay_value)

report("ema", ema.optimization_step, ema.shadow_params[0].flatten()[:4].tolist(),
       next(ema_unet.parameters()).flatten()[:4].tolist(), ema.shadow_params[0].requires_grad)

# sampling with classifier-free guidance, DDIM-style updates, from the EMA weights
ema.copy_to(unet.parameters())
unet.eval()
uncond = torch.zeros_like(context[:1])
cond = context[:1]
sample = torch.from_numpy(rng.standard_normal((1, 2, 8, 8)).astype(np.float32))
guidance_scale = 3.0
with torch.no_grad():
    for t in [40, 20, 0]:
        latent_model_input = torch.cat([sample] * 2)
        noise_pred = unet(latent_model_input, torch.tensor(t), encoder_hidden_states=torch.cat([uncond, cond]))
        noise_pred_uncond, noise_pred_text = noise_pred.chunk(2)
        noise_pred = noise_pred_uncond + guidance_scale * (noise_pred_text - noise_pred_uncond)
        alpha_prod_t = alphas_cumprod[t]
        alpha_prod_prev = alphas_cumprod[t - 20] if t >= 20 else torch.tensor(1.0)
        pred_original = (sample - (1 - alpha_prod_t) ** 0.5 * noise_pred) / alpha_prod_t ** 0.5
        sample = alpha_prod_prev ** 0.5 * pred_original + (1 - alpha_prod_prev) ** 0.5 * noise_pred
        report("sample", t, sample.mean().item(), sample.std().item(), sample.requires_grad)
report("odd size upsample", F.interpolate(torch.arange(12.).view(1, 1, 3, 4), size=(5, 7), mode="nearest").flatten().tolist())
report("scalar t", unet(sample, 7, cond).shape, unet(sample, torch.tensor(7), cond).sum().item())
