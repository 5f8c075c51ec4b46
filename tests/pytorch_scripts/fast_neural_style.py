"""The PyTorch examples' fast_neural_style, shrunk: TransformerNet (ConvLayer = ReflectionPad2d +
Conv2d, InstanceNorm2d(affine=True), five ResidualBlocks, UpsampleConvLayer with
F.interpolate(mode='nearest', scale_factor=...)), a frozen VGG-like feature net built by
slicing a Sequential with add_module(str(x), ...) and returning a namedtuple, normalize_batch
with new_tensor and an in-place div_, the gram matrix through bmm, the content + style MSE
losses with Adam, then torch.save of the state dict and stylize(): torch.load, removal of the
deprecated InstanceNorm running_* keys an old checkpoint carries (re.search on the key), and
load_state_dict into a fresh net."""
import os
import re
from collections import namedtuple

import numpy as np
import torch
from torch.optim import Adam
from torch.utils.data import DataLoader, Dataset


class TransformerNet(torch.nn.Module):
    def __init__(self, c=8):
        super(TransformerNet, self).__init__()
        # Initial convolution layers
        self.conv1 = ConvLayer(3, c, kernel_size=9, stride=1)
        self.in1 = torch.nn.InstanceNorm2d(c, affine=True)
        self.conv2 = ConvLayer(c, 2 * c, kernel_size=3, stride=2)
        self.in2 = torch.nn.InstanceNorm2d(2 * c, affine=True)
        self.conv3 = ConvLayer(2 * c, 4 * c, kernel_size=3, stride=2)
        self.in3 = torch.nn.InstanceNorm2d(4 * c, affine=True)
        # Residual layers
        self.res1 = ResidualBlock(4 * c)
        self.res2 = ResidualBlock(4 * c)
        self.res3 = ResidualBlock(4 * c)
        self.res4 = ResidualBlock(4 * c)
        self.res5 = ResidualBlock(4 * c)
        # Upsampling Layers
        self.deconv1 = UpsampleConvLayer(4 * c, 2 * c, kernel_size=3, stride=1, upsample=2)
        self.in4 = torch.nn.InstanceNorm2d(2 * c, affine=True)
        self.deconv2 = UpsampleConvLayer(2 * c, c, kernel_size=3, stride=1, upsample=2)
        self.in5 = torch.nn.InstanceNorm2d(c, affine=True)
        self.deconv3 = ConvLayer(c, 3, kernel_size=9, stride=1)
        # Non-linearities
        self.relu = torch.nn.ReLU()

    def forward(self, X):
        y = self.relu(self.in1(self.conv1(X)))
        y = self.relu(self.in2(self.conv2(y)))
        y = self.relu(self.in3(self.conv3(y)))
        y = self.res1(y)
        y = self.res2(y)
        y = self.res3(y)
        y = self.res4(y)
        y = self.res5(y)
        y = self.relu(self.in4(self.deconv1(y)))
        y = self.relu(self.in5(self.deconv2(y)))
        y = self.deconv3(y)
        return y


class ConvLayer(torch.nn.Module):
    def __init__(self, in_channels, out_channels, kernel_size, stride):
        super(ConvLayer, self).__init__()
        reflection_padding = kernel_size // 2
        self.reflection_pad = torch.nn.ReflectionPad2d(reflection_padding)
        self.conv2d = torch.nn.Conv2d(in_channels, out_channels, kernel_size, stride)

    def forward(self, x):
        out = self.reflection_pad(x)
        out = self.conv2d(out)
        return out


class ResidualBlock(torch.nn.Module):
    """ResidualBlock
    introduced in: https://arxiv.org/abs/1512.03385
    recommended architecture: http://torch.ch/blog/2016/02/04/resnets.html
    """

    def __init__(self, channels):
        super(ResidualBlock, self).__init__()
        self.conv1 = ConvLayer(channels, channels, kernel_size=3, stride=1)
        self.in1 = torch.nn.InstanceNorm2d(channels, affine=True)
        self.conv2 = ConvLayer(channels, channels, kernel_size=3, stride=1)
        self.in2 = torch.nn.InstanceNorm2d(channels, affine=True)
        self.relu = torch.nn.ReLU()

    def forward(self, x):
        residual = x
        out = self.relu(self.in1(self.conv1(x)))
        out = self.in2(self.conv2(out))
        out = out + residual
        return out


