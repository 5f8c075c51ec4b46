"""Optical flow and spatial transformers as the repos write them: RAFT, shrunk (an instance-norm
feature encoder and a batch-norm context encoder, the all-pairs correlation volume by
torch.matmul of flattened feature maps / sqrt(dim), a correlation pyramid by F.avg_pool2d,
the lookup that samples each level around the current coordinates through a bilinear_sampler
built on F.grid_sample(align_corners=True) with coords_grid from torch.meshgrid, a SepConvGRU
update block with the motion encoder, convex upsampling by F.unfold of 8 * flow with a
softmax mask, and the sequence loss with gamma-weighted iterations and EPE metrics), a
PWC-Net style warp (grid_sample with padding_mode="zeros" plus a validity mask), a local cost
volume from F.pad + shifted products, and the PyTorch tutorial's Spatial Transformer Network
(a localisation net regressing a 2x3 theta initialised to the identity, F.affine_grid, then
F.grid_sample, trained on translated digits) with nearest / reflection / border sampling and
a 3D affine_grid on a volume."""
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


def bilinear_sampler(img, coords, mode='bilinear', mask=False):
    """ Wrapper for grid_sample, uses pixel coordinates """
    H, W = img.shape[-2:]
    xgrid, ygrid = coords.split([1, 1], dim=-1)
    xgrid = 2 * xgrid / (W - 1) - 1
    ygrid = 2 * ygrid / (H - 1) - 1

    grid = torch.cat([xgrid, ygrid], dim=-1)
    img = F.grid_sample(img, grid, align_corners=True)

    if mask:
        mask = (xgrid > -1) & (ygrid > -1) & (xgrid < 1) & (ygrid < 1)
        return img, mask.float()
    return img


def coords_grid(batch, ht, wd, device):
    coords = torch.meshgrid(torch.arange(ht, device=device), torch.arange(wd, device=device), indexing="ij")
    coords = torch.stack(coords[::-1], dim=0).float()
    return coords[None].repeat(batch, 1, 1, 1)


def upflow8(flow, mode='bilinear'):
    new_size = (8 * flow.shape[2], 8 * flow.shape[3])
    return 8 * F.interpolate(flow, size=new_size, mode=mode, align_corners=True)


class CorrBlock:
    def __init__(self, fmap1, fmap2, num_levels=2, radius=2):
        self.num_levels = num_levels
        self.radius = radius
        self.corr_pyramid = []

        # all pairs correlation
        corr = CorrBlock.corr(fmap1, fmap2)

        batch, h1, w1, dim, h2, w2 = corr.shape
        corr = corr.reshape(batch * h1 * w1, dim, h2, w2)

        self.corr_pyramid.append(corr)
        for i in range(self.num_levels - 1):
            corr = F.avg_pool2d(corr, 2, stride=2)
            self.corr_pyramid.append(corr)

    def __call__(self, coords):
        r = self.radius
        coords = coords.permute(0, 2, 3, 1)
        batch, h1, w1, _ = coords.shape

        out_pyramid = []
        for i in range(self.num_levels):
            corr = self.corr_pyramid[i]
            dx = torch.linspace(-r, r, 2 * r + 1, device=coords.device)
            dy = torch.linspace(-r, r, 2 * r + 1, device=coords.device)
            delta = torch.stack(torch.meshgrid(dy, dx, indexing="ij"), axis=-1)

            centroid_lvl = coords.reshape(batch * h1 * w1, 1, 1, 2) / 2 ** i
            delta_lvl = delta.view(1, 2 * r + 1, 2 * r + 1, 2)
            coords_lvl = centroid_lvl + delta_lvl

            corr = bilinear_sampler(corr, coords_lvl)
            corr = corr.view(batch, h1, w1, -1)
            out_pyramid.append(corr)

        out = torch.cat(out_pyramid, dim=-1)
        return out.permute(0, 3, 1, 2).contiguous().float()

    @staticmethod
    def corr(fmap1, fmap2):
        batch, dim, ht, wd = fmap1.shape
        fmap1 = fmap1.view(batch, dim, ht * wd)
        fmap2 = fmap2.view(batch, dim, ht * wd)

        corr = torch.matmul(fmap1.transpose(1, 2), fmap2)
        corr = corr.view(batch, ht, wd, 1, ht, wd)
        return corr / torch.sqrt(torch.tensor(dim).float())


