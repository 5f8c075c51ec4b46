"""A Temporal Convolutional Network (Bai, Kolter & Koltun's TCN repository) and a small WaveNet
stack, written as their authors write them: Conv1d with dilation and symmetric padding then
Chomp1d cutting the future off (contiguous()), weight_norm from torch.nn.utils (the old API, as
the TCN code uses) and from nn.utils.parametrizations (the new one, with its original0/original1
parameters), residual 1x1 downsampling, a WaveNet gated activation tanh*sigmoid with skip
connections and causal left padding by F.pad, trained on the adding problem with Adam,
clip_grad_norm_ and StepLR; then the weight-normed state dicts and remove_weight_norm."""
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.utils import weight_norm
from torch.nn.utils import parametrizations, parametrize


class Chomp1d(nn.Module):
    def __init__(self, chomp_size):
        super(Chomp1d, self).__init__()
        self.chomp_size = chomp_size

    def forward(self, x):
        return x[:, :, :-self.chomp_size].contiguous()


class TemporalBlock(nn.Module):
    def __init__(self, n_inputs, n_outputs, kernel_size, stride, dilation, padding, dropout=0.2):
        super(TemporalBlock, self).__init__()
        self.conv1 = weight_norm(nn.Conv1d(n_inputs, n_outputs, kernel_size,
                                           stride=stride, padding=padding, dilation=dilation))
        self.chomp1 = Chomp1d(padding)
        self.relu1 = nn.ReLU()
        self.dropout1 = nn.Dropout(dropout)
        self.conv2 = weight_norm(nn.Conv1d(n_outputs, n_outputs, kernel_size,
                                           stride=stride, padding=padding, dilation=dilation))
        self.chomp2 = Chomp1d(padding)
        self.relu2 = nn.ReLU()
        self.dropout2 = nn.Dropout(dropout)
        self.net = nn.Sequential(self.conv1, self.chomp1, self.relu1, self.dropout1,
                                 self.conv2, self.chomp2, self.relu2, self.dropout2)
        self.downsample = nn.Conv1d(n_inputs, n_outputs, 1) if n_inputs != n_outputs else None
        self.relu = nn.ReLU()
        self.init_weights()

    def init_weights(self):
        self.conv1.weight.data.normal_(0, 0.01)
        self.conv2.weight.data.normal_(0, 0.01)
        if self.downsample is not None:
            self.downsample.weight.data.normal_(0, 0.01)

    def forward(self, x):
        out = self.net(x)
        res = x if self.downsample is None else self.downsample(x)
        return self.relu(out + res)


class TemporalConvNet(nn.Module):
    def __init__(self, num_inputs, num_channels, kernel_size=2, dropout=0.2):
        super(TemporalConvNet, self).__init__()
        layers = []
        num_levels = len(num_channels)
        for i in range(num_levels):
            dilation_size = 2 ** i
            in_channels = num_inputs if i == 0 else num_channels[i-1]
            out_channels = num_channels[i]
            layers += [TemporalBlock(in_channels, out_channels, kernel_size, stride=1, dilation=dilation_size,
                                     padding=(kernel_size-1) * dilation_size, dropout=dropout)]
        self.network = nn.Sequential(*layers)

    def forward(self, x):
        return self.network(x)


class TCN(nn.Module):
    def __init__(self, input_size, output_size, num_channels, kernel_size, dropout):
        super(TCN, self).__init__()
        self.tcn = TemporalConvNet(input_size, num_channels, kernel_size=kernel_size, dropout=dropout)
        self.linear = nn.Linear(num_channels[-1], output_size)
        self.init_weights()

    def init_weights(self):
        self.linear.weight.data.normal_(0, 0.01)

    def forward(self, x):
        y1 = self.tcn(x)
        return self.linear(y1[:, :, -1])


class WaveNetLayer(nn.Module):
    def __init__(self, channels, skip, dilation):
        super().__init__()
        self.dilation = dilation
        self.filter = parametrizations.weight_norm(nn.Conv1d(channels, channels, 2, dilation=dilation))
        self.gate = parametrizations.weight_norm(nn.Conv1d(channels, channels, 2, dilation=dilation))
        self.res = nn.Conv1d(channels, channels, 1)
        self.skip = nn.Conv1d(channels, skip, 1)

    def forward(self, x):
        h = F.pad(x, (self.dilation, 0))  # causal: only the past
        h = torch.tanh(self.filter(h)) * torch.sigmoid(self.gate(h))
        return x + self.res(h), self.skip(h)