class UpsampleConvLayer(torch.nn.Module):
    """UpsampleConvLayer
    Upsamples the input and then does a convolution. This method gives better results
    compared to ConvTranspose2d.
    ref: http://distill.pub/2016/deconv-checkerboard/
    """

    def __init__(self, in_channels, out_channels, kernel_size, stride, upsample=None):
        super(UpsampleConvLayer, self).__init__()
        self.upsample = upsample
        reflection_padding = kernel_size // 2
        self.reflection_pad = torch.nn.ReflectionPad2d(reflection_padding)
        self.conv2d = torch.nn.Conv2d(in_channels, out_channels, kernel_size, stride)

    def forward(self, x):
        x_in = x
        if self.upsample:
            x_in = torch.nn.functional.interpolate(x_in, mode='nearest', scale_factor=self.upsample)
        out = self.reflection_pad(x_in)
        out = self.conv2d(out)
        return out


class Vgg16(torch.nn.Module):
    """vgg.py's feature slices, over a small stand-in for vgg16().features."""

    def __init__(self, requires_grad=False):
        super(Vgg16, self).__init__()
        vgg_pretrained_features = torch.nn.Sequential(
            torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.ReLU(inplace=True),
            torch.nn.Conv2d(4, 4, 3, padding=1), torch.nn.ReLU(inplace=True),
            torch.nn.MaxPool2d(kernel_size=2, stride=2),
            torch.nn.Conv2d(4, 8, 3, padding=1), torch.nn.ReLU(inplace=True),
            torch.nn.MaxPool2d(kernel_size=2, stride=2),
            torch.nn.Conv2d(8, 8, 3, padding=1), torch.nn.ReLU(inplace=True),
        )
        self.slice1 = torch.nn.Sequential()
        self.slice2 = torch.nn.Sequential()
        self.slice3 = torch.nn.Sequential()
        for x in range(4):
            self.slice1.add_module(str(x), vgg_pretrained_features[x])
        for x in range(4, 7):
            self.slice2.add_module(str(x), vgg_pretrained_features[x])
        for x in range(7, 10):
            self.slice3.add_module(str(x), vgg_pretrained_features[x])
        if not requires_grad:
            for param in self.parameters():
                param.requires_grad = False

    def forward(self, X):
        h = self.slice1(X)
        h_relu1_2 = h
        h = self.slice2(h)
        h_relu2_2 = h
        h = self.slice3(h)
        h_relu3_3 = h
        vgg_outputs = namedtuple("VggOutputs", ['relu1_2', 'relu2_2', 'relu3_3'])
        out = vgg_outputs(h_relu1_2, h_relu2_2, h_relu3_3)
        return out


# utils.py
def gram_matrix(y):
    (b, ch, h, w) = y.size()
    features = y.view(b, ch, w * h)
    features_t = features.transpose(1, 2)
    gram = features.bmm(features_t) / (ch * h * w)
    return gram


def normalize_batch(batch):
    # normalize using imagenet mean and std
    mean = batch.new_tensor([0.485, 0.456, 0.406]).view(-1, 1, 1)
    std = batch.new_tensor([0.229, 0.224, 0.225]).view(-1, 1, 1)
    batch = batch.div_(255.0)
    return (batch - mean) / std


class ImageFolderStandIn(Dataset):
    """datasets.ImageFolder + ToTensor + Lambda(x.mul(255)) over generated images."""

    def __init__(self, n, size):
        rng = np.random.default_rng(0)
        self.images = rng.random((n, 3, size, size)).astype(np.float32)

    def __len__(self):
        return len(self.images)

    def __getitem__(self, i):
        return torch.from_numpy(self.images[i]).mul(255), 0


content_weight, style_weight, lr, log_interval = 1e5, 1e10, 1e-3, 2
device = torch.accelerator.current_accelerator() if torch.accelerator.is_available() else torch.device("cpu")
np.random.seed(42)
torch.manual_seed(42)

train_dataset = ImageFolderStandIn(8, 16)
train_loader = DataLoader(train_dataset, batch_size=2)

transformer = TransformerNet().to(device)
share_init(transformer)
optimizer = Adam(transformer.parameters(), lr)
mse_loss = torch.nn.MSELoss()

