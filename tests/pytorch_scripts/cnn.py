"""The PyTorch CIFAR tutorial's CNN with batch norm: TensorDataset/DataLoader, SGD with Nesterov
momentum and weight decay, MultiStepLR, torch.max accuracy, a checkpoint dict through
torch.save/torch.load."""
import os
import numpy as np
import torch, torch.nn as nn, torch.nn.functional as F, torch.optim as optim
from torch.utils.data import TensorDataset, DataLoader
class Net(nn.Module):
    def __init__(self):
        super(Net, self).__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, padding=1); self.bn1 = nn.BatchNorm2d(8)
        self.conv2 = nn.Conv2d(8, 16, 3, padding=1); self.bn2 = nn.BatchNorm2d(16)
        self.pool = nn.MaxPool2d(2, 2)
        self.fc1 = nn.Linear(16 * 4 * 4, 32); self.fc2 = nn.Linear(32, 10)
    def forward(self, x):
        x = self.pool(F.relu(self.bn1(self.conv1(x))))
        x = self.pool(F.relu(self.bn2(self.conv2(x))))
        x = torch.flatten(x, 1)
        x = F.dropout(F.relu(self.fc1(x)), p=0.0, training=self.training)
        return F.log_softmax(self.fc2(x), dim=1)
torch.manual_seed(0)
net = Net()
share_init(net)
rng = np.random.default_rng(0)
X = torch.from_numpy(rng.standard_normal((64, 3, 16, 16)).astype(np.float32)); Y = torch.from_numpy(rng.integers(0, 10, 64))
loader = DataLoader(TensorDataset(X, Y), batch_size=16, shuffle=False)
opt = optim.SGD(net.parameters(), lr=0.05, momentum=0.9, nesterov=True, weight_decay=5e-4)
sched = optim.lr_scheduler.MultiStepLR(opt, milestones=[2, 3], gamma=0.1)
device = torch.device("cuda" if torch.cuda.is_available() else "cpu"); net.to(device)
for epoch in range(4):
    net.train(); running = 0.0
    for i, (inputs, labels) in enumerate(loader):
        inputs, labels = inputs.to(device), labels.to(device)
        opt.zero_grad(); out = net(inputs); loss = F.nll_loss(out, labels); loss.backward(); opt.step()
        running += loss.item()
    sched.step()
    net.eval(); correct = 0; total = 0
    with torch.no_grad():
        for inputs, labels in loader:
            outputs = net(inputs); _, predicted = torch.max(outputs.data, 1)
            total += labels.size(0); correct += (predicted == labels).sum().item()
    report(epoch, running / len(loader), 100 * correct / total, sched.get_last_lr()[0])
torch.save({"epoch": 4, "model_state_dict": net.state_dict(), "optimizer_state_dict": opt.state_dict(), "loss": running}, os.path.join(TMP, "ck.pt"))
ck = torch.load(os.path.join(TMP, "ck.pt"), map_location="cpu", weights_only=False)
net2 = Net(); net2.load_state_dict(ck["model_state_dict"]); opt2 = optim.SGD(net2.parameters(), lr=0.05, momentum=0.9); opt2.load_state_dict(ck["optimizer_state_dict"])
report("reload", ck["epoch"], ck["loss"], type(ck["optimizer_state_dict"]["state"]).__name__)
