"""Heatmap and mask heads as the pose / instance-segmentation repos write them: a
SimpleBaselines pose net (ConvTranspose2d deconv layers with output_padding, BatchNorm,
a 1x1 final layer), Gaussian target heatmaps drawn in NumPy as HRNet's dataset does, the
JointsMSELoss with target weights, get_max_preds (argmax over the flattened heatmap, % and
floor-divide to coordinates, a mask from the max values), the quarter-pixel shift by the sign
of the neighbour difference and PCK accuracy; integral pose regression (soft-argmax: a
softmax over the flattened heatmap, expectations against arange grids) with an L1 loss; a
PixelShuffle / pixel_unshuffle head; CenterNet's decoding (heatmap focal loss, _nms by
max_pool2d equality, _topk over flattened scores with integer division, _gather_feat /
_transpose_and_gather_feat with gather + expand, a RegL1 loss with masks) plus CornerNet's
top / left corner pooling by torch.cummax on flipped maps; and a Mask R-CNN mask branch (a
hand-written RoIAlign over torch.linspace sampling points with grid_sample + avg_pool2d, mask
head convs, ConvTranspose2d upsampling, per-class logits picked by
mask_logits[torch.arange(N), labels], targets projected by the same RoIAlign, BCE with
logits) and paste-back of the masks by F.interpolate."""
import math
from collections import OrderedDict

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

BN_MOMENTUM = 0.1


class PoseNet(nn.Module):
    def __init__(self, num_joints=4, deconv_with_bias=False):
        super().__init__()
        self.inplanes = 16
        self.deconv_with_bias = deconv_with_bias
        self.backbone = nn.Sequential(
            nn.Conv2d(3, 8, 3, 2, 1, bias=False), nn.BatchNorm2d(8, momentum=BN_MOMENTUM), nn.ReLU(inplace=True),
            nn.Conv2d(8, 16, 3, 2, 1, bias=False), nn.BatchNorm2d(16, momentum=BN_MOMENTUM), nn.ReLU(inplace=True),
            nn.Conv2d(16, 16, 3, 2, 1, bias=False), nn.BatchNorm2d(16, momentum=BN_MOMENTUM), nn.ReLU(inplace=True))
        self.deconv_layers = self._make_deconv_layer(2, [12, 12], [4, 3])
        self.final_layer = nn.Conv2d(in_channels=12, out_channels=num_joints, kernel_size=1, stride=1, padding=0)

    def _get_deconv_cfg(self, deconv_kernel, index):
        if deconv_kernel == 4:
            padding = 1
            output_padding = 0
        elif deconv_kernel == 3:
            padding = 1
            output_padding = 1
        elif deconv_kernel == 2:
            padding = 0
            output_padding = 0
        return deconv_kernel, padding, output_padding

    def _make_deconv_layer(self, num_layers, num_filters, num_kernels):
        assert num_layers == len(num_filters), 'ERROR: num_deconv_layers is different len(num_deconv_filters)'
        layers = []
        for i in range(num_layers):
            kernel, padding, output_padding = self._get_deconv_cfg(num_kernels[i], i)
            planes = num_filters[i]
            layers.append(
                nn.ConvTranspose2d(in_channels=self.inplanes, out_channels=planes, kernel_size=kernel, stride=2,
                                   padding=padding, output_padding=output_padding, bias=self.deconv_with_bias))
            layers.append(nn.BatchNorm2d(planes, momentum=BN_MOMENTUM))
            layers.append(nn.ReLU(inplace=True))
            self.inplanes = planes
        return nn.Sequential(*layers)

    def forward(self, x):
        x = self.backbone(x)
        x = self.deconv_layers(x)
        return self.final_layer(x)