class ResidualBlock(nn.Module):
    def __init__(self, in_planes, planes, norm_fn='group', stride=1):
        super(ResidualBlock, self).__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, kernel_size=3, padding=1, stride=stride)
        self.conv2 = nn.Conv2d(planes, planes, kernel_size=3, padding=1)
        self.relu = nn.ReLU(inplace=True)
        if norm_fn == 'instance':
            self.norm1 = nn.InstanceNorm2d(planes)
            self.norm2 = nn.InstanceNorm2d(planes)
            self.norm3 = nn.InstanceNorm2d(planes) if stride != 1 else None
        elif norm_fn == 'batch':
            self.norm1 = nn.BatchNorm2d(planes)
            self.norm2 = nn.BatchNorm2d(planes)
            self.norm3 = nn.BatchNorm2d(planes) if stride != 1 else None
        if stride == 1:
            self.downsample = None
        else:
            self.downsample = nn.Sequential(nn.Conv2d(in_planes, planes, kernel_size=1, stride=stride), self.norm3)

    def forward(self, x):
        y = x
        y = self.relu(self.norm1(self.conv1(y)))
        y = self.relu(self.norm2(self.conv2(y)))
        if self.downsample is not None:
            x = self.downsample(x)
        return self.relu(x + y)


class Encoder(nn.Module):
    def __init__(self, output_dim=16, norm_fn='batch'):
        super().__init__()
        self.norm_fn = norm_fn
        self.norm1 = nn.InstanceNorm2d(8) if norm_fn == 'instance' else nn.BatchNorm2d(8)
        self.conv1 = nn.Conv2d(3, 8, kernel_size=7, stride=2, padding=3)
        self.relu1 = nn.ReLU(inplace=True)
        self.layer1 = ResidualBlock(8, 12, norm_fn, stride=2)
        self.layer2 = ResidualBlock(12, 12, norm_fn, stride=2)
        self.conv2 = nn.Conv2d(12, output_dim, kernel_size=1)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode='fan_out', nonlinearity='relu')
            elif isinstance(m, (nn.BatchNorm2d, nn.InstanceNorm2d, nn.GroupNorm)):
                if m.weight is not None:
                    nn.init.constant_(m.weight, 1)
                if m.bias is not None:
                    nn.init.constant_(m.bias, 0)

    def forward(self, x):
        is_list = isinstance(x, tuple) or isinstance(x, list)
        if is_list:
            batch_dim = x[0].shape[0]
            x = torch.cat(x, dim=0)
        x = self.relu1(self.norm1(self.conv1(x)))
        x = self.layer2(self.layer1(x))
        x = self.conv2(x)
        if is_list:
            x = torch.split(x, [batch_dim, batch_dim], dim=0)
        return x


class SepConvGRU(nn.Module):
    def __init__(self, hidden_dim=16, input_dim=24):
        super(SepConvGRU, self).__init__()
        self.convz1 = nn.Conv2d(hidden_dim + input_dim, hidden_dim, (1, 5), padding=(0, 2))
        self.convr1 = nn.Conv2d(hidden_dim + input_dim, hidden_dim, (1, 5), padding=(0, 2))
        self.convq1 = nn.Conv2d(hidden_dim + input_dim, hidden_dim, (1, 5), padding=(0, 2))
        self.convz2 = nn.Conv2d(hidden_dim + input_dim, hidden_dim, (5, 1), padding=(2, 0))
        self.convr2 = nn.Conv2d(hidden_dim + input_dim, hidden_dim, (5, 1), padding=(2, 0))
        self.convq2 = nn.Conv2d(hidden_dim + input_dim, hidden_dim, (5, 1), padding=(2, 0))

    def forward(self, h, x):
        hx = torch.cat([h, x], dim=1)
        z = torch.sigmoid(self.convz1(hx))
        r = torch.sigmoid(self.convr1(hx))
        q = torch.tanh(self.convq1(torch.cat([r * h, x], dim=1)))
        h = (1 - z) * h + z * q
        hx = torch.cat([h, x], dim=1)
        z = torch.sigmoid(self.convz2(hx))
        r = torch.sigmoid(self.convr2(hx))
        q = torch.tanh(self.convq2(torch.cat([r * h, x], dim=1)))
        h = (1 - z) * h + z * q
        return h


