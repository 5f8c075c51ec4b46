"""The PyTorch examples' super_resolution (ESPCN), shrunk: Net with four Conv2d given as tuples
and nn.PixelShuffle, weights set by init.orthogonal_(w, init.calculate_gain('relu')), a Dataset
in the style of DatasetFromFolder (low-resolution input made from the target), DataLoaders
(the training one shuffled, over one batch, so the order cannot change the loss), MSELoss and
Adam, PSNR via math.log10 under torch.no_grad(), a checkpoint per epoch with torch.save, and
super_resolve's upscaling of one image. Orthogonal init draws from the generator, so both runs
load the same initial weights (share_init) before training."""
from __future__ import print_function
import argparse
import os
from math import log10

import numpy as np
import torch
import torch.nn as nn
import torch.nn.init as init
import torch.optim as optim
import torch.utils.data as data
from torch.utils.data import DataLoader


class Net(nn.Module):
    def __init__(self, upscale_factor):
        super(Net, self).__init__()

        self.relu = nn.ReLU()
        self.conv1 = nn.Conv2d(1, 16, (5, 5), (1, 1), (2, 2))
        self.conv2 = nn.Conv2d(16, 16, (3, 3), (1, 1), (1, 1))
        self.conv3 = nn.Conv2d(16, 8, (3, 3), (1, 1), (1, 1))
        self.conv4 = nn.Conv2d(8, upscale_factor ** 2, (3, 3), (1, 1), (1, 1))
        self.pixel_shuffle = nn.PixelShuffle(upscale_factor)

        self._initialize_weights()

    def forward(self, x):
        x = self.relu(self.conv1(x))
        x = self.relu(self.conv2(x))
        x = self.relu(self.conv3(x))
        x = self.pixel_shuffle(self.conv4(x))
        return x

    def _initialize_weights(self):
        init.orthogonal_(self.conv1.weight, init.calculate_gain('relu'))
        init.orthogonal_(self.conv2.weight, init.calculate_gain('relu'))
        init.orthogonal_(self.conv3.weight, init.calculate_gain('relu'))
        init.orthogonal_(self.conv4.weight)


class DatasetFromArrays(data.Dataset):
    """DatasetFromFolder's contract: (input, target) pairs, the input the target shrunk by the
    upscale factor (here by block averaging instead of PIL's bicubic resize)."""

    def __init__(self, images, upscale_factor, input_transform=None, target_transform=None):
        super(DatasetFromArrays, self).__init__()
        self.images = images
        self.upscale_factor = upscale_factor
        self.input_transform = input_transform
        self.target_transform = target_transform

    def __getitem__(self, index):
        target = self.images[index]
        h, w = target.shape
        f = self.upscale_factor
        input = target.reshape(h // f, f, w // f, f).mean(axis=(1, 3))
        input, target = input[None].copy(), target[None].copy()
        if self.input_transform:
            input = self.input_transform(input)
        if self.target_transform:
            target = self.target_transform(target)
        return input, target

    def __len__(self):
        return len(self.images)


def to_tensor(a):
    return torch.from_numpy(a.astype(np.float32))


parser = argparse.ArgumentParser(description='PyTorch Super Res Example')
parser.add_argument('--upscale_factor', type=int, default=3, help="super resolution upscale factor")
parser.add_argument('--batchSize', type=int, default=6, help='training batch size')
parser.add_argument('--testBatchSize', type=int, default=2, help='testing batch size')
parser.add_argument('--nEpochs', type=int, default=3, help='number of epochs to train for')
parser.add_argument('--lr', type=float, default=0.01, help='Learning Rate. Default=0.01')
parser.add_argument('--threads', type=int, default=0, help='number of threads for data loader to use')
parser.add_argument('--seed', type=int, default=123, help='random seed to use. Default=123')
opt = parser.parse_args([])
print(opt)

torch.manual_seed(opt.seed)
device = torch.device("cpu")

print('===> Loading datasets')
rng = np.random.default_rng(0)
yy, xx = np.mgrid[0:12, 0:12] / 12.0
images = np.stack([np.sin(6 * (a * xx + b * yy)) * 0.5 + 0.5 for a, b in rng.random((10, 2))])
train_set = DatasetFromArrays(images[:6], opt.upscale_factor, to_tensor, to_tensor)
test_set = DatasetFromArrays(images[6:], opt.upscale_factor, to_tensor, to_tensor)
training_data_loader = DataLoader(dataset=train_set, num_workers=opt.threads, batch_size=opt.batchSize, shuffle=True)
testing_data_loader = DataLoader(dataset=test_set, num_workers=opt.threads, batch_size=opt.testBatchSize, shuffle=False)

print('===> Building model')
model = Net(upscale_factor=opt.upscale_factor).to(device)
w = model.conv2.weight.detach().view(16, -1)
report("orthogonal", init.calculate_gain('relu'), init.calculate_gain('leaky_relu', 0.2), init.calculate_gain('tanh'),
       torch.allclose(w @ w.t(), 2 * torch.eye(16), atol=1e-4))
share_init(model)
criterion = nn.MSELoss()

optimizer = optim.Adam(model.parameters(), lr=opt.lr)


def train(epoch):
    epoch_loss = 0
    for iteration, batch in enumerate(training_data_loader, 1):
        input, target = batch[0].to(device), batch[1].to(device)

        optimizer.zero_grad()
        loss = criterion(model(input), target)
        epoch_loss += loss.item()
        loss.backward()
        optimizer.step()

        print("===> Epoch[{}]({}/{}): Loss: {:.4f}".format(epoch, iteration, len(training_data_loader), loss.item()))
        report(epoch, iteration, len(training_data_loader), loss.item())

    print("===> Epoch {} Complete: Avg. Loss: {:.4f}".format(epoch, epoch_loss / len(training_data_loader)))


def test():
    avg_psnr = 0
    with torch.no_grad():
        for batch in testing_data_loader:
            input, target = batch[0].to(device), batch[1].to(device)

            prediction = model(input)
            mse = criterion(prediction, target)
            psnr = 10 * log10(1 / mse.item())
            avg_psnr += psnr
    print("===> Avg. PSNR: {:.4f} dB".format(avg_psnr / len(testing_data_loader)))
    report("psnr", avg_psnr / len(testing_data_loader))


def checkpoint(epoch):
    model_out_path = os.path.join(TMP, "model_epoch_{}.pth".format(epoch))
    torch.save(model.state_dict(), model_out_path)
    print("Checkpoint saved to {}".format(model_out_path))


for epoch in range(1, opt.nEpochs + 1):
    train(epoch)
    test()
    checkpoint(epoch)

# super_resolve.py on one low-resolution image
model = Net(upscale_factor=opt.upscale_factor)
model.load_state_dict(torch.load(os.path.join(TMP, "model_epoch_{}.pth".format(opt.nEpochs))))
img_y = test_set[1][0]
input = img_y.view(1, -1, img_y.shape[1], img_y.shape[2])
out = model(input)
out = out.cpu()
out_img_y = out[0].detach().numpy()
out_img_y *= 255.0
out_img_y = out_img_y.clip(0, 255)
report("upscaled", list(input.shape), list(out.shape), out.requires_grad, float(out_img_y.mean()),
       out_img_y[0, 5].tolist())
ps = nn.PixelShuffle(2)(torch.arange(16.).view(1, 4, 2, 2))
report("pixel shuffle", ps.tolist(), nn.PixelUnshuffle(2)(ps).view(-1).tolist())