class JointsMSELoss(nn.Module):
    def __init__(self, use_target_weight):
        super(JointsMSELoss, self).__init__()
        self.criterion = nn.MSELoss(reduction='mean')
        self.use_target_weight = use_target_weight

    def forward(self, output, target, target_weight):
        batch_size = output.size(0)
        num_joints = output.size(1)
        heatmaps_pred = output.reshape((batch_size, num_joints, -1)).split(1, 1)
        heatmaps_gt = target.reshape((batch_size, num_joints, -1)).split(1, 1)
        loss = 0

        for idx in range(num_joints):
            heatmap_pred = heatmaps_pred[idx].squeeze()
            heatmap_gt = heatmaps_gt[idx].squeeze()
            if self.use_target_weight:
                loss += 0.5 * self.criterion(heatmap_pred.mul(target_weight[:, idx]), heatmap_gt.mul(target_weight[:, idx]))
            else:
                loss += 0.5 * self.criterion(heatmap_pred, heatmap_gt)

        return loss / num_joints


def generate_target(joints, joints_vis, num_joints, heatmap_size, image_size, sigma=1.5):
    target_weight = np.ones((num_joints, 1), dtype=np.float32)
    target_weight[:, 0] = joints_vis[:, 0]
    target = np.zeros((num_joints, heatmap_size[1], heatmap_size[0]), dtype=np.float32)
    tmp_size = sigma * 3
    feat_stride = image_size / heatmap_size
    for joint_id in range(num_joints):
        mu_x = int(joints[joint_id][0] / feat_stride[0] + 0.5)
        mu_y = int(joints[joint_id][1] / feat_stride[1] + 0.5)
        ul = [int(mu_x - tmp_size), int(mu_y - tmp_size)]
        br = [int(mu_x + tmp_size + 1), int(mu_y + tmp_size + 1)]
        if ul[0] >= heatmap_size[0] or ul[1] >= heatmap_size[1] or br[0] < 0 or br[1] < 0:
            target_weight[joint_id] = 0
            continue
        size = 2 * tmp_size + 1
        x = np.arange(0, size, 1, np.float32)
        y = x[:, np.newaxis]
        x0 = y0 = size // 2
        g = np.exp(- ((x - x0) ** 2 + (y - y0) ** 2) / (2 * sigma ** 2))
        g_x = max(0, -ul[0]), min(br[0], heatmap_size[0]) - ul[0]
        g_y = max(0, -ul[1]), min(br[1], heatmap_size[1]) - ul[1]
        img_x = max(0, ul[0]), min(br[0], heatmap_size[0])
        img_y = max(0, ul[1]), min(br[1], heatmap_size[1])
        v = target_weight[joint_id]
        if v > 0.5:
            target[joint_id][img_y[0]:img_y[1], img_x[0]:img_x[1]] = g[g_y[0]:g_y[1], g_x[0]:g_x[1]]
    return target, target_weight


def get_max_preds(batch_heatmaps):
    batch_size = batch_heatmaps.shape[0]
    num_joints = batch_heatmaps.shape[1]
    width = batch_heatmaps.shape[3]
    heatmaps_reshaped = batch_heatmaps.reshape((batch_size, num_joints, -1))
    maxvals, idx = torch.max(heatmaps_reshaped, 2)
    maxvals = maxvals.unsqueeze(2)
    idx = idx.unsqueeze(2)
    preds = idx.repeat(1, 1, 2).float()
    preds[:, :, 0] = (preds[:, :, 0]) % width
    preds[:, :, 1] = torch.floor((preds[:, :, 1]) / width)
    pred_mask = torch.gt(maxvals, 0.0).repeat(1, 1, 2)
    pred_mask = pred_mask.float()
    preds *= pred_mask
    return preds, maxvals


def get_final_preds(batch_heatmaps):
    coords, maxvals = get_max_preds(batch_heatmaps)
    heatmap_height = batch_heatmaps.shape[2]
    heatmap_width = batch_heatmaps.shape[3]
    for n in range(coords.shape[0]):
        for p in range(coords.shape[1]):
            hm = batch_heatmaps[n][p]
            px = int(math.floor(coords[n][p][0] + 0.5))
            py = int(math.floor(coords[n][p][1] + 0.5))
            if 1 < px < heatmap_width - 1 and 1 < py < heatmap_height - 1:
                diff = torch.stack([hm[py][px + 1] - hm[py][px - 1], hm[py + 1][px] - hm[py - 1][px]])
                coords[n][p] += torch.sign(diff) * .25
    return coords, maxvals


