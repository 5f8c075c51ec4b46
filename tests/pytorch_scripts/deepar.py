"""DeepAR as GluonTS's PyTorch model and pytorch-forecasting write it: a mean-abs scaler with a
clamped minimum scale, lagged targets gathered by index arithmetic, an embedding of the series
id repeated over time, a two-layer LSTM, distribution heads through a projection + domain map
(StudentT with df = 2 + softplus, NegativeBinomial with logits, a Normal wrapped in a
TransformedDistribution with AffineTransform for the scale), the negative log-likelihood
trained with Adam and OneCycleLR; then ancestral sampling with torch.manual_seed (the state
repeat_interleave'd over parallel samples, each step's draw fed back), quantiles from the
samples through torch.quantile, and the distributions' own mean/variance/entropy/cdf/icdf and
kl_divergence checked; then a DeepVAR-style LowRankMultivariateNormal head trained on its NLL plus
its kl_divergence to a full MultivariateNormal (both directions). Random draws differ between
libraries, so samples are reported through statistics against closed forms."""
import math

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.distributions import (AffineTransform, Distribution, NegativeBinomial, Normal, StudentT,
                                 TransformedDistribution, kl_divergence)


class MeanScaler(nn.Module):
    def __init__(self, dim: int = -1, keepdim: bool = False, minimum_scale: float = 1e-10):
        super().__init__()
        self.dim = dim
        self.keepdim = keepdim
        self.register_buffer("minimum_scale", torch.tensor(minimum_scale))

    def forward(self, data: torch.Tensor, weights: torch.Tensor):
        total_weight = weights.sum(dim=self.dim)
        weighted_sum = (data.abs() * weights).sum(dim=self.dim)
        total_observed = total_weight.sum(dim=0)
        denominator = torch.max(total_observed, torch.ones_like(total_observed))
        default_scale = weighted_sum.sum(dim=0) / denominator
        denominator = torch.max(total_weight, torch.ones_like(total_weight))
        scale = weighted_sum / denominator
        scale = torch.max(self.minimum_scale, torch.where(weighted_sum > torch.zeros_like(weighted_sum),
                                                          scale, default_scale * torch.ones_like(total_weight))).detach()
        if self.keepdim:
            scale = scale.unsqueeze(dim=self.dim)
        return data / scale, scale


class StudentTOutput:
    args_dim = {"df": 1, "loc": 1, "scale": 1}

    @classmethod
    def domain_map(cls, df, loc, scale):
        epsilon = torch.finfo(scale.dtype).eps
        scale = F.softplus(scale).clamp_min(epsilon)
        df = 2.0 + F.softplus(df)
        return df.squeeze(-1), loc.squeeze(-1), scale.squeeze(-1)

    @staticmethod
    def distribution(distr_args, loc=None, scale=None):
        df, mu, sigma = distr_args
        if scale is not None:
            mu = mu * scale + (0 if loc is None else loc)
            sigma = sigma * scale
        return StudentT(df, mu, sigma)


class NegativeBinomialOutput:
    args_dim = {"total_count": 1, "logits": 1}

    @classmethod
    def domain_map(cls, total_count, logits):
        total_count = F.softplus(total_count)
        return total_count.squeeze(-1), logits.squeeze(-1)

    @staticmethod
    def distribution(distr_args, loc=None, scale=None):
        total_count, logits = distr_args
        if scale is not None:
            logits = logits + scale.log()
        return NegativeBinomial(total_count=total_count, logits=logits)


class AffineTransformed(TransformedDistribution):
    """GluonTS' wrapper: the transformed distribution with the moments torch leaves out."""

    def __init__(self, base_distribution: Distribution, loc=None, scale=None, event_dim=0):
        self.scale = 1.0 if scale is None else scale
        self.loc = 0.0 if loc is None else loc
        super().__init__(base_distribution, [AffineTransform(loc=self.loc, scale=self.scale, event_dim=event_dim)])

    @property
    def mean(self):
        return self.base_dist.mean * self.scale + self.loc

    @property
    def variance(self):
        return self.base_dist.variance * self.scale**2

    @property
    def stddev(self):
        return self.variance.sqrt()


class NormalOutput:
    args_dim = {"loc": 1, "scale": 1}

    @classmethod
    def domain_map(cls, loc, scale):
        return loc.squeeze(-1), F.softplus(scale).squeeze(-1) + 1e-6

    @staticmethod
    def distribution(distr_args, loc=None, scale=None):
        base = Normal(*distr_args)
        if scale is None:
            return base
        return AffineTransformed(base, loc=loc, scale=scale)


