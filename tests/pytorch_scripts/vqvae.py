"""A VQ-VAE (van den Oord et al.) as the popular PyTorch implementations write it: a conv
encoder/decoder with residual stacks, a VectorQuantizer whose distances are
sum(x^2) + sum(e^2) - 2 x e^T, argmin codes turned into one-hot encodings with scatter_ and
multiplied by the codebook, the commitment and codebook losses, the straight-through estimator
``inputs + (quantized - inputs).detach()``, perplexity from the average code usage, and the EMA
variant (buffers updated with mul_/add_ and Laplace smoothing, the codebook as a Parameter
overwritten through ``.data``), trained with Adam(amsgrad=False) on tiny images; then
torch.cdist against the expanded formula and a Gumbel-softmax relaxation with hard=True."""
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


class VectorQuantizer(nn.Module):
    def __init__(self, num_embeddings, embedding_dim, commitment_cost):
        super(VectorQuantizer, self).__init__()
        self._embedding_dim = embedding_dim
        self._num_embeddings = num_embeddings
        self._embedding = nn.Embedding(self._num_embeddings, self._embedding_dim)
        self._embedding.weight.data.uniform_(-1 / self._num_embeddings, 1 / self._num_embeddings)
        self._commitment_cost = commitment_cost

    def forward(self, inputs):
        inputs = inputs.permute(0, 2, 3, 1).contiguous()     # BCHW -> BHWC
        input_shape = inputs.shape
        flat_input = inputs.view(-1, self._embedding_dim)
        distances = (torch.sum(flat_input ** 2, dim=1, keepdim=True)
                     + torch.sum(self._embedding.weight ** 2, dim=1)
                     - 2 * torch.matmul(flat_input, self._embedding.weight.t()))
        encoding_indices = torch.argmin(distances, dim=1).unsqueeze(1)
        encodings = torch.zeros(encoding_indices.shape[0], self._num_embeddings, device=inputs.device)
        encodings.scatter_(1, encoding_indices, 1)
        quantized = torch.matmul(encodings, self._embedding.weight).view(input_shape)
        e_latent_loss = F.mse_loss(quantized.detach(), inputs)
        q_latent_loss = F.mse_loss(quantized, inputs.detach())
        loss = q_latent_loss + self._commitment_cost * e_latent_loss
        quantized = inputs + (quantized - inputs).detach()
        avg_probs = torch.mean(encodings, dim=0)
        perplexity = torch.exp(-torch.sum(avg_probs * torch.log(avg_probs + 1e-10)))
        return loss, quantized.permute(0, 3, 1, 2).contiguous(), perplexity, encodings


class VectorQuantizerEMA(nn.Module):
    def __init__(self, num_embeddings, embedding_dim, commitment_cost, decay, epsilon=1e-5):
        super(VectorQuantizerEMA, self).__init__()
        self._embedding_dim = embedding_dim
        self._num_embeddings = num_embeddings
        self._embedding = nn.Embedding(self._num_embeddings, self._embedding_dim)
        self._embedding.weight.data.normal_()
        self._commitment_cost = commitment_cost
        self.register_buffer('_ema_cluster_size', torch.zeros(num_embeddings))
        self._ema_w = nn.Parameter(torch.Tensor(num_embeddings, self._embedding_dim))
        self._ema_w.data.normal_()
        self._decay = decay
        self._epsilon = epsilon

    def forward(self, inputs):
        inputs = inputs.permute(0, 2, 3, 1).contiguous()
        input_shape = inputs.shape
        flat_input = inputs.view(-1, self._embedding_dim)
        distances = (torch.sum(flat_input ** 2, dim=1, keepdim=True)
                     + torch.sum(self._embedding.weight ** 2, dim=1)
                     - 2 * torch.matmul(flat_input, self._embedding.weight.t()))
        encoding_indices = torch.argmin(distances, dim=1).unsqueeze(1)
        encodings = torch.zeros(encoding_indices.shape[0], self._num_embeddings, device=inputs.device)
        encodings.scatter_(1, encoding_indices, 1)
        quantized = torch.matmul(encodings, self._embedding.weight).view(input_shape)
        if self.training:
            self._ema_cluster_size = self._ema_cluster_size * self._decay + (1 - self._decay) * torch.sum(encodings, 0)
            n = torch.sum(self._ema_cluster_size.data)
            self._ema_cluster_size = ((self._ema_cluster_size + self._epsilon)
                                      / (n + self._num_embeddings * self._epsilon) * n)
            dw = torch.matmul(encodings.t(), flat_input)
            self._ema_w = nn.Parameter(self._ema_w * self._decay + (1 - self._decay) * dw)
            self._embedding.weight = nn.Parameter(self._ema_w / self._ema_cluster_size.unsqueeze(1))
        e_latent_loss = F.mse_loss(quantized.detach(), inputs)
        loss = self._commitment_cost * e_latent_loss
        quantized = inputs + (quantized - inputs).detach()
        avg_probs = torch.mean(encodings, dim=0)
        perplexity = torch.exp(-torch.sum(avg_probs * torch.log(avg_probs + 1e-10)))
        return loss, quantized.permute(0, 3, 1, 2).contiguous(), perplexity, encodings