vgg = Vgg16(requires_grad=False).to(device)
share_init(vgg, "vgg")
style = torch.from_numpy(np.random.default_rng(1).random((3, 16, 16)).astype(np.float32)).mul(255)
style = style.repeat(2, 1, 1, 1).to(device)

features_style = vgg(normalize_batch(style))
gram_style = [gram_matrix(y) for y in features_style]
report("vgg frozen", [p.requires_grad for p in vgg.parameters()], style.max().item() <= 1.0,
       [tuple(g.shape) for g in gram_style], features_style._fields)

for e in range(1):
    transformer.train()
    agg_content_loss = 0.
    agg_style_loss = 0.
    count = 0
    for batch_id, (x, _) in enumerate(train_loader):
        n_batch = len(x)
        count += n_batch
        optimizer.zero_grad()

        x = x.to(device)
        y = transformer(x)

        y = normalize_batch(y)
        x = normalize_batch(x)

        features_y = vgg(y)
        features_x = vgg(x)

        content_loss = content_weight * mse_loss(features_y.relu2_2, features_x.relu2_2)

        style_loss = 0.
        for ft_y, gm_s in zip(features_y, gram_style):
            gm_y = gram_matrix(ft_y)
            style_loss += mse_loss(gm_y, gm_s[:n_batch, :, :])
        style_loss *= style_weight

        total_loss = content_loss + style_loss
        total_loss.backward()
        optimizer.step()

        agg_content_loss += content_loss.item()
        agg_style_loss += style_loss.item()

        if (batch_id + 1) % log_interval == 0:
            mesg = "Epoch {}:\t[{}/{}]\tcontent: {:.6f}\tstyle: {:.6f}\ttotal: {:.6f}".format(
                e + 1, count, len(train_dataset),
                agg_content_loss / (batch_id + 1),
                agg_style_loss / (batch_id + 1),
                (agg_content_loss + agg_style_loss) / (batch_id + 1)
            )
            print(mesg)
            report(e + 1, count, agg_content_loss / (batch_id + 1), agg_style_loss / (batch_id + 1))

# save model
transformer.eval().cpu()
save_model_filename = "epoch_1_content_1e5_style_1e10.model"
save_model_path = os.path.join(TMP, save_model_filename)
torch.save(transformer.state_dict(), save_model_path)
report("state keys", len(transformer.state_dict()), any("running" in k for k in transformer.state_dict()))

# a checkpoint from before InstanceNorm stopped tracking running stats carries running_* keys
old_checkpoint = torch.load(save_model_path)
for name, module in transformer.named_modules():
    if isinstance(module, torch.nn.InstanceNorm2d):
        old_checkpoint[name + ".running_mean"] = torch.zeros(module.num_features)
        old_checkpoint[name + ".running_var"] = torch.ones(module.num_features)
old_model_path = os.path.join(TMP, "old.model")
torch.save(old_checkpoint, old_model_path)
try:
    TransformerNet().load_state_dict(torch.load(old_model_path))
    report("old checkpoint loaded as is")
except RuntimeError as err:
    report("strict load refused", "in1.running_mean" in str(err), "res5.in2.running_var" in str(err))


def stylize(content_image, model_path):
    content_image = content_image.unsqueeze(0).to(device)
    with torch.no_grad():
        style_model = TransformerNet()
        state_dict = torch.load(model_path)
        # remove saved deprecated running_* keys in InstanceNorm from the checkpoint
        for k in list(state_dict.keys()):
            if re.search(r'in\d+\.running_(mean|var)$', k):
                del state_dict[k]
        style_model.load_state_dict(state_dict)
        style_model.to(device)
        style_model.eval()
        output = style_model(content_image).cpu()
    return output


output = stylize(torch.from_numpy(np.random.default_rng(2).random((3, 12, 20)).astype(np.float32)).mul(255), old_model_path)
img = output[0].clone().clamp(0, 255).numpy()
img = img.transpose(1, 2, 0)
report("stylized", tuple(output.shape), output.requires_grad, img.shape, float(img.mean()), float(img[2, 3, 1]))
with torch.no_grad():
    same = transformer(torch.from_numpy(np.random.default_rng(2).random((3, 12, 20)).astype(np.float32)).mul(255).unsqueeze(0))
report("round trip", torch.equal(same, output))
