"""torch.func as its tutorials use it: per-sample gradients (vmap of grad over functional_call),
model ensembling (stack_module_state + vmap; the tutorial's ``base_model.to('meta')`` line is
left out), MAML's inner loop through functional_call (with autograd.grad and with func.grad),
and jacrev / hessian / jvp of a small network."""
import copy
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.func import functional_call, grad, hessian, jacrev, jvp, stack_module_state, vmap


class SimpleMLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(8, 16)
        self.fc2 = nn.Linear(16, 4)

    def forward(self, x):
        return self.fc2(torch.tanh(self.fc1(x)))


torch.manual_seed(0)
rng = np.random.default_rng(0)
data = torch.from_numpy(rng.standard_normal((6, 8)).astype(np.float32))
targets = torch.from_numpy(rng.integers(0, 4, 6))

# ---- per-sample gradients
model = SimpleMLP()
share_init(model)
params = {k: v.detach() for k, v in model.named_parameters()}
buffers = {k: v.detach() for k, v in model.named_buffers()}


def compute_loss(params, buffers, sample, target):
    batch = sample.unsqueeze(0)
    targets = target.unsqueeze(0)
    predictions = functional_call(model, (params, buffers), (batch,))
    loss = F.cross_entropy(predictions, targets)
    return loss


ft_compute_grad = grad(compute_loss)
ft_compute_sample_grad = vmap(ft_compute_grad, in_dims=(None, None, 0, 0))
ft_per_sample_grads = ft_compute_sample_grad(params, buffers, data, targets)
for name, g in ft_per_sample_grads.items():
    report("per-sample", name, list(g.shape), g.norm(dim=tuple(range(1, g.dim()))).tolist())
for i in range(2):
    model.zero_grad()
    F.cross_entropy(model(data[i:i + 1]), targets[i:i + 1]).backward()
    report("loop", i, max((model.get_parameter(n).grad - g[i]).abs().max().item() for n, g in ft_per_sample_grads.items()) < 1e-5)

# ---- ensembling
models = []
for i in range(3):
    m = SimpleMLP()
    share_init(m, f"member{i}")
    models.append(m)
params, buffers = stack_module_state(models)
base_model = copy.deepcopy(models[0])


def fmodel(params, buffers, x):
    return functional_call(base_model, (params, buffers), (x,))


minibatches = data[:4].reshape(2, 2, 8).repeat(2, 1, 1)[:3]
predictions_diff_minibatch_vmap = vmap(fmodel)(params, buffers, minibatches)
predictions_same_minibatch_vmap = vmap(fmodel, in_dims=(0, 0, None))(params, buffers, data)
report("ensemble", list(predictions_diff_minibatch_vmap.shape), predictions_diff_minibatch_vmap.sum(dim=(1, 2)).tolist())
report("ensemble same", predictions_same_minibatch_vmap.argmax(dim=-1).tolist(),
       torch.allclose(predictions_same_minibatch_vmap[1], models[1](data), atol=1e-6))

# ---- MAML: inner SGD steps through functional_call, outer Adam on the initial weights
net = SimpleMLP()
share_init(net, "maml")
opt = torch.optim.Adam(net.parameters(), lr=1e-2)
for step in range(3):
    opt.zero_grad()
    x_spt, y_spt, x_qry, y_qry = data[:3], targets[:3], data[3:], targets[3:]
    fast = dict(net.named_parameters())
    for _ in range(2):
        loss = F.cross_entropy(functional_call(net, fast, (x_spt,)), y_spt)
        grads = torch.autograd.grad(loss, list(fast.values()), create_graph=True)
        fast = {k: v - 0.1 * g for (k, v), g in zip(fast.items(), grads)}
    qry_loss = F.cross_entropy(functional_call(net, fast, (x_qry,)), y_qry)
    qry_loss.backward()
    opt.step()
    report("maml", step, qry_loss.item(), net.fc1.weight.grad.norm().item())


def loss_of(p, x, y):
    return F.cross_entropy(functional_call(net, p, (x,)), y)


p = {k: v.detach() for k, v in net.named_parameters()}
g = grad(loss_of)(p, data[:3], targets[:3])
adapted = {k: p[k] - 0.1 * g[k] for k in p}
report("func.grad maml", loss_of(adapted, data[3:], targets[3:]).item())

# ---- Jacobians
x0 = data[0]
jac = jacrev(lambda x: net(x))(x0)
hess = hessian(lambda x: net(x).pow(2).sum())(x0)
out, tangent_out = jvp(lambda x: net(x), (x0,), (torch.ones(8),))
report("jacobians", list(jac.shape), jac.abs().sum().item(), list(hess.shape), hess.trace().item(),
       (hess - hess.T).abs().max().item() < 1e-5, tangent_out.tolist())
