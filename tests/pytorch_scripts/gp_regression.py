"""Exact Gaussian-process regression written from scratch, as GP tutorials do without GPyTorch:
softplus-constrained raw hyperparameters (nn.Parameter scalars and properties), an RBF kernel
through torch.cdist on lengthscale-scaled inputs, psd_safe_cholesky with jitter retried through
torch.linalg.cholesky_ex's info, the negative log marginal likelihood with
torch.cholesky_solve and the log-determinant from the Cholesky diagonal (checked against
torch.logdet, torch.linalg.slogdet and MultivariateNormal(scale_tril=L).log_prob), Adam on
the hyperparameters, and the predictive mean and variance through
torch.linalg.solve_triangular, the older torch.triangular_solve and torch.cholesky_inverse;
then a batch of independent GPs (batched cdist/cholesky), and an ARD kernel whose lengthscale
gradients go through cdist's zero distances on the diagonal. Everything in float64."""
import math

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.distributions import MultivariateNormal

dtype = torch.float64
rng = np.random.default_rng(0)
train_x = torch.from_numpy(np.sort(rng.uniform(0, 1, 12))).unsqueeze(-1)
train_y = torch.sin(train_x.squeeze(-1) * (2 * math.pi)) + 0.1 * torch.from_numpy(rng.standard_normal(12))
test_x = torch.linspace(0, 1, 7, dtype=dtype).unsqueeze(-1)


def psd_safe_cholesky(A, upper=False, jitter=None, max_tries=3):
    L, info = torch.linalg.cholesky_ex(A, upper=upper)
    if not torch.any(info):
        return L
    jitter = jitter if jitter is not None else (1e-6 if A.dtype == torch.float32 else 1e-8)
    Aprime = A.clone()
    jitter_prev = 0
    for i in range(max_tries):
        jitter_new = jitter * (10 ** i)
        Aprime.diagonal(dim1=-2, dim2=-1).add_(jitter_new - jitter_prev)
        jitter_prev = jitter_new
        L, info = torch.linalg.cholesky_ex(Aprime, upper=upper)
        if not torch.any(info):
            return L
    raise ValueError(f"Matrix not positive definite after repeatedly adding jitter up to {jitter_new:.1e}.")


class ExactGP(nn.Module):
    def __init__(self, ard_dims=None):
        super().__init__()
        shape = () if ard_dims is None else (1, ard_dims)
        self.raw_lengthscale = nn.Parameter(torch.zeros(shape, dtype=dtype))
        self.raw_outputscale = nn.Parameter(torch.tensor(0.0, dtype=dtype))
        self.raw_noise = nn.Parameter(torch.tensor(-2.0, dtype=dtype))
        self.mean_constant = nn.Parameter(torch.tensor(0.0, dtype=dtype))

    @property
    def lengthscale(self):
        return F.softplus(self.raw_lengthscale)

    @property
    def outputscale(self):
        return F.softplus(self.raw_outputscale)

    @property
    def noise(self):
        return F.softplus(self.raw_noise) + 1e-4

    def kernel(self, x1, x2):
        dist = torch.cdist(x1 / self.lengthscale, x2 / self.lengthscale, p=2)
        return self.outputscale * torch.exp(-0.5 * dist.pow(2))

    def neg_mll(self, x, y):
        n = x.shape[-2]
        K = self.kernel(x, x) + self.noise * torch.eye(n, dtype=x.dtype)
        L = psd_safe_cholesky(K)
        resid = (y - self.mean_constant).unsqueeze(-1)
        alpha = torch.cholesky_solve(resid, L)
        data_fit = 0.5 * (resid * alpha).sum(dim=(-2, -1))
        logdet = torch.log(torch.diagonal(L, dim1=-2, dim2=-1)).sum(-1)
        return (data_fit + logdet + 0.5 * n * math.log(2 * math.pi)) / n, K, L

    def predict(self, x, y, xs):
        n = x.shape[0]
        K = self.kernel(x, x) + self.noise * torch.eye(n, dtype=x.dtype)
        L = torch.linalg.cholesky(K)
        Ks = self.kernel(x, xs)
        Kss = self.kernel(xs, xs)
        alpha = torch.cholesky_solve((y - self.mean_constant).unsqueeze(-1), L)
        mean = self.mean_constant + (Ks.transpose(-2, -1) @ alpha).squeeze(-1)
        v = torch.linalg.solve_triangular(L, Ks, upper=False)
        cov = Kss - v.transpose(-2, -1) @ v
        var = torch.diagonal(cov).clamp_min(1e-10)
        return mean, var, cov


model = ExactGP()
share_init(model)
optimizer = torch.optim.Adam(model.parameters(), lr=0.1)
for i in range(5):
    optimizer.zero_grad()
    loss, K, L = model.neg_mll(train_x, train_y)
    loss.backward()
    report("iter", i, loss.item(), model.lengthscale.item(), model.outputscale.item(), model.noise.item(),
           model.raw_lengthscale.grad.item(), model.mean_constant.grad.item())
    optimizer.step()

with torch.no_grad():
    loss, K, L = model.neg_mll(train_x, train_y)
    mvn = MultivariateNormal(model.mean_constant.expand(12), scale_tril=L)
    report("mll checks", loss.item(), (-mvn.log_prob(train_y) / 12).item(),
           (2 * torch.log(torch.diagonal(L)).sum()).item(), torch.logdet(K).item(),
           torch.linalg.slogdet(K).logabsdet.item(), torch.linalg.slogdet(K).sign.item())
    mean, var, cov = model.predict(train_x, train_y, test_x)
    report("predict", mean.tolist(), var.tolist(), (mean - 2 * var.sqrt()).tolist())
    # the older APIs give the same solves
    Ks = model.kernel(train_x, test_x)
    v_old = torch.triangular_solve(Ks, L, upper=False).solution
    v_new = torch.linalg.solve_triangular(L, Ks, upper=False)
    Kinv = torch.cholesky_inverse(L)
    report("solves", torch.allclose(v_old, v_new), (Kinv @ K - torch.eye(12, dtype=dtype)).abs().max().item() < 1e-8,
           torch.linalg.solve_triangular(L.T, v_new, upper=True, left=True).sum().item(),
           torch.linalg.solve_triangular(L, Ks.T, upper=False, left=False).sum().item())

# jitter: a singular kernel matrix needs it, cholesky_ex reports where it failed
dup = torch.cat([train_x[:3], train_x[:3]])
K_sing = model.kernel(dup, dup).detach()
_, info = torch.linalg.cholesky_ex(K_sing)
L_safe = psd_safe_cholesky(K_sing)
report("jitter", info.item() > 0, info.dtype == torch.int32, torch.isfinite(L_safe).all().item(),
       (L_safe @ L_safe.T - K_sing).abs().max().item() < 1e-5)

# ---- a batch of independent GPs on two tasks, and an ARD kernel on 2-D inputs
bx = torch.from_numpy(rng.uniform(0, 1, (2, 9, 2)))
by = torch.sin(3 * bx[..., 0]) * torch.cos(2 * bx[..., 1]) + 0.05 * torch.from_numpy(rng.standard_normal((2, 9)))
ard = ExactGP(ard_dims=2)
share_init(ard, "ard")
optimizer = torch.optim.Adam(ard.parameters(), lr=0.05)
for i in range(3):
    optimizer.zero_grad()
    loss, K, L = ard.neg_mll(bx, by)
    loss.sum().backward()
    optimizer.step()
    report("ard", i, loss.tolist(), ard.raw_lengthscale.grad.tolist(), list(L.shape))
