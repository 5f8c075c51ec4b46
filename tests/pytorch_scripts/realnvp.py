"""A RealNVP normalizing flow on 2-D two-moons-like data, as the flow tutorials write it:
alternating checkerboard masks registered as buffers, affine coupling layers whose scale net
ends in Tanh, a MultivariateNormal base distribution (loc and covariance_matrix buffers) whose
log_prob plus the summed log-determinants is the likelihood, Adam with weight decay and
gradient clipping by value, then sampling through the inverse from base.sample, a Normal/
Independent base checked against it, and a torch.distributions.TransformedDistribution built
from AffineTransform and SigmoidTransform. The data are drawn with NumPy."""
import math

import numpy as np
import torch
import torch.nn as nn
from torch import distributions
from torch.distributions import MultivariateNormal, Normal, Independent


class CouplingNet(nn.Module):
    def __init__(self, dim, hidden):
        super().__init__()
        self.s = nn.Sequential(nn.Linear(dim, hidden), nn.LeakyReLU(), nn.Linear(hidden, hidden),
                               nn.LeakyReLU(), nn.Linear(hidden, dim), nn.Tanh())
        self.t = nn.Sequential(nn.Linear(dim, hidden), nn.LeakyReLU(), nn.Linear(hidden, hidden),
                               nn.LeakyReLU(), nn.Linear(hidden, dim))


class RealNVP(nn.Module):
    def __init__(self, masks, hidden=16):
        super().__init__()
        self.register_buffer("loc", torch.zeros(2))
        self.register_buffer("cov", torch.eye(2))
        self.register_buffer("mask", masks)
        self.nets = nn.ModuleList([CouplingNet(2, hidden) for _ in range(len(masks))])

    @property
    def prior(self):
        return MultivariateNormal(self.loc, covariance_matrix=self.cov)

    def g(self, z):
        x = z
        for i in range(len(self.nets)):
            x_ = x * self.mask[i]
            s = self.nets[i].s(x_) * (1 - self.mask[i])
            t = self.nets[i].t(x_) * (1 - self.mask[i])
            x = x_ + (1 - self.mask[i]) * (x * torch.exp(s) + t)
        return x

    def f(self, x):
        log_det_J, z = x.new_zeros(x.shape[0]), x
        for i in reversed(range(len(self.nets))):
            z_ = self.mask[i] * z
            s = self.nets[i].s(z_) * (1 - self.mask[i])
            t = self.nets[i].t(z_) * (1 - self.mask[i])
            z = (1 - self.mask[i]) * (z - t) * torch.exp(-s) + z_
            log_det_J -= s.sum(dim=1)
        return z, log_det_J

    def log_prob(self, x):
        z, logp = self.f(x)
        return self.prior.log_prob(z) + logp

    def sample(self, batch_size):
        z = self.prior.sample((batch_size,))
        return self.g(z)


def moons(n, rng):
    t = rng.uniform(0, math.pi, n)
    upper = rng.random(n) < 0.5
    x = np.where(upper, np.cos(t), 1 - np.cos(t))
    y = np.where(upper, np.sin(t), 0.5 - np.sin(t))
    pts = np.stack([x, y], 1) + 0.05 * rng.standard_normal((n, 2))
    return pts.astype(np.float32)


torch.manual_seed(0)
rng = np.random.default_rng(0)
masks = torch.from_numpy(np.array([[0, 1], [1, 0]] * 3).astype(np.float32))
flow = RealNVP(masks)
share_init(flow)
optimizer = torch.optim.Adam([p for p in flow.parameters() if p.requires_grad], lr=1e-3, weight_decay=1e-5)
report("buffers", [n for n, _ in flow.named_buffers()], flow.prior.event_shape, flow.prior.batch_shape)
for t in range(6):
    noisy_moons = torch.from_numpy(moons(32, rng))
    loss = -flow.log_prob(noisy_moons).mean()
    optimizer.zero_grad()
    loss.backward(retain_graph=True)
    torch.nn.utils.clip_grad_value_(flow.parameters(), 0.5)
    optimizer.step()
    report("iter", t, loss.item(), flow.nets[0].s[0].weight.grad.abs().max().item())

# the inverse undoes the forward and the log-determinant matches autograd's Jacobian
x = torch.from_numpy(moons(4, rng))
z, logdet = flow.f(x)
report("roundtrip", (flow.g(z) - x).abs().max().item() < 1e-5, logdet.tolist())
jac = torch.autograd.functional.jacobian(lambda v: flow.f(v.unsqueeze(0))[0].squeeze(0), x[0])
report("logdet", torch.logdet(jac).item(), torch.linalg.slogdet(jac)[1].item())

# the base distributions
prior = flow.prior
z = torch.tensor([[0.5, -1.0], [0.0, 0.0]])
iso = Independent(Normal(torch.zeros(2), torch.ones(2)), 1)
report("prior", prior.log_prob(z).tolist(), iso.log_prob(z).tolist(), prior.entropy().item(),
       iso.entropy().item(), prior.mean.tolist(), prior.variance.tolist(), iso.event_shape, iso.batch_shape)
corr = MultivariateNormal(torch.tensor([1.0, -1.0]), scale_tril=torch.tensor([[1.0, 0.0], [0.5, 2.0]]))
report("mvn", corr.log_prob(z).tolist(), corr.covariance_matrix.tolist(), corr.precision_matrix.tolist(),
       corr.stddev.tolist(), distributions.kl_divergence(corr, prior).item())

torch.manual_seed(1)
with torch.no_grad():
    samples = flow.sample(2000)
report("samples", list(samples.shape), bool(torch.isfinite(samples).all()), samples.requires_grad)
draws = corr.sample((20000,))
report("mvn sample", list(draws.shape), (draws.mean(0) - corr.mean).abs().max().item() < 0.05,
       (torch.cov(draws.T) - corr.covariance_matrix).abs().max().item() < 0.15)
r = corr.rsample((3,))
r.sum().backward() if r.requires_grad else None
report("rsample", list(r.shape), r.requires_grad)

# a logistic distribution as a TransformedDistribution of a Uniform
base = distributions.Uniform(torch.zeros(3), torch.ones(3))
logistic = distributions.TransformedDistribution(
    base, [distributions.SigmoidTransform().inv, distributions.AffineTransform(loc=0.5, scale=2.0)])
v = torch.tensor([-1.0, 0.5, 3.0])
report("logistic", logistic.log_prob(v).tolist(), logistic.cdf(v).tolist(), logistic.icdf(torch.tensor([0.2, 0.5, 0.9])).tolist())