class PtArgProj(nn.Module):
    def __init__(self, in_features, args_dim, domain_map):
        super().__init__()
        self.args_dim = args_dim
        self.proj = nn.ModuleList([nn.Linear(in_features, dim) for dim in args_dim.values()])
        self.domain_map = domain_map

    def forward(self, x):
        params_unbounded = [proj(x) for proj in self.proj]
        return self.domain_map(*params_unbounded)


class DeepARModel(nn.Module):
    def __init__(self, distr_output, num_series=4, embedding_dim=3, hidden_size=10, num_layers=2,
                 context_length=12, prediction_length=4, lags_seq=(1, 2, 7)):
        super().__init__()
        self.distr_output = distr_output
        self.context_length = context_length
        self.prediction_length = prediction_length
        self.lags_seq = list(lags_seq)
        self.embedder = nn.Embedding(num_series, embedding_dim)
        self.scaler = MeanScaler(dim=1, keepdim=True)
        self.rnn_input_size = len(self.lags_seq) + embedding_dim + 1 + 1  # lags, embedding, log scale, time feature
        self.rnn = nn.LSTM(input_size=self.rnn_input_size, hidden_size=hidden_size, num_layers=num_layers,
                           dropout=0.0, batch_first=True)
        self.param_proj = PtArgProj(hidden_size, distr_output.args_dim, distr_output.domain_map)

    @property
    def _past_length(self):
        return self.context_length + max(self.lags_seq)

    def lagged_sequence_values(self, indices, prior_sequence, sequence):
        full_sequence = torch.cat((prior_sequence, sequence), dim=1)
        lags_values = []
        for lag_index in indices:
            begin_index = -lag_index - sequence.shape[1]
            end_index = -lag_index if lag_index > 0 else None
            lags_values.append(full_sequence[:, begin_index:end_index, ...])
        return torch.stack(lags_values, dim=-1)

    def prepare_rnn_input(self, feat_static_cat, past_time_feat, past_target, past_observed_values, future_time_feat=None,
                          future_target=None):
        context = past_target[:, -self.context_length:]
        observed_context = past_observed_values[:, -self.context_length:]
        _, scale = self.scaler(context, observed_context)
        prior_input = past_target[:, :-self.context_length] / scale
        input = (torch.cat((context, future_target[:, :-1]), dim=1) / scale
                 if future_target is not None else context / scale)
        embedded_cat = self.embedder(feat_static_cat)
        static_feat = torch.cat((embedded_cat, scale.log()), dim=1)
        expanded_static_feat = static_feat.unsqueeze(1).expand(-1, input.shape[1], -1)
        time_feat = torch.cat((past_time_feat[:, -self.context_length + 1:, ...], future_time_feat), dim=1)
        features = torch.cat((expanded_static_feat, time_feat), dim=-1)
        lags = self.lagged_sequence_values(self.lags_seq, prior_input, input)
        rnn_input = torch.cat((lags, features), dim=-1)
        return rnn_input, scale, static_feat

    def unroll_lagged_rnn(self, *args, **kwargs):
        rnn_input, scale, static_feat = self.prepare_rnn_input(*args, **kwargs)
        output, new_state = self.rnn(rnn_input)
        params = self.param_proj(output)
        return params, scale, output, static_feat, new_state

    def log_prob(self, feat_static_cat, past_time_feat, past_target, past_observed_values, future_time_feat, future_target):
        params, scale, _, _, _ = self.unroll_lagged_rnn(feat_static_cat, past_time_feat, past_target, past_observed_values,
                                                        future_time_feat, future_target)
        distr = self.distr_output.distribution(params, scale=scale)
        target = torch.cat((past_target[:, -self.context_length:], future_target), dim=1)
        return distr.log_prob(target[:, 1:])

    @torch.no_grad()
    def forward(self, feat_static_cat, past_time_feat, past_target, past_observed_values, future_time_feat,
                num_parallel_samples=100):
        params, scale, _, static_feat, state = self.unroll_lagged_rnn(feat_static_cat, past_time_feat, past_target,
                                                                      past_observed_values, future_time_feat[:, :1])
        repeated_scale = scale.repeat_interleave(repeats=num_parallel_samples, dim=0)
        repeated_static_feat = static_feat.repeat_interleave(repeats=num_parallel_samples, dim=0).unsqueeze(dim=1)
        repeated_past_target = past_target.repeat_interleave(repeats=num_parallel_samples, dim=0) / repeated_scale
        repeated_time_feat = future_time_feat.repeat_interleave(repeats=num_parallel_samples, dim=0)
        repeated_state = [s.repeat_interleave(repeats=num_parallel_samples, dim=1) for s in state]
        repeated_params = [s.repeat_interleave(repeats=num_parallel_samples, dim=0)[:, -1:] for s in params]
        distr = self.distr_output.distribution(repeated_params, scale=repeated_scale)
        next_sample = distr.sample()
        future_samples = [next_sample]
        for k in range(1, self.prediction_length):
            scaled_next_sample = next_sample / repeated_scale
            next_features = torch.cat((repeated_static_feat, repeated_time_feat[:, k: k + 1]), dim=-1)
            next_lags = self.lagged_sequence_values(self.lags_seq, repeated_past_target, scaled_next_sample)
            rnn_input = torch.cat((next_lags, next_features), dim=-1)
            output, repeated_state = self.rnn(rnn_input, repeated_state)
            repeated_past_target = torch.cat((repeated_past_target, scaled_next_sample), dim=1)
            params = self.param_proj(output)
            distr = self.distr_output.distribution(params, scale=repeated_scale)
            next_sample = distr.sample()
            future_samples.append(next_sample)
        future_samples_concat = torch.cat(future_samples, dim=1)
        return future_samples_concat.reshape((-1, num_parallel_samples, self.prediction_length))