class WaveNet(nn.Module):
    def __init__(self, classes=8, channels=6, skip=5, dilations=(1, 2, 4, 1, 2, 4)):
        super().__init__()
        self.embed = nn.Embedding(classes, channels)
        self.layers = nn.ModuleList([WaveNetLayer(channels, skip, d) for d in dilations])
        self.out = nn.Sequential(nn.ReLU(), nn.Conv1d(skip, skip, 1), nn.ReLU(), nn.Conv1d(skip, classes, 1))

    def forward(self, tokens):
        x = self.embed(tokens).transpose(1, 2)       # (B, C, T)
        skips = 0
        for layer in self.layers:
            x, s = layer(x)
            skips = skips + s
        return self.out(skips)                         # (B, classes, T)


def data_generator(N, seq_length, rng):
    X_num = rng.random((N, 1, seq_length))
    X_mask = np.zeros((N, 1, seq_length))
    Y = np.zeros((N, 1))
    for i in range(N):
        positions = rng.choice(seq_length, size=2, replace=False)
        X_mask[i, 0, positions[0]] = 1
        X_mask[i, 0, positions[1]] = 1
        Y[i, 0] = X_num[i, 0, positions[0]] + X_num[i, 0, positions[1]]
    X = np.concatenate((X_num, X_mask), axis=1)
    return torch.from_numpy(X).float(), torch.from_numpy(Y).float()


torch.manual_seed(1111)
rng = np.random.default_rng(1111)
X_train, Y_train = data_generator(16, 12, rng)
model = TCN(2, 1, [6, 6, 6], kernel_size=3, dropout=0.0)
share_init(model, "tcn")
report("tcn keys", sorted(model.state_dict().keys())[:6], model.tcn.network[0].conv1.weight_g.shape)
optimizer = getattr(torch.optim, "Adam")(model.parameters(), lr=4e-3)
scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=2, gamma=0.5)
batch_size = 8
for epoch in range(3):
    model.train()
    for i in range(0, X_train.size(0), batch_size):
        x, y = X_train[i:i + batch_size], Y_train[i:i + batch_size]
        optimizer.zero_grad()
        output = model(x)
        loss = F.mse_loss(output, y)
        loss.backward()
        norm = torch.nn.utils.clip_grad_norm_(model.parameters(), 0.2)
        optimizer.step()
        report("tcn", epoch, i, loss.item(), norm.item(), model.tcn.network[0].conv1.weight_g.grad.norm().item())
    scheduler.step()
    report("lr", scheduler.get_last_lr())

conv = model.tcn.network[1].conv1
w = conv.weight_g * conv.weight_v / conv.weight_v.norm(dim=(1, 2), keepdim=True)
report("weight_norm", (conv.weight - w).abs().max().item() < 1e-6)
torch.nn.utils.remove_weight_norm(conv)
report("removed", sorted(n for n, _ in conv.named_parameters()), (conv.weight - w).abs().max().item() < 1e-6)

torch.manual_seed(0)
net = WaveNet()
share_init(net, "wavenet")
layer = net.layers[0]
report("wavenet keys", sorted(k for k in net.state_dict() if k.startswith("layers.0.")),
       parametrize.is_parametrized(layer.filter), parametrize.is_parametrized(layer.filter, "bias"),
       list(layer.filter.parametrizations.weight.original0.shape))
opt = torch.optim.Adam(net.parameters(), lr=1e-2)
seq = torch.from_numpy(rng.integers(0, 8, (4, 17))).long()
for step in range(4):
    logits = net(seq[:, :-1])
    loss = F.cross_entropy(logits, seq[:, 1:])
    opt.zero_grad()
    loss.backward()
    torch.nn.utils.clip_grad_norm_(net.parameters(), max_norm=1.0, norm_type=2.0)
    opt.step()
    report("wavenet", step, loss.item(), layer.filter.parametrizations.weight.original0.grad.flatten().tolist())

# causality: changing the last input token leaves every earlier prediction alone
with torch.no_grad():
    a = net(seq[:1, :-1])
    changed = seq[:1, :-1].clone()
    changed[0, -1] = (changed[0, -1] + 1) % 8
    b = net(changed)
report("causal", (a[..., :-1] - b[..., :-1]).abs().max().item(), (a[..., -1] - b[..., -1]).abs().max().item() > 0)
with parametrize.cached():
    w1 = layer.filter.weight
    w2 = layer.filter.weight
report("cached", w1 is w2)
parametrize.remove_parametrizations(layer.filter, "weight", leave_parametrized=True)
report("unparametrized", parametrize.is_parametrized(layer.filter), sorted(n for n, _ in layer.filter.named_parameters()))