class BasicMotionEncoder(nn.Module):
    def __init__(self, cor_planes):
        super(BasicMotionEncoder, self).__init__()
        self.convc1 = nn.Conv2d(cor_planes, 16, 1, padding=0)
        self.convf1 = nn.Conv2d(2, 8, 7, padding=3)
        self.convf2 = nn.Conv2d(8, 6, 3, padding=1)
        self.conv = nn.Conv2d(16 + 6, 16 - 2, 3, padding=1)

    def forward(self, flow, corr):
        cor = F.relu(self.convc1(corr))
        flo = F.relu(self.convf1(flow))
        flo = F.relu(self.convf2(flo))
        cor_flo = torch.cat([cor, flo], dim=1)
        out = F.relu(self.conv(cor_flo))
        return torch.cat([out, flow], dim=1)


class BasicUpdateBlock(nn.Module):
    def __init__(self, cor_planes, hidden_dim=16, context_dim=8):
        super(BasicUpdateBlock, self).__init__()
        self.encoder = BasicMotionEncoder(cor_planes)
        self.gru = SepConvGRU(hidden_dim=hidden_dim, input_dim=16 + context_dim)
        self.flow_head = nn.Sequential(nn.Conv2d(hidden_dim, 16, 3, padding=1), nn.ReLU(inplace=True),
                                       nn.Conv2d(16, 2, 3, padding=1))
        self.mask = nn.Sequential(
            nn.Conv2d(hidden_dim, 16, 3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(16, 64 * 9, 1, padding=0))

    def forward(self, net, inp, corr, flow):
        motion_features = self.encoder(flow, corr)
        inp = torch.cat([inp, motion_features], dim=1)
        net = self.gru(net, inp)
        delta_flow = self.flow_head(net)
        # scale mask to balence gradients
        mask = .25 * self.mask(net)
        return net, mask, delta_flow


class RAFT(nn.Module):
    def __init__(self, hidden_dim=16, context_dim=8, corr_levels=2, corr_radius=2):
        super(RAFT, self).__init__()
        self.hidden_dim, self.context_dim = hidden_dim, context_dim
        self.corr_levels, self.corr_radius = corr_levels, corr_radius
        self.fnet = Encoder(output_dim=16, norm_fn='instance')
        self.cnet = Encoder(output_dim=hidden_dim + context_dim, norm_fn='batch')
        cor_planes = corr_levels * (2 * corr_radius + 1) ** 2
        self.update_block = BasicUpdateBlock(cor_planes, hidden_dim=hidden_dim, context_dim=context_dim)

    def freeze_bn(self):
        for m in self.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.eval()

    def initialize_flow(self, img):
        """ Flow is represented as difference between two coordinate grids flow = coords1 - coords0"""
        N, C, H, W = img.shape
        coords0 = coords_grid(N, H // 8, W // 8, device=img.device)
        coords1 = coords_grid(N, H // 8, W // 8, device=img.device)
        return coords0, coords1

    def upsample_flow(self, flow, mask):
        """ Upsample flow field [H/8, W/8, 2] -> [H, W, 2] using convex combination """
        N, _, H, W = flow.shape
        mask = mask.view(N, 1, 9, 8, 8, H, W)
        mask = torch.softmax(mask, dim=2)

        up_flow = F.unfold(8 * flow, [3, 3], padding=1)
        up_flow = up_flow.view(N, 2, 9, 1, 1, H, W)

        up_flow = torch.sum(mask * up_flow, dim=2)
        up_flow = up_flow.permute(0, 1, 4, 2, 5, 3)
        return up_flow.reshape(N, 2, 8 * H, 8 * W)

    def forward(self, image1, image2, iters=3, flow_init=None, test_mode=False):
        image1 = 2 * (image1 / 255.0) - 1.0
        image2 = 2 * (image2 / 255.0) - 1.0
        image1 = image1.contiguous()
        image2 = image2.contiguous()

        hdim, cdim = self.hidden_dim, self.context_dim
        fmap1, fmap2 = self.fnet([image1, image2])
        fmap1, fmap2 = fmap1.float(), fmap2.float()
        corr_fn = CorrBlock(fmap1, fmap2, num_levels=self.corr_levels, radius=self.corr_radius)

        cnet = self.cnet(image1)
        net, inp = torch.split(cnet, [hdim, cdim], dim=1)
        net = torch.tanh(net)
        inp = torch.relu(inp)

        coords0, coords1 = self.initialize_flow(image1)
        if flow_init is not None:
            coords1 = coords1 + flow_init

        flow_predictions = []
        for itr in range(iters):
            coords1 = coords1.detach()
            corr = corr_fn(coords1)  # index correlation volume
            flow = coords1 - coords0
            net, up_mask, delta_flow = self.update_block(net, inp, corr, flow)
            coords1 = coords1 + delta_flow
            if up_mask is None:
                flow_up = upflow8(coords1 - coords0)
            else:
                flow_up = self.upsample_flow(coords1 - coords0, up_mask)
            flow_predictions.append(flow_up)

        if test_mode:
            return coords1 - coords0, flow_up
        return flow_predictions


MAX_FLOW = 400


def sequence_loss(flow_preds, flow_gt, valid, gamma=0.8, max_flow=MAX_FLOW):
    """ Loss function defined over sequence of flow predictions """
    n_predictions = len(flow_preds)
    flow_loss = 0.0

    # exlude invalid pixels and extremely large diplacements
    mag = torch.sum(flow_gt ** 2, dim=1).sqrt()
    valid = (valid >= 0.5) & (mag < max_flow)

    for i in range(n_predictions):
        i_weight = gamma ** (n_predictions - i - 1)
        i_loss = (flow_preds[i] - flow_gt).abs()
        flow_loss += i_weight * (valid[:, None] * i_loss).mean()

    epe = torch.sum((flow_preds[-1] - flow_gt) ** 2, dim=1).sqrt()
    epe = epe.view(-1)[valid.view(-1)]

    metrics = {
        'epe': epe.mean().item(),
        '1px': (epe < 1).float().mean().item(),
        '3px': (epe < 3).float().mean().item(),
        '5px': (epe < 5).float().mean().item(),
    }
    return flow_loss, metrics


def warp(x, flo):
    """warp an image/tensor (im2) back to im1, according to the optical flow (PWC-Net)"""
    B, C, H, W = x.size()
    xx = torch.arange(0, W).view(1, -1).repeat(H, 1)
    yy = torch.arange(0, H).view(-1, 1).repeat(1, W)
    xx = xx.view(1, 1, H, W).repeat(B, 1, 1, 1)
    yy = yy.view(1, 1, H, W).repeat(B, 1, 1, 1)
    grid = torch.cat((xx, yy), 1).float()
    vgrid = grid + flo
    # scale grid to [-1,1]
    vgrid[:, 0, :, :] = 2.0 * vgrid[:, 0, :, :].clone() / max(W - 1, 1) - 1.0
    vgrid[:, 1, :, :] = 2.0 * vgrid[:, 1, :, :].clone() / max(H - 1, 1) - 1.0
    vgrid = vgrid.permute(0, 2, 3, 1)
    output = nn.functional.grid_sample(x, vgrid, align_corners=True)
    mask = torch.ones(x.size())
    mask = nn.functional.grid_sample(mask, vgrid, align_corners=True)
    mask[mask < 0.9999] = 0
    mask[mask > 0] = 1
    return output * mask


def local_cost_volume(f1, f2, max_disp=2):
    """PWC-Net's correlation layer without the CUDA package: shifted products over a padded f2."""
    B, C, H, W = f1.shape
    f2p = F.pad(f2, [max_disp] * 4)
    costs = []
    for dy in range(2 * max_disp + 1):
        for dx in range(2 * max_disp + 1):
            costs.append((f1 * f2p[:, :, dy:dy + H, dx:dx + W]).mean(1, keepdim=True))
    return F.leaky_relu(torch.cat(costs, 1), 0.1)


class STNNet(nn.Module):
    def __init__(self):
        super(STNNet, self).__init__()
        self.conv1 = nn.Conv2d(1, 6, kernel_size=5)
        self.conv2 = nn.Conv2d(6, 8, kernel_size=3)
        self.conv2_drop = nn.Dropout2d(p=0.0)
        self.fc1 = nn.Linear(8 * 3 * 3, 16)
        self.fc2 = nn.Linear(16, 3)

        # Spatial transformer localization-network
        self.localization = nn.Sequential(
            nn.Conv2d(1, 4, kernel_size=5),
            nn.MaxPool2d(2, stride=2),
            nn.ReLU(True),
            nn.Conv2d(4, 6, kernel_size=3),
            nn.MaxPool2d(2, stride=2),
            nn.ReLU(True)
        )

        # Regressor for the 3 * 2 affine matrix
        self.fc_loc = nn.Sequential(
            nn.Linear(6 * 3 * 3, 16),
            nn.ReLU(True),
            nn.Linear(16, 3 * 2)
        )

        # Initialize the weights/bias with identity transformation
        self.fc_loc[2].weight.data.zero_()
        self.fc_loc[2].bias.data.copy_(torch.tensor([1, 0, 0, 0, 1, 0], dtype=torch.float))

    # Spatial transformer network forward function
    def stn(self, x):
        xs = self.localization(x)
        xs = xs.view(-1, 6 * 3 * 3)
        theta = self.fc_loc(xs)
        theta = theta.view(-1, 2, 3)

        grid = F.affine_grid(theta, x.size(), align_corners=False)
        x = F.grid_sample(x, grid, align_corners=False)
        return x, theta

    def forward(self, x):
        # transform the input
        x, theta = self.stn(x)

        # Perform the usual forward pass
        x = F.relu(F.max_pool2d(self.conv1(x), 2))
        x = F.relu(F.max_pool2d(self.conv2_drop(self.conv2(x)), 2))
        x = x.view(-1, 8 * 3 * 3)
        x = F.relu(self.fc1(x))
        x = F.dropout(x, p=0.0, training=self.training)
        x = self.fc2(x)
        return F.log_softmax(x, dim=1), theta


rng = np.random.default_rng(4)
# two frames of a smooth random texture, the second shifted by a constant (1.5, -1) pixel flow
H, W = 32, 40
base = rng.uniform(0, 255, (1, 3, H // 4, W // 4)).astype(np.float32)
img1 = F.interpolate(torch.from_numpy(base), size=(H, W), mode='bilinear', align_corners=False)
flow_gt = torch.zeros(1, 2, H, W)
flow_gt[:, 0] = 1.5
flow_gt[:, 1] = -1.0
img2 = warp(img1, -flow_gt)
valid = torch.ones(1, H, W)
valid[:, :2] = 0

torch.manual_seed(0)
model = RAFT()
share_init(model, "raft")
optimizer = torch.optim.AdamW(model.parameters(), lr=4e-4, weight_decay=1e-5, eps=1e-8)
scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, 4e-4, 3 + 100, pct_start=0.05, cycle_momentum=False,
                                                anneal_strategy='linear')
model.train()
model.freeze_bn()
for total_steps in range(3):
    optimizer.zero_grad()
    flow_predictions = model(img1, img2, iters=3)
    loss, metrics = sequence_loss(flow_predictions, flow_gt, valid, 0.8)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    optimizer.step()
    scheduler.step()
    report("raft", total_steps, loss.item(), sorted(metrics.items()), scheduler.get_last_lr())

model.eval()
with torch.no_grad():
    flow_low, flow_up = model(img1, img2, iters=2, test_mode=True)
    fmap1, fmap2 = model.fnet([img1, img2])
    cost = local_cost_volume(fmap1, fmap2)
    warped = warp(fmap2, flow_low)
report(list(flow_up.shape), flow_low.flatten()[:8].tolist(), flow_up.mean().item(), cost.sum().item(),
       cost[0, :, 1, 2].tolist(), warped.abs().sum().item(), (img2[:, :, 4:-4, 4:-4] - img1[:, :, 5:-3, 3:-5]).abs().max().item() < 60)

# Spatial transformer network on shifted blobs: the class is the blob's shape
torch.manual_seed(1)
stn_model = STNNet()
share_init(stn_model, "stn")
yy, xx = np.mgrid[:20, :20]
digits, labels = [], []
for i in range(12):
    cy, cx = rng.integers(6, 14, 2)
    c = i % 3
    if c == 0:
        img = ((yy - cy) ** 2 + (xx - cx) ** 2 < 12).astype(np.float32)
    elif c == 1:
        img = ((abs(yy - cy) < 4) & (abs(xx - cx) < 2)).astype(np.float32)
    else:
        img = ((abs(yy - cy) < 2) & (abs(xx - cx) < 5)).astype(np.float32)
    digits.append(img[None])
    labels.append(c)
data = torch.from_numpy(np.stack(digits))
target = torch.tensor(labels)
optimizer = torch.optim.SGD(stn_model.parameters(), lr=0.05)
for epoch in range(4):
    stn_model.train()
    optimizer.zero_grad()
    output, theta = stn_model(data)
    loss = F.nll_loss(output, target)
    loss.backward()
    optimizer.step()
    report("stn", epoch, loss.item(), theta[0].flatten().tolist(), stn_model.fc_loc[2].weight.grad.abs().sum().item())

# the samplers' other modes, as augmentation code uses them
angle = torch.tensor([0.3, -0.5])
scale = torch.tensor([1.2, 0.8])
cos, sin = torch.cos(angle) * scale, torch.sin(angle) * scale
theta = torch.stack([torch.stack([cos, -sin, torch.tensor([0.1, -0.2])], -1),
                     torch.stack([sin, cos, torch.tensor([0.0, 0.3])], -1)], 1)  # (2, 2, 3)
theta.requires_grad_(True)
src = data[:2].clone().requires_grad_(True)
outs = []
for mode, padding_mode, align in [("nearest", "zeros", False), ("bilinear", "reflection", False),
                                  ("bilinear", "border", True), ("bilinear", "reflection", True),
                                  ("nearest", "border", True), ("bicubic", "zeros", False),
                                  ("bicubic", "border", True)]:
    grid = F.affine_grid(theta, [2, 1, 17, 23], align_corners=align)
    out = F.grid_sample(src, grid, mode=mode, padding_mode=padding_mode, align_corners=align)
    outs.append(out)
    report(mode, padding_mode, align, out.sum().item(), out[1, 0].sum(0).tolist())
total = sum((o * (k + 1)).sum() for k, o in enumerate(outs))
total.backward()
report(theta.grad.flatten().tolist(), src.grad.sum().item(), src.grad[0, 0, 10, 5:12].tolist())

vol = torch.from_numpy(rng.standard_normal((1, 2, 5, 6, 7)).astype(np.float32))
theta3 = torch.tensor([[[0.9, 0.1, 0.0, 0.05], [0.0, 1.1, 0.2, 0.0], [0.1, 0.0, 0.8, -0.1]]])
grid3 = F.affine_grid(theta3, [1, 2, 4, 5, 6], align_corners=False)
out3 = F.grid_sample(vol, grid3, mode="bilinear", padding_mode="border", align_corners=False)
report(list(out3.shape), out3.sum().item(), out3[0, 1, 2, 3].tolist())