def make_data(rng, n, length, counts):
    ids = rng.integers(0, 4, n)
    tt = np.arange(length)
    level = 3.0 + 2.0 * ids[:, None]
    y = level * (1 + 0.4 * np.sin(2 * np.pi * tt / 7.0 + ids[:, None])) + rng.standard_normal((n, length))
    if counts:
        y = rng.poisson(np.maximum(y, 0.1)).astype(np.float64)
    time_feat = np.broadcast_to((tt % 7 / 6.0 - 0.5)[None, :, None], (n, length, 1))
    return (torch.tensor(ids), torch.tensor(time_feat, dtype=torch.float32), torch.tensor(y, dtype=torch.float32))


rng = np.random.default_rng(7)
context_length, prediction_length, past_length = 12, 4, 19
for name, head in [("studentt", StudentTOutput), ("negbin", NegativeBinomialOutput), ("normal", NormalOutput)]:
    ids, time_feat, y = make_data(rng, 8, past_length + prediction_length, counts=name == "negbin")
    past_target, future_target = y[:, :past_length], y[:, past_length:]
    past_time, future_time = time_feat[:, :past_length], time_feat[:, past_length:]
    observed = torch.ones_like(past_target)
    observed[0, -3:] = 0.0
    torch.manual_seed(0)
    model = DeepARModel(head, context_length=context_length, prediction_length=prediction_length)
    share_init(model, name)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2, weight_decay=1e-8)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=1e-2, total_steps=5)
    for step in range(5):
        loss = -model.log_prob(ids, past_time, past_target, observed, future_time, future_target).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        scheduler.step()
        report(name, step, loss.item(), scheduler.get_last_lr()[0])
    model.eval()
    params, scale, _, _, _ = model.unroll_lagged_rnn(ids, past_time, past_target, observed, future_time[:, :1])
    report(name, "scale", scale.squeeze(-1).tolist())
    distr = head.distribution([p[:, -1] for p in params], scale=scale.squeeze(-1))
    report(name, "mean", distr.mean.tolist(), "batch_shape", list(distr.batch_shape))
    report(name, "variance", distr.variance.tolist(), distr.stddev.tolist())
    torch.manual_seed(1)
    samples = model(ids, past_time, past_target, observed, future_time, num_parallel_samples=400)
    report(name, "samples", list(samples.shape), samples.dtype == torch.float32, bool(torch.isfinite(samples).all()))
    first = samples[:, :, 0]
    # the first step's draws come from distr itself: their mean and quantiles match its closed forms
    m = distr.mean
    sd = distr.stddev
    report(name, "first-step mean", bool(((first.mean(1) - m).abs() < 4 * sd / 20 + 1e-3).all()))
    q = torch.quantile(samples, torch.tensor([0.1, 0.5, 0.9]), dim=1)
    report(name, "quantiles", list(q.shape), bool((q[0] <= q[1]).all() and (q[1] <= q[2]).all()))
    if name == "negbin":
        report(name, "integers", bool((samples == samples.round()).all()), bool((samples >= 0).all()))
    if name == "normal":
        med = distr.icdf(torch.tensor(0.5))
        report(name, "icdf", med.tolist(), distr.cdf(med).tolist())
        emp = (first <= med.unsqueeze(-1)).float().mean(1)
        report(name, "median coverage", bool(((emp - 0.5).abs() < 0.1).all()))

