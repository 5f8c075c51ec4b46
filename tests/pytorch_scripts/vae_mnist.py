"""The PyTorch examples' MNIST VAE on MNIST-sized synthetic data: fc encoder to (mu, logvar), the
reparameterization trick with torch.randn_like, BCE(reduction='sum') + KL divergence, Adam,
a DataLoader over a TensorDataset, torch.manual_seed, sampling under torch.no_grad() with
torch.randn(...).to(device), and the reconstruction comparison with torch.cat / view.
The training draws from the global generator, so after training both runs load the same
weights (share_init) before the numbers are compared; what training reports is what does not
depend on the draws."""
from __future__ import print_function
import argparse
import numpy as np
import torch
import torch.utils.data
from torch import nn, optim
from torch.nn import functional as F
from torch.utils.data import DataLoader, TensorDataset

parser = argparse.ArgumentParser(description='VAE MNIST Example')
parser.add_argument('--batch-size', type=int, default=16, metavar='N')
parser.add_argument('--epochs', type=int, default=2, metavar='N')
parser.add_argument('--no-cuda', action='store_true', default=False)
parser.add_argument('--seed', type=int, default=1, metavar='S')
parser.add_argument('--log-interval', type=int, default=2, metavar='N')
args = parser.parse_args([])
args.cuda = not args.no_cuda and torch.cuda.is_available()

torch.manual_seed(args.seed)
device = torch.device("cuda" if args.cuda else "cpu")
kwargs = {'num_workers': 1, 'pin_memory': True} if args.cuda else {}

rng = np.random.default_rng(0)
images = torch.from_numpy((rng.random((48, 1, 28, 28)) > 0.7).astype(np.float32))
targets = torch.from_numpy(rng.integers(0, 10, 48))
train_loader = DataLoader(TensorDataset(images[:32], targets[:32]), batch_size=args.batch_size, shuffle=True, **kwargs)
test_loader = DataLoader(TensorDataset(images[32:], targets[32:]), batch_size=args.batch_size, shuffle=False, **kwargs)


class VAE(nn.Module):
    def __init__(self):
        super(VAE, self).__init__()
        self.fc1 = nn.Linear(784, 40)
        self.fc21 = nn.Linear(40, 5)
        self.fc22 = nn.Linear(40, 5)
        self.fc3 = nn.Linear(5, 40)
        self.fc4 = nn.Linear(40, 784)

    def encode(self, x):
        h1 = F.relu(self.fc1(x))
        return self.fc21(h1), self.fc22(h1)

    def reparameterize(self, mu, logvar):
        std = torch.exp(0.5*logvar)
        eps = torch.randn_like(std)
        return mu + eps*std

    def decode(self, z):
        h3 = F.relu(self.fc3(z))
        return torch.sigmoid(self.fc4(h3))

    def forward(self, x):
        mu, logvar = self.encode(x.view(-1, 784))
        z = self.reparameterize(mu, logvar) if self.training else mu
        return self.decode(z), mu, logvar


model = VAE().to(device)
share_init(model)
optimizer = optim.Adam(model.parameters(), lr=1e-3)


# Reconstruction + KL divergence losses summed over all elements and batch
def loss_function(recon_x, x, mu, logvar):
    BCE = F.binary_cross_entropy(recon_x, x.view(-1, 784), reduction='sum')
    # see Appendix B from VAE paper: Kingma and Welling. Auto-Encoding Variational Bayes. ICLR, 2014
    KLD = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())
    return BCE + KLD


def train(epoch):
    model.train()
    train_loss = 0
    for batch_idx, (data, _) in enumerate(train_loader):
        data = data.to(device)
        optimizer.zero_grad()
        recon_batch, mu, logvar = model(data)
        loss = loss_function(recon_batch, data, mu, logvar)
        loss.backward()
        train_loss += loss.item()
        optimizer.step()
        if batch_idx % args.log_interval == 0:
            line = 'Train Epoch: {} [{}/{} ({:.0f}%)]\tLoss: {:.6f}'.format(
                epoch, batch_idx * len(data), len(train_loader.dataset),
                100. * batch_idx / len(train_loader),
                loss.item() / len(data))
            report(line.split('\t')[0])
    return train_loss / len(train_loader.dataset)


def test(epoch):
    model.eval()
    test_loss = 0
    with torch.no_grad():
        for i, (data, _) in enumerate(test_loader):
            data = data.to(device)
            recon_batch, mu, logvar = model(data)
            test_loss += loss_function(recon_batch, data, mu, logvar).item()
            if i == 0:
                n = min(data.size(0), 8)
                comparison = torch.cat([data[:n],
                                      recon_batch.view(args.batch_size, 1, 28, 28)[:n]])
    test_loss /= len(test_loader.dataset)
    return test_loss, comparison


for epoch in range(1, args.epochs + 1):
    train_loss = train(epoch)
    report("train", epoch, np.isfinite(train_loss), train_loss > 0)
share_init(model, "trained")  # training drew from the generator; from here on both runs agree
test_loss, comparison = test(args.epochs)
report('====> Test set loss: {:.1f}'.format(test_loss), test_loss, tuple(comparison.shape), comparison[8:].sum().item())
with torch.no_grad():
    sample = torch.randn(64, 5).to(device)
    sample = model.decode(sample).cpu()
    report("sample", tuple(sample.view(64, 1, 28, 28).shape), bool(((sample > 0) & (sample < 1)).all()))
    z = torch.linspace(-2, 2, 5).repeat(3, 1).t()[:, :5]
    grid = model.decode(torch.cat([z, torch.zeros(5, 5 - z.size(1))], 1))
    report("grid", grid.mean(1).tolist())

# the reparameterization draws: reproducible under a seed, N(0, 1), gradients through mu and std
torch.manual_seed(7)
a = torch.randn_like(torch.empty(1000, 4))
torch.manual_seed(7)
b = torch.randn_like(torch.empty(1000, 4))
report("eps", torch.equal(a, b), a.dtype == torch.float32, abs(a.mean().item()) < 0.1, abs(a.std().item() - 1) < 0.1)
mu = torch.zeros(3, 5, requires_grad=True)
logvar = torch.zeros(3, 5, requires_grad=True)
model.train()
z = model.reparameterize(mu, logvar)
z.sum().backward()
report("reparam grads", mu.grad.tolist(), bool((logvar.grad.abs() > 0).any()))
