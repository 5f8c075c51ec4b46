"""The PyTorch examples' VAE, with a custom autograd.Function in the encoder, kaiming init,
Adam(amsgrad) and ReduceLROnPlateau."""
import sys, numpy as np
import torch, torch.nn as nn, torch.nn.functional as F
class ClampGrad(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, lo):
        ctx.save_for_backward(x); ctx.lo = lo
        return x.clamp(min=lo)
    @staticmethod
    def backward(ctx, g):
        x, = ctx.saved_tensors
        return g * (x > ctx.lo).float() + 0.1 * g, None
class VAE(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(20, 16); self.fc21 = nn.Linear(16, 4); self.fc22 = nn.Linear(16, 4)
        self.fc3 = nn.Linear(4, 16); self.fc4 = nn.Linear(16, 20)
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.kaiming_uniform_(m.weight, a=0.2, nonlinearity="leaky_relu"); nn.init.constant_(m.bias, 0.01)
    def encode(self, x):
        h1 = ClampGrad.apply(self.fc1(x), 0.0)
        return self.fc21(h1), self.fc22(h1)
    def decode(self, z):
        return torch.sigmoid(self.fc4(F.leaky_relu(self.fc3(z), 0.2)))
    def forward(self, x, eps):
        mu, logvar = self.encode(x.view(-1, 20))
        std = torch.exp(0.5 * logvar)
        z = mu + eps * std
        return self.decode(z), mu, logvar
def loss_function(recon_x, x, mu, logvar):
    BCE = F.binary_cross_entropy(recon_x, x.view(-1, 20), reduction='sum')
    KLD = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())
    return BCE + KLD
torch.manual_seed(0)
model = VAE()
share_init(model)
rng = np.random.default_rng(0)
X = torch.from_numpy(rng.random((32, 20)).astype(np.float32))
opt = torch.optim.Adam(model.parameters(), lr=1e-3, amsgrad=True)
sched = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, mode="min", factor=0.5, patience=0)
for epoch in range(6):
    model.train(); opt.zero_grad()
    eps = torch.from_numpy(rng.standard_normal((32, 4)).astype(np.float32))
    recon, mu, logvar = model(X, eps)
    loss = loss_function(recon, X, mu, logvar); loss.backward()
    opt.step(); sched.step(loss.item() if epoch % 2 else 1e9)
    report(loss.item() / len(X), opt.param_groups[0]["lr"])
with torch.no_grad():
    sample = model.decode(torch.zeros(2, 4)).cpu()
report(sample.numpy()[0].tolist(), model.fc1.weight.grad.abs().sum().item())