def calc_dists(preds, target, normalize):
    dists = torch.zeros((preds.shape[1], preds.shape[0]))
    for n in range(preds.shape[0]):
        for c in range(preds.shape[1]):
            if target[n, c, 0] > 1 and target[n, c, 1] > 1:
                normed_preds = preds[n, c, :] / normalize[n]
                normed_targets = target[n, c, :] / normalize[n]
                dists[c, n] = torch.linalg.norm(normed_preds - normed_targets)
            else:
                dists[c, n] = -1
    return dists


def dist_acc(dists, thr=0.5):
    dist_cal = torch.ne(dists, -1)
    num_dist_cal = dist_cal.sum()
    if num_dist_cal > 0:
        return torch.lt(dists[dist_cal], thr).float().sum().item() / num_dist_cal.item()
    return -1


def softargmax2d(heatmaps, beta=10.0):
    """Integral regression: the expected (x, y) under softmax(beta * heatmap)."""
    n, k, h, w = heatmaps.shape
    probs = F.softmax(beta * heatmaps.reshape(n, k, h * w), dim=-1).reshape(n, k, h, w)
    xs = torch.arange(w, dtype=heatmaps.dtype, device=heatmaps.device)
    ys = torch.arange(h, dtype=heatmaps.dtype, device=heatmaps.device)
    x = (probs.sum(dim=2) * xs).sum(dim=-1)
    y = (probs.sum(dim=3) * ys).sum(dim=-1)
    return torch.stack([x, y], dim=-1)


class PixelShuffleHead(nn.Module):
    def __init__(self, in_ch, out_ch, scale=2):
        super().__init__()
        self.conv = nn.Conv2d(in_ch, out_ch * scale ** 2, 3, padding=1)
        self.shuffle = nn.PixelShuffle(scale)
        self.unshuffle = nn.PixelUnshuffle(scale)

    def forward(self, x):
        up = self.shuffle(self.conv(x))
        return up, self.unshuffle(up)


# ----------------------------------------------------------------------------- CenterNet / CornerNet


def _sigmoid(x):
    y = torch.clamp(x.sigmoid_(), min=1e-4, max=1 - 1e-4)
    return y


def _neg_loss(pred, gt):
    pos_inds = gt.eq(1).float()
    neg_inds = gt.lt(1).float()
    neg_weights = torch.pow(1 - gt, 4)
    loss = 0
    pos_loss = torch.log(pred) * torch.pow(1 - pred, 2) * pos_inds
    neg_loss = torch.log(1 - pred) * torch.pow(pred, 2) * neg_weights * neg_inds
    num_pos = pos_inds.float().sum()
    pos_loss = pos_loss.sum()
    neg_loss = neg_loss.sum()
    if num_pos == 0:
        loss = loss - neg_loss
    else:
        loss = loss - (pos_loss + neg_loss) / num_pos
    return loss


def _gather_feat(feat, ind, mask=None):
    dim = feat.size(2)
    ind = ind.unsqueeze(2).expand(ind.size(0), ind.size(1), dim)
    feat = feat.gather(1, ind)
    if mask is not None:
        mask = mask.unsqueeze(2).expand_as(feat)
        feat = feat[mask]
        feat = feat.view(-1, dim)
    return feat


def _transpose_and_gather_feat(feat, ind):
    feat = feat.permute(0, 2, 3, 1).contiguous()
    feat = feat.view(feat.size(0), -1, feat.size(3))
    feat = _gather_feat(feat, ind)
    return feat


class RegL1Loss(nn.Module):
    def forward(self, output, mask, ind, target):
        pred = _transpose_and_gather_feat(output, ind)
        mask = mask.unsqueeze(2).expand_as(pred).float()
        loss = F.l1_loss(pred * mask, target * mask, reduction='sum')
        loss = loss / (mask.sum() + 1e-4)
        return loss