class Residual(nn.Module):
    def __init__(self, in_channels, num_hiddens, num_residual_hiddens):
        super(Residual, self).__init__()
        self._block = nn.Sequential(
            nn.ReLU(True),
            nn.Conv2d(in_channels, num_residual_hiddens, kernel_size=3, stride=1, padding=1, bias=False),
            nn.ReLU(True),
            nn.Conv2d(num_residual_hiddens, num_hiddens, kernel_size=1, stride=1, bias=False))

    def forward(self, x):
        return x + self._block(x)


class Model(nn.Module):
    def __init__(self, num_hiddens=8, num_residual_hiddens=4, num_embeddings=6, embedding_dim=3,
                 commitment_cost=0.25, decay=0.0):
        super(Model, self).__init__()
        self._encoder = nn.Sequential(
            nn.Conv2d(1, num_hiddens // 2, 4, stride=2, padding=1), nn.ReLU(),
            nn.Conv2d(num_hiddens // 2, num_hiddens, 3, stride=1, padding=1),
            Residual(num_hiddens, num_hiddens, num_residual_hiddens), nn.ReLU())
        self._pre_vq_conv = nn.Conv2d(num_hiddens, embedding_dim, kernel_size=1, stride=1)
        if decay > 0.0:
            self._vq_vae = VectorQuantizerEMA(num_embeddings, embedding_dim, commitment_cost, decay)
        else:
            self._vq_vae = VectorQuantizer(num_embeddings, embedding_dim, commitment_cost)
        self._decoder = nn.Sequential(
            nn.Conv2d(embedding_dim, num_hiddens, 3, stride=1, padding=1),
            Residual(num_hiddens, num_hiddens, num_residual_hiddens), nn.ReLU(),
            nn.ConvTranspose2d(num_hiddens, 1, 4, stride=2, padding=1))

    def forward(self, x):
        z = self._pre_vq_conv(self._encoder(x))
        loss, quantized, perplexity, encodings = self._vq_vae(z)
        x_recon = self._decoder(quantized)
        return loss, x_recon, perplexity, encodings


rng = np.random.default_rng(0)
images = torch.from_numpy((rng.random((6, 1, 8, 8)) > 0.6).astype(np.float32))
data_variance = images.var().item()
for decay in (0.0, 0.9):
    torch.manual_seed(0)
    model = Model(decay=decay)
    share_init(model, f"vq{decay}")
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3, amsgrad=False)
    model.train()
    for i in range(4):
        optimizer.zero_grad()
        vq_loss, data_recon, perplexity, encodings = model(images)
        recon_error = F.mse_loss(data_recon, images) / data_variance
        loss = recon_error + vq_loss
        loss.backward()
        optimizer.step()
        report(decay, i, recon_error.item(), vq_loss.item(), perplexity.item(), encodings.argmax(1).tolist(),
               model._vq_vae._embedding.weight.detach().abs().sum().item())
    if decay > 0:
        report("ema", model._vq_vae._ema_cluster_size.tolist(), model._vq_vae._ema_cluster_size.requires_grad,
               type(model._vq_vae._ema_w).__name__, [n for n, _ in model._vq_vae.named_buffers()])
    model.eval()
    with torch.no_grad():
        _, recon, perplexity, _ = model(images[:2])
    report("eval", decay, recon.sum().item(), perplexity.item())

# the straight-through estimator passes the decoder's gradient to the encoder unchanged
x = torch.tensor([[0.2, -0.4], [1.5, 0.3]], requires_grad=True)
codebook = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
codes = torch.cdist(x, codebook).argmin(dim=1)
q = x + (codebook[codes] - x).detach()
(q * torch.tensor([[1.0, 2.0], [3.0, 4.0]])).sum().backward()
report("straight-through", codes.tolist(), q.tolist(), x.grad.tolist(),
       torch.cdist(x.detach(), codebook).tolist(), torch.cdist(x.detach(), codebook, p=1).tolist())

torch.manual_seed(0)
logits = torch.tensor([[2.0, 0.5, -1.0], [0.0, 0.0, 3.0]], requires_grad=True)
y = F.gumbel_softmax(logits, tau=0.5, hard=True)
(y * torch.tensor([1.0, 2.0, 3.0])).sum().backward()
report("gumbel", list(y.shape), y.sum(-1).tolist(), bool(((y == 0) | (y == 1)).all()), logits.grad.shape == logits.shape)