# the distributions themselves, on fixed parameters
df = torch.tensor([2.5, 4.0, 30.0])
st = StudentT(df, torch.tensor([0.0, 1.0, -2.0]), torch.tensor([1.0, 0.5, 2.0]))
v = torch.tensor([0.3, 1.7, -5.0])
report("studentt", st.log_prob(v).tolist(), st.entropy().tolist(), st.variance.tolist())
nb = NegativeBinomial(total_count=torch.tensor([1.5, 3.0]), logits=torch.tensor([0.2, -1.0]))
report("negbin", nb.log_prob(torch.tensor([[0.0, 2.0], [5.0, 1.0]])).tolist(), nb.mean.tolist(), nb.variance.tolist(),
       nb.mode.tolist())
nb2 = NegativeBinomial(total_count=torch.tensor(4.0), probs=torch.tensor(0.3))
report("negbin probs", nb2.logits.item(), nb2.log_prob(torch.arange(5.0)).tolist())
n1, n2 = Normal(torch.tensor([0.0, 1.0]), torch.tensor([1.0, 2.0])), Normal(torch.tensor(0.5), torch.tensor(1.5))
report("kl", kl_divergence(n1, n2).tolist())
td = TransformedDistribution(Normal(0.0, 1.0), [AffineTransform(loc=2.0, scale=3.0)])
report("affine", td.log_prob(torch.tensor([2.0, 5.0])).tolist(), td.cdf(torch.tensor(5.0)).item(),
       td.icdf(torch.tensor(0.975)).item(), td.support.__class__.__name__, td.has_rsample)
Distribution.set_default_validate_args(True)
try:
    StudentT(torch.tensor(-1.0), 0.0, 1.0)
    report("validate", "accepted")
except ValueError as e:
    report("validate", "ValueError", "df" in str(e))
try:
    NegativeBinomial(total_count=torch.tensor(2.0), logits=torch.tensor(0.0)).log_prob(torch.tensor(1.5))
    report("support", "accepted")
except ValueError as e:
    report("support", "ValueError")
tc = torch.tensor(2.0, requires_grad=True)
lg = torch.tensor(0.3, requires_grad=True)
NegativeBinomial(total_count=tc, logits=lg).log_prob(torch.tensor(3.0)).backward()
report("nb grads", tc.grad.item(), lg.grad.item())
dfp = torch.tensor(3.0, requires_grad=True)
StudentT(dfp, torch.tensor(0.5), torch.tensor(2.0)).log_prob(torch.tensor(1.0)).backward()
report("st grad", dfp.grad.item())

# DeepVAR: one LSTM over all series, a low-rank multivariate Gaussian head (GluonTS's
# LowRankMultivariateNormalOutput), and its KL to the diagonal Gaussian of the same marginals
from torch.distributions import LowRankMultivariateNormal, MultivariateNormal


class LowRankHead(nn.Module):
    def __init__(self, hidden, dim, rank):
        super().__init__()
        self.dim, self.rank = dim, rank
        self.loc = nn.Linear(hidden, dim)
        self.cov_factor = nn.Linear(hidden, dim * rank)
        self.cov_diag = nn.Linear(hidden, dim)

    def forward(self, h):
        W = self.cov_factor(h).reshape(h.shape[:-1] + (self.dim, self.rank))
        d = F.softplus(self.cov_diag(h)) + 1e-4
        return LowRankMultivariateNormal(self.loc(h), cov_factor=W, cov_diag=d)


class DeepVAR(nn.Module):
    def __init__(self, dim=3, hidden=8, rank=2):
        super().__init__()
        self.rnn = nn.LSTM(dim, hidden, batch_first=True)
        self.head = LowRankHead(hidden, dim, rank)

    def forward(self, past):
        out, _ = self.rnn(past[:, :-1])
        return self.head(out)


_, _, multi = make_data(rng, 3, 16, counts=False)
multi = (multi.T.unsqueeze(0) / multi.abs().mean(1)).repeat(2, 1, 1)  # (2, T, 3)
multi[1] = multi[1].flip(0)
torch.manual_seed(2)
var = DeepVAR()
share_init(var, "deepvar")
opt = torch.optim.Adam(var.parameters(), lr=1e-2)
for step in range(3):
    dist = var(multi)
    nll = -dist.log_prob(multi[:, 1:]).mean()
    diag = MultivariateNormal(dist.loc, covariance_matrix=torch.diag_embed(dist.variance))
    kl = torch.distributions.kl_divergence(dist, diag).mean()
    opt.zero_grad()
    (nll + 0.1 * kl).backward()
    opt.step()
    report("deepvar", step, nll.item(), kl.item(), list(dist.batch_shape), list(dist.event_shape))
report("deepvar kl", torch.distributions.kl_divergence(diag, dist).mean().item(),
       torch.distributions.kl_divergence(dist, dist).abs().max().item() < 1e-4)