def _nms(heat, kernel=3):
    pad = (kernel - 1) // 2
    hmax = nn.functional.max_pool2d(heat, (kernel, kernel), stride=1, padding=pad)
    keep = (hmax == heat).float()
    return heat * keep


def _topk(scores, K=4):
    batch, cat, height, width = scores.size()
    topk_scores, topk_inds = torch.topk(scores.view(batch, cat, -1), K)
    topk_inds = topk_inds % (height * width)
    topk_ys = (topk_inds // width).int().float()
    topk_xs = (topk_inds % width).int().float()
    topk_score, topk_ind = torch.topk(topk_scores.view(batch, -1), K)
    topk_clses = torch.div(topk_ind, K, rounding_mode='floor').int()
    topk_inds = _gather_feat(topk_inds.view(batch, -1, 1), topk_ind).view(batch, K)
    topk_ys = _gather_feat(topk_ys.view(batch, -1, 1), topk_ind).view(batch, K)
    topk_xs = _gather_feat(topk_xs.view(batch, -1, 1), topk_ind).view(batch, K)
    return topk_score, topk_inds, topk_clses, topk_ys, topk_xs


def ctdet_decode(heat, wh, reg=None, K=4):
    batch, cat, height, width = heat.size()
    heat = _nms(heat)
    scores, inds, clses, ys, xs = _topk(heat, K=K)
    if reg is not None:
        reg = _transpose_and_gather_feat(reg, inds)
        reg = reg.view(batch, K, 2)
        xs = xs.view(batch, K, 1) + reg[:, :, 0:1]
        ys = ys.view(batch, K, 1) + reg[:, :, 1:2]
    else:
        xs = xs.view(batch, K, 1) + 0.5
        ys = ys.view(batch, K, 1) + 0.5
    wh = _transpose_and_gather_feat(wh, inds)
    wh = wh.view(batch, K, 2)
    clses = clses.view(batch, K, 1).float()
    scores = scores.view(batch, K, 1)
    bboxes = torch.cat([xs - wh[..., 0:1] / 2, ys - wh[..., 1:2] / 2, xs + wh[..., 0:1] / 2, ys + wh[..., 1:2] / 2], dim=2)
    return torch.cat([bboxes, scores, clses], dim=2)


class CenterNetHead(nn.Module):
    def __init__(self, in_ch, num_classes, head_conv=16):
        super().__init__()
        self.heads = {'hm': num_classes, 'wh': 2, 'reg': 2}
        for head, classes in self.heads.items():
            fc = nn.Sequential(nn.Conv2d(in_ch, head_conv, kernel_size=3, padding=1, bias=True), nn.ReLU(inplace=True),
                               nn.Conv2d(head_conv, classes, kernel_size=1, stride=1, padding=0, bias=True))
            if 'hm' in head:
                fc[-1].bias.data.fill_(-2.19)
            self.__setattr__(head, fc)

    def forward(self, x):
        return {head: self.__getattr__(head)(x) for head in self.heads}


def top_pool(x):
    # CornerNet's TopPool: the max over everything below each pixel, a reversed cummax
    return torch.cummax(x.flip(2), dim=2)[0].flip(2)


def left_pool(x):
    return torch.cummax(x.flip(3), dim=3)[0].flip(3)


# ----------------------------------------------------------------------------- Mask R-CNN mask branch


def roi_align(features, rois, output_size, spatial_scale=1.0, sampling_ratio=2, aligned=True):
    """RoIAlign by grid_sample: rois (K, 5) of (batch index, x1, y1, x2, y2) in image pixels."""
    n, c, h, w = features.shape
    oh, ow = output_size
    out = []
    offset = 0.5 if aligned else 0.0
    for roi in rois:
        b = int(roi[0].item())
        x1, y1, x2, y2 = [v * spatial_scale - offset for v in roi[1:]]
        if not aligned:
            x2 = torch.max(x2, x1 + 1)
            y2 = torch.max(y2, y1 + 1)
        sx = (x2 - x1) / (ow * sampling_ratio)
        sy = (y2 - y1) / (oh * sampling_ratio)
        xs = x1 + sx * (torch.arange(ow * sampling_ratio, dtype=features.dtype) + 0.5)
        ys = y1 + sy * (torch.arange(oh * sampling_ratio, dtype=features.dtype) + 0.5)
        gy, gx = torch.meshgrid(ys, xs, indexing="ij")
        grid = torch.stack([(gx + 0.5) / w * 2 - 1, (gy + 0.5) / h * 2 - 1], dim=-1)[None]
        sampled = F.grid_sample(features[b:b + 1], grid, mode="bilinear", padding_mode="zeros", align_corners=False)
        out.append(F.avg_pool2d(sampled, sampling_ratio))
    return torch.cat(out, dim=0)


class MaskRCNNHeads(nn.Sequential):
    def __init__(self, in_channels, layers, dilation):
        d = OrderedDict()
        next_feature = in_channels
        for layer_idx, layer_features in enumerate(layers, 1):
            d[f"mask_fcn{layer_idx}"] = nn.Conv2d(next_feature, layer_features, kernel_size=3, stride=1,
                                                  padding=dilation, dilation=dilation)
            d[f"relu{layer_idx}"] = nn.ReLU(inplace=True)
            next_feature = layer_features
        super().__init__(d)
        for name, param in self.named_parameters():
            if "weight" in name:
                nn.init.kaiming_normal_(param, mode="fan_out", nonlinearity="relu")
            elif "bias" in name:
                nn.init.constant_(param, 0)


class MaskRCNNPredictor(nn.Sequential):
    def __init__(self, in_channels, dim_reduced, num_classes):
        super().__init__(
            nn.ConvTranspose2d(in_channels, dim_reduced, 2, 2, 0),
            nn.ReLU(inplace=True),
            nn.Conv2d(dim_reduced, num_classes, 1, 1, 0),
        )
        for name, param in self.named_parameters():
            if "weight" in name:
                nn.init.kaiming_normal_(param, mode="fan_out", nonlinearity="relu")


def project_masks_on_boxes(gt_masks, boxes, matched_idxs, M):
    matched_idxs = matched_idxs.to(boxes)
    rois = torch.cat([matched_idxs[:, None], boxes], dim=1)
    gt_masks = gt_masks[:, None].to(rois)
    return roi_align(gt_masks, rois, (M, M), 1.0)[:, 0]


def maskrcnn_loss(mask_logits, proposals, gt_masks, gt_labels, mask_matched_idxs):
    discretization_size = mask_logits.shape[-1]
    labels = [gt_label[idxs] for gt_label, idxs in zip(gt_labels, mask_matched_idxs)]
    mask_targets = [project_masks_on_boxes(m, p, i, discretization_size)
                    for m, p, i in zip(gt_masks, proposals, mask_matched_idxs)]
    labels = torch.cat(labels, dim=0)
    mask_targets = torch.cat(mask_targets, dim=0)
    if mask_targets.numel() == 0:
        return mask_logits.sum() * 0
    mask_loss = F.binary_cross_entropy_with_logits(
        mask_logits[torch.arange(labels.shape[0], device=labels.device), labels], mask_targets)
    return mask_loss, mask_targets


def paste_mask_in_image(mask, box, im_h, im_w):
    x1, y1, x2, y2 = [int(v) for v in box.round().tolist()]
    w, h = max(x2 - x1, 1), max(y2 - y1, 1)
    mask = F.interpolate(mask[None, None], size=(h, w), mode="bilinear", align_corners=False)[0, 0]
    im_mask = torch.zeros((im_h, im_w), dtype=mask.dtype)
    xa, ya, xb, yb = max(x1, 0), max(y1, 0), min(x2, im_w), min(y2, im_h)
    im_mask[ya:yb, xa:xb] = mask[(ya - y1):(yb - y1), (xa - x1):(xb - x1)]
    return im_mask


rng = np.random.default_rng(11)
image_size = np.array([32, 32])
heatmap_size = np.array([16, 16])
B, J = 4, 4
images = torch.from_numpy(rng.standard_normal((B, 3, 32, 32)).astype(np.float32))
targets, weights, joints_all = [], [], []
for b in range(B):
    joints = rng.uniform(2, 30, (J, 2)).astype(np.float32)
    vis = np.ones((J, 1), np.float32)
    vis[b % J] = 0  # one invisible joint per image
    t, w = generate_target(joints, vis, J, heatmap_size, image_size)
    targets.append(t)
    weights.append(w)
    joints_all.append(joints / 2)
target = torch.from_numpy(np.stack(targets))
target_weight = torch.from_numpy(np.stack(weights))
joints_hm = torch.from_numpy(np.stack(joints_all))

torch.manual_seed(0)
model = PoseNet(num_joints=J)
share_init(model, "pose")
criterion = JointsMSELoss(use_target_weight=True)
optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
lr_scheduler = torch.optim.lr_scheduler.MultiStepLR(optimizer, [2], 0.1)
for epoch in range(3):
    model.train()
    output = model(images)
    loss = criterion(output, target, target_weight)
    coords = softargmax2d(output)
    integral_loss = (F.l1_loss(coords, joints_hm, reduction="none") * target_weight).mean()
    total = loss + 1e-3 * integral_loss
    optimizer.zero_grad()
    total.backward()
    optimizer.step()
    lr_scheduler.step()
    preds, maxvals = get_max_preds(output.detach())
    gt_preds, _ = get_max_preds(target)
    norm = torch.ones((preds.shape[0], 2)) * torch.tensor([16, 16]) / 10
    dists = calc_dists(preds, gt_preds, norm)
    report("pose", epoch, loss.item(), integral_loss.item(), dist_acc(dists[0]), maxvals.flatten()[:4].tolist())

model.eval()
with torch.no_grad():
    output = model(images)
    final, maxvals = get_final_preds(output)
    soft = softargmax2d(output, beta=50.0)
report(list(output.shape), final[0].flatten().tolist(), soft[1].flatten().tolist())

torch.manual_seed(1)
shuffle_head = PixelShuffleHead(J, 3)
share_init(shuffle_head, "shuffle")
up, down = shuffle_head(output)
(up.pow(2).mean() + down.abs().mean()).backward()
report(list(up.shape), list(down.shape), up.mean().item(), shuffle_head.conv.weight.grad.abs().sum().item(),
       F.pixel_unshuffle(F.pixel_shuffle(output[:, :4], 2), 2).sub(output[:, :4]).abs().max().item())

# CenterNet on the pose net's features, with ground truth drawn as in its dataset
torch.manual_seed(2)
center_head = CenterNetHead(12, num_classes=2)
share_init(center_head, "centernet")
opt = torch.optim.Adam(center_head.parameters(), lr=1.25e-4 * 8)
hm_gt = np.zeros((B, 2, 16, 16), np.float32)
max_objs = 3
ind = np.zeros((B, max_objs), np.int64)
reg_mask = np.zeros((B, max_objs), np.uint8)
wh_gt = np.zeros((B, max_objs, 2), np.float32)
reg_gt = np.zeros((B, max_objs, 2), np.float32)
yy, xx = np.mgrid[:16, :16]
for b in range(B):
    for k in range(1 + b % max_objs):
        ct = rng.uniform(1, 15, 2).astype(np.float32)
        ct_int = ct.astype(np.int32)
        cls = (b + k) % 2
        g = np.exp(-((xx - ct_int[0]) ** 2 + (yy - ct_int[1]) ** 2) / (2 * 1.2 ** 2))
        hm_gt[b, cls] = np.maximum(hm_gt[b, cls], g)
        ind[b, k] = ct_int[1] * 16 + ct_int[0]
        reg_mask[b, k] = 1
        wh_gt[b, k] = rng.uniform(2, 8, 2)
        reg_gt[b, k] = ct - ct_int
batch = {k: torch.from_numpy(v) for k, v in
         dict(hm=hm_gt, ind=ind, reg_mask=reg_mask, wh=wh_gt, reg=reg_gt).items()}
with torch.no_grad():
    feats = model.deconv_layers(model.backbone(images))
reg_crit = RegL1Loss()
for step in range(3):
    out = center_head(feats)
    hm = _sigmoid(out['hm'])
    hm_loss = _neg_loss(hm, batch['hm'])
    wh_loss = reg_crit(out['wh'], batch['reg_mask'], batch['ind'], batch['wh'])
    off_loss = reg_crit(out['reg'], batch['reg_mask'], batch['ind'], batch['reg'])
    loss = hm_loss + 0.1 * wh_loss + off_loss
    opt.zero_grad()
    loss.backward()
    opt.step()
    report("centernet", step, loss.item(), hm_loss.item(), wh_loss.item(), off_loss.item())
with torch.no_grad():
    out = center_head(feats)
    dets = ctdet_decode(out['hm'].sigmoid_(), out['wh'], reg=out['reg'], K=5)
    tl = top_pool(out['hm']) + left_pool(out['hm'])
report(dets[0].flatten().tolist(), dets[:, :, 5].tolist(), tl.sum().item(), tl[1, 0, :, 3].tolist(),
       torch.cummax(out['wh'][0, 0, 2], dim=0)[1].tolist())

# Mask R-CNN mask branch on RoIs over the pose features (stride 2 relative to the image)
torch.manual_seed(3)
mask_head = MaskRCNNHeads(12, (12, 12), dilation=1)
mask_predictor = MaskRCNNPredictor(12, 8, num_classes=3)
share_init(mask_head, "mask_head")
share_init(mask_predictor, "mask_predictor")
params = list(mask_head.parameters()) + list(mask_predictor.parameters())
opt = torch.optim.SGD(params, lr=0.02, momentum=0.9, weight_decay=1e-4)
gt_masks = [torch.from_numpy(((xx.repeat(2, 0).repeat(2, 1) - 12 - 4 * k) ** 2 +
                              (yy.repeat(2, 0).repeat(2, 1) - 14) ** 2 < 40).astype(np.float32))[None]
            for k in range(2)]
gt_masks = [torch.cat([m, m.flip(-1)], 0) for m in gt_masks]  # two instances per image
gt_labels = [torch.tensor([1, 2]), torch.tensor([2, 1])]
proposals = [torch.tensor([[4.0, 6.0, 21.5, 22.0], [12.0, 3.0, 30.0, 25.0], [5.5, 8.0, 15.0, 20.0]]),
             torch.tensor([[2.0, 2.0, 28.0, 29.0], [10.0, 10.0, 20.0, 30.0]])]
matched = [torch.tensor([0, 1, 0]), torch.tensor([1, 0])]
rois = torch.cat([torch.cat([torch.full((len(p), 1), float(i)), p], dim=1) for i, p in enumerate(proposals)])
for step in range(3):
    mask_features = roi_align(feats[:2], rois, (7, 7), spatial_scale=0.5, sampling_ratio=2)
    mask_logits = mask_predictor(mask_head(mask_features))
    loss, mask_targets = maskrcnn_loss(mask_logits, proposals, gt_masks, gt_labels, matched)
    opt.zero_grad()
    loss.backward()
    opt.step()
    report("maskrcnn", step, loss.item(), list(mask_logits.shape), mask_targets.sum().item(),
           mask_predictor[0].weight.grad.norm().item())
with torch.no_grad():
    probs = mask_logits.sigmoid()[torch.arange(5), torch.tensor([1, 2, 1, 1, 2])]
    pasted = paste_mask_in_image(probs[0], proposals[0][0], 32, 32)
report((pasted > 0.5).sum().item(), pasted.sum().item(), pasted[14, 4:22].tolist())
