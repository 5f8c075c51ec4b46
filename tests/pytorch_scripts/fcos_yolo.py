"""An FCOS detector step and a YOLOv3-style head, as the detection repos write them: a two-level
FPN (lateral 1x1 convs, nearest F.interpolate to the finer level's size), GroupNorm towers shared
over levels with a learnable per-level Scale, anchor-free locations from torch.meshgrid,
target assignment (points inside a box, per-level size ranges, the min-area box per point via
min over a masked area matrix), torchvision's sigmoid_focal_loss, the IoU loss on (l, t, r, b)
distances, BCE-with-logits centerness, then inference: sigmoid scores, pre-NMS topk, box decoding,
clamp to the image, batched NMS by the coordinate-offset trick around a hand-written NMS loop
(argsort, box IoU, masked keep), and a YOLO grid decode (sigmoid + grid offsets, exp(wh) * anchors)
with its own confidence filter and torch.sort."""
import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

INF = 100000000


class Scale(nn.Module):
    def __init__(self, init_value=1.0):
        super(Scale, self).__init__()
        self.scale = nn.Parameter(torch.FloatTensor([init_value]))

    def forward(self, input):
        return input * self.scale


class FPN(nn.Module):
    def __init__(self, in_channels_list, out_channels):
        super().__init__()
        self.inner_blocks = nn.ModuleList([nn.Conv2d(c, out_channels, 1) for c in in_channels_list])
        self.layer_blocks = nn.ModuleList([nn.Conv2d(out_channels, out_channels, 3, padding=1)
                                           for _ in in_channels_list])

    def forward(self, x):
        last_inner = self.inner_blocks[-1](x[-1])
        results = [self.layer_blocks[-1](last_inner)]
        for feature, inner_block, layer_block in zip(x[:-1][::-1], self.inner_blocks[:-1][::-1],
                                                     self.layer_blocks[:-1][::-1]):
            inner_top_down = F.interpolate(last_inner, size=feature.shape[-2:], mode="nearest")
            inner_lateral = inner_block(feature)
            last_inner = inner_lateral + inner_top_down
            results.insert(0, layer_block(last_inner))
        return tuple(results)


class FCOSHead(nn.Module):
    def __init__(self, in_channels, num_classes, num_convs=2, prior_prob=0.01, num_levels=2):
        super().__init__()
        cls_tower, bbox_tower = [], []
        for _ in range(num_convs):
            for tower in (cls_tower, bbox_tower):
                tower.append(nn.Conv2d(in_channels, in_channels, kernel_size=3, stride=1, padding=1, bias=True))
                tower.append(nn.GroupNorm(4, in_channels))
                tower.append(nn.ReLU())
        self.add_module('cls_tower', nn.Sequential(*cls_tower))
        self.add_module('bbox_tower', nn.Sequential(*bbox_tower))
        self.cls_logits = nn.Conv2d(in_channels, num_classes, kernel_size=3, stride=1, padding=1)
        self.bbox_pred = nn.Conv2d(in_channels, 4, kernel_size=3, stride=1, padding=1)
        self.centerness = nn.Conv2d(in_channels, 1, kernel_size=3, stride=1, padding=1)

        for modules in [self.cls_tower, self.bbox_tower, self.cls_logits, self.bbox_pred, self.centerness]:
            for l in modules.modules():
                if isinstance(l, nn.Conv2d):
                    torch.nn.init.normal_(l.weight, std=0.01)
                    torch.nn.init.constant_(l.bias, 0)

        bias_value = -math.log((1 - prior_prob) / prior_prob)
        torch.nn.init.constant_(self.cls_logits.bias, bias_value)
        self.scales = nn.ModuleList([Scale(init_value=1.0) for _ in range(num_levels)])

    def forward(self, x):
        logits, bbox_reg, centerness = [], [], []
        for l, feature in enumerate(x):
            cls_tower = self.cls_tower(feature)
            box_tower = self.bbox_tower(feature)
            logits.append(self.cls_logits(cls_tower))
            centerness.append(self.centerness(box_tower))
            bbox_reg.append(torch.exp(self.scales[l](self.bbox_pred(box_tower))))
        return logits, bbox_reg, centerness


class FCOS(nn.Module):
    def __init__(self, num_classes=3, fpn_strides=(4, 8)):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 8, 3, 2, 1), nn.ReLU(inplace=True))
        self.c3 = nn.Sequential(nn.Conv2d(8, 12, 3, 2, 1), nn.ReLU(inplace=True))
        self.c4 = nn.Sequential(nn.Conv2d(12, 16, 3, 2, 1), nn.ReLU(inplace=True))
        self.fpn = FPN([12, 16], 16)
        self.head = FCOSHead(16, num_classes)
        self.fpn_strides = fpn_strides

    def forward(self, images):
        c3 = self.c3(self.stem(images))
        c4 = self.c4(c3)
        features = self.fpn([c3, c4])
        locations = self.compute_locations(features)
        return locations, self.head(features)

    def compute_locations(self, features):
        locations = []
        for level, feature in enumerate(features):
            h, w = feature.size()[-2:]
            locations.append(self.compute_locations_per_level(h, w, self.fpn_strides[level], feature.device))
        return locations

    def compute_locations_per_level(self, h, w, stride, device):
        shifts_x = torch.arange(0, w * stride, step=stride, dtype=torch.float32, device=device)
        shifts_y = torch.arange(0, h * stride, step=stride, dtype=torch.float32, device=device)
        shift_y, shift_x = torch.meshgrid(shifts_y, shifts_x, indexing="ij")
        shift_x = shift_x.reshape(-1)
        shift_y = shift_y.reshape(-1)
        locations = torch.stack((shift_x, shift_y), dim=1) + stride // 2
        return locations


def sigmoid_focal_loss(inputs, targets, alpha: float = 0.25, gamma: float = 2, reduction: str = "none"):
    p = torch.sigmoid(inputs)
    ce_loss = F.binary_cross_entropy_with_logits(inputs, targets, reduction="none")
    p_t = p * targets + (1 - p) * (1 - targets)
    loss = ce_loss * ((1 - p_t) ** gamma)

    if alpha >= 0:
        alpha_t = alpha * targets + (1 - alpha) * (1 - targets)
        loss = alpha_t * loss

    if reduction == "none":
        pass
    elif reduction == "mean":
        loss = loss.mean()
    elif reduction == "sum":
        loss = loss.sum()
    else:
        raise ValueError(f"Invalid Value for arg 'reduction': '{reduction}'")
    return loss


class IOULoss(nn.Module):
    def __init__(self, loss_type="giou"):
        super(IOULoss, self).__init__()
        self.loss_type = loss_type

    def forward(self, pred, target, weight=None):
        pred_left, pred_top, pred_right, pred_bottom = pred[:, 0], pred[:, 1], pred[:, 2], pred[:, 3]
        target_left, target_top, target_right, target_bottom = target[:, 0], target[:, 1], target[:, 2], target[:, 3]

        target_aera = (target_left + target_right) * (target_top + target_bottom)
        pred_aera = (pred_left + pred_right) * (pred_top + pred_bottom)

        w_intersect = torch.min(pred_left, target_left) + torch.min(pred_right, target_right)
        h_intersect = torch.min(pred_bottom, target_bottom) + torch.min(pred_top, target_top)
        g_w_intersect = torch.max(pred_left, target_left) + torch.max(pred_right, target_right)
        g_h_intersect = torch.max(pred_bottom, target_bottom) + torch.max(pred_top, target_top)
        ac_uion = g_w_intersect * g_h_intersect + 1e-7
        area_intersect = w_intersect * h_intersect
        area_union = target_aera + pred_aera - area_intersect
        ious = (area_intersect + 1.0) / (area_union + 1.0)
        gious = ious - (ac_uion - area_union) / ac_uion
        if self.loss_type == 'iou':
            losses = -torch.log(ious)
        elif self.loss_type == 'linear_iou':
            losses = 1 - ious
        elif self.loss_type == 'giou':
            losses = 1 - gious
        else:
            raise NotImplementedError

        if weight is not None and weight.sum() > 0:
            return (losses * weight).sum() / weight.sum()
        else:
            assert losses.numel() != 0
            return losses.mean()


class FCOSLoss:
    def __init__(self, num_classes, object_sizes_of_interest=((-1, 24), (24, INF))):
        self.num_classes = num_classes
        self.object_sizes_of_interest = object_sizes_of_interest
        self.box_reg_loss_func = IOULoss("giou")
        self.centerness_loss_func = nn.BCEWithLogitsLoss(reduction="sum")

    def prepare_targets(self, points, targets):
        expanded = []
        for l, points_per_level in enumerate(points):
            soi = points_per_level.new_tensor(self.object_sizes_of_interest[l])
            expanded.append(soi[None].expand(len(points_per_level), -1))
        expanded = torch.cat(expanded, dim=0)
        num_points_per_level = [len(p) for p in points]
        points_all_level = torch.cat(points, dim=0)
        labels, reg_targets = self.compute_targets_for_locations(points_all_level, targets, expanded)
        for i in range(len(labels)):
            labels[i] = torch.split(labels[i], num_points_per_level, dim=0)
            reg_targets[i] = torch.split(reg_targets[i], num_points_per_level, dim=0)
        labels_level_first, reg_targets_level_first = [], []
        for level in range(len(points)):
            labels_level_first.append(torch.cat([lpi[level] for lpi in labels], dim=0))
            reg_targets_level_first.append(torch.cat([rt[level] for rt in reg_targets], dim=0))
        return labels_level_first, reg_targets_level_first

    def compute_targets_for_locations(self, locations, targets, object_sizes_of_interest):
        labels, reg_targets = [], []
        xs, ys = locations[:, 0], locations[:, 1]
        for im_i in range(len(targets)):
            bboxes = targets[im_i]["boxes"]
            labels_per_im = targets[im_i]["labels"]
            area = (bboxes[:, 2] - bboxes[:, 0]) * (bboxes[:, 3] - bboxes[:, 1])

            l = xs[:, None] - bboxes[:, 0][None]
            t = ys[:, None] - bboxes[:, 1][None]
            r = bboxes[:, 2][None] - xs[:, None]
            b = bboxes[:, 3][None] - ys[:, None]
            reg_targets_per_im = torch.stack([l, t, r, b], dim=2)

            is_in_boxes = reg_targets_per_im.min(dim=2)[0] > 0
            max_reg_targets_per_im = reg_targets_per_im.max(dim=2)[0]
            is_cared_in_the_level = \
                (max_reg_targets_per_im >= object_sizes_of_interest[:, [0]]) & \
                (max_reg_targets_per_im <= object_sizes_of_interest[:, [1]])

            locations_to_gt_area = area[None].repeat(len(locations), 1)
            locations_to_gt_area[is_in_boxes == 0] = INF
            locations_to_gt_area[is_cared_in_the_level == 0] = INF

            locations_to_min_area, locations_to_gt_inds = locations_to_gt_area.min(dim=1)
            reg_targets_per_im = reg_targets_per_im[range(len(locations)), locations_to_gt_inds]
            labels_per_im = labels_per_im[locations_to_gt_inds] + 1  # 0 is background
            labels_per_im[locations_to_min_area == INF] = 0

            labels.append(labels_per_im)
            reg_targets.append(reg_targets_per_im)
        return labels, reg_targets

    def compute_centerness_targets(self, reg_targets):
        left_right = reg_targets[:, [0, 2]]
        top_bottom = reg_targets[:, [1, 3]]
        centerness = (left_right.min(dim=-1)[0] / left_right.max(dim=-1)[0]) * \
                     (top_bottom.min(dim=-1)[0] / top_bottom.max(dim=-1)[0])
        return torch.sqrt(centerness)

    def __call__(self, locations, box_cls, box_regression, centerness, targets):
        N = box_cls[0].size(0)
        num_classes = box_cls[0].size(1)
        labels, reg_targets = self.prepare_targets(locations, targets)

        box_cls_flatten, box_regression_flatten, centerness_flatten = [], [], []
        labels_flatten, reg_targets_flatten = [], []
        for l in range(len(labels)):
            box_cls_flatten.append(box_cls[l].permute(0, 2, 3, 1).reshape(-1, num_classes))
            box_regression_flatten.append(box_regression[l].permute(0, 2, 3, 1).reshape(-1, 4))
            labels_flatten.append(labels[l].reshape(-1))
            reg_targets_flatten.append(reg_targets[l].reshape(-1, 4))
            centerness_flatten.append(centerness[l].reshape(-1))

        box_cls_flatten = torch.cat(box_cls_flatten, dim=0)
        box_regression_flatten = torch.cat(box_regression_flatten, dim=0)
        centerness_flatten = torch.cat(centerness_flatten, dim=0)
        labels_flatten = torch.cat(labels_flatten, dim=0)
        reg_targets_flatten = torch.cat(reg_targets_flatten, dim=0)

        pos_inds = torch.nonzero(labels_flatten > 0).squeeze(1)
        box_regression_flatten = box_regression_flatten[pos_inds]
        reg_targets_flatten = reg_targets_flatten[pos_inds]
        centerness_flatten = centerness_flatten[pos_inds]
        num_pos = max(pos_inds.numel(), 1.0)

        # one-hot over foreground classes, background rows all zero
        cls_targets = F.one_hot(labels_flatten, num_classes + 1)[:, 1:].to(box_cls_flatten.dtype)
        cls_loss = sigmoid_focal_loss(box_cls_flatten, cls_targets, reduction="sum") / num_pos

        if pos_inds.numel() > 0:
            centerness_targets = self.compute_centerness_targets(reg_targets_flatten)
            sum_centerness_targets = centerness_targets.sum().item()
            reg_loss = self.box_reg_loss_func(box_regression_flatten, reg_targets_flatten,
                                              centerness_targets) / 1.0
            centerness_loss = self.centerness_loss_func(centerness_flatten, centerness_targets) / num_pos
        else:
            reg_loss = box_regression_flatten.sum()
            centerness_loss = centerness_flatten.sum()
            sum_centerness_targets = 0.0
        return cls_loss, reg_loss, centerness_loss, pos_inds.numel(), sum_centerness_targets


def box_iou(boxes1, boxes2):
    area1 = (boxes1[:, 2] - boxes1[:, 0]) * (boxes1[:, 3] - boxes1[:, 1])
    area2 = (boxes2[:, 2] - boxes2[:, 0]) * (boxes2[:, 3] - boxes2[:, 1])
    lt = torch.max(boxes1[:, None, :2], boxes2[:, :2])
    rb = torch.min(boxes1[:, None, 2:], boxes2[:, 2:])
    wh = (rb - lt).clamp(min=0)
    inter = wh[:, :, 0] * wh[:, :, 1]
    return inter / (area1[:, None] + area2 - inter)


def nms(boxes, scores, iou_threshold):
    order = scores.argsort(descending=True)
    keep = []
    while order.numel() > 0:
        i = order[0]
        keep.append(i)
        if order.numel() == 1:
            break
        ious = box_iou(boxes[i].unsqueeze(0), boxes[order[1:]]).squeeze(0)
        order = order[1:][ious <= iou_threshold]
    return torch.stack(keep) if keep else torch.empty((0,), dtype=torch.int64)


def batched_nms(boxes, scores, idxs, iou_threshold):
    if boxes.numel() == 0:
        return torch.empty((0,), dtype=torch.int64, device=boxes.device)
    max_coordinate = boxes.max()
    offsets = idxs.to(boxes) * (max_coordinate + torch.tensor(1).to(boxes))
    boxes_for_nms = boxes + offsets[:, None]
    return nms(boxes_for_nms, scores, iou_threshold)


@torch.no_grad()
def fcos_postprocess(locations, box_cls, box_regression, centerness, image_size,
                     pre_nms_thresh=0.05, pre_nms_top_n=30, nms_thresh=0.6, fpn_post_nms_top_n=10):
    results = []
    N = box_cls[0].shape[0]
    for img in range(N):
        all_boxes, all_scores, all_labels = [], [], []
        for loc, cls, reg, ctr in zip(locations, box_cls, box_regression, centerness):
            C = cls.size(1)
            cls_i = cls[img].permute(1, 2, 0).reshape(-1, C).sigmoid()
            reg_i = reg[img].permute(1, 2, 0).reshape(-1, 4)
            ctr_i = ctr[img].permute(1, 2, 0).reshape(-1).sigmoid()
            candidate_inds = cls_i > pre_nms_thresh
            pre_n = candidate_inds.reshape(-1).sum().clamp(max=pre_nms_top_n)
            scores = (cls_i * ctr_i[:, None])[candidate_inds]
            cand = candidate_inds.nonzero()
            scores, top_k_indices = scores.topk(int(pre_n.item()), sorted=False)
            loc_idx, labels = cand[top_k_indices, 0], cand[top_k_indices, 1] + 1
            reg_sel, loc_sel = reg_i[loc_idx], loc[loc_idx]
            boxes = torch.stack([loc_sel[:, 0] - reg_sel[:, 0], loc_sel[:, 1] - reg_sel[:, 1],
                                 loc_sel[:, 0] + reg_sel[:, 2], loc_sel[:, 1] + reg_sel[:, 3]], dim=1)
            boxes[:, 0::2] = boxes[:, 0::2].clamp(min=0, max=image_size[1] - 1)
            boxes[:, 1::2] = boxes[:, 1::2].clamp(min=0, max=image_size[0] - 1)
            all_boxes.append(boxes)
            all_scores.append(torch.sqrt(scores))
            all_labels.append(labels)
        boxes, scores, labels = torch.cat(all_boxes), torch.cat(all_scores), torch.cat(all_labels)
        keep = batched_nms(boxes, scores, labels, nms_thresh)[:fpn_post_nms_top_n]
        results.append((boxes[keep], scores[keep], labels[keep]))
    return results


class YOLOLayer(nn.Module):
    def __init__(self, anchors, num_classes, stride):
        super().__init__()
        self.anchors = torch.tensor(anchors, dtype=torch.float32)
        self.na = len(anchors)
        self.no = num_classes + 5
        self.stride = stride
        self.grid = torch.zeros(1)

    @staticmethod
    def _make_grid(nx=20, ny=20):
        yv, xv = torch.meshgrid([torch.arange(ny), torch.arange(nx)], indexing="ij")
        return torch.stack((xv, yv), 2).view((1, 1, ny, nx, 2)).float()

    def forward(self, x):
        bs, _, ny, nx = x.shape
        x = x.view(bs, self.na, self.no, ny, nx).permute(0, 1, 3, 4, 2).contiguous()
        if self.training:
            return x
        if self.grid.shape[2:4] != x.shape[2:4]:
            self.grid = self._make_grid(nx, ny).to(x.device)
        y = x.sigmoid()
        xy = (y[..., 0:2] * 2. - 0.5 + self.grid) * self.stride
        wh = torch.exp(x[..., 2:4]).clamp(max=1e3) * self.anchors.view(1, self.na, 1, 1, 2)
        y = torch.cat((xy, wh, y[..., 4:]), -1)
        return y.view(bs, -1, self.no)


def xywh2xyxy(x):
    y = x.clone()
    y[:, 0] = x[:, 0] - x[:, 2] / 2
    y[:, 1] = x[:, 1] - x[:, 3] / 2
    y[:, 2] = x[:, 0] + x[:, 2] / 2
    y[:, 3] = x[:, 1] + x[:, 3] / 2
    return y


def non_max_suppression(prediction, conf_thres=0.25, iou_thres=0.45, max_det=5):
    output = [torch.zeros((0, 6))] * prediction.shape[0]
    xc = prediction[..., 4] > conf_thres
    for xi, x in enumerate(prediction):
        x = x[xc[xi]]
        if not x.shape[0]:
            continue
        x[:, 5:] *= x[:, 4:5]  # conf = obj_conf * cls_conf
        box = xywh2xyxy(x[:, :4])
        conf, j = x[:, 5:].max(1, keepdim=True)
        x = torch.cat((box, conf, j.float()), 1)[conf.view(-1) > conf_thres]
        x = x[x[:, 4].sort(descending=True)[1]]
        c = x[:, 5:6] * 4096
        boxes, scores = x[:, :4] + c, x[:, 4]
        i = nms(boxes, scores, iou_thres)[:max_det]
        output[xi] = x[i]
    return output


torch.manual_seed(0)
model = FCOS(num_classes=3)
share_init(model, "fcos")
loss_fn = FCOSLoss(num_classes=3)
optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=1e-4)
rng = np.random.default_rng(3)
images = torch.from_numpy(rng.standard_normal((2, 3, 32, 40)).astype(np.float32))
targets = [
    {"boxes": torch.tensor([[2.0, 3.0, 14.0, 17.0], [10.0, 6.0, 38.0, 30.0]]), "labels": torch.tensor([0, 2])},
    {"boxes": torch.tensor([[20.0, 1.0, 33.5, 12.0]]), "labels": torch.tensor([1])},
]
for it in range(4):
    locations, (box_cls, box_reg, ctr) = model(images)
    cls_loss, reg_loss, ctr_loss, num_pos, sum_ctr = loss_fn(locations, box_cls, box_reg, ctr, targets)
    loss = cls_loss + reg_loss + ctr_loss
    optimizer.zero_grad()
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm=3.0)
    optimizer.step()
    report(it, loss.item(), cls_loss.item(), reg_loss.item(), ctr_loss.item(), num_pos, sum_ctr,
           model.head.scales[0].scale.item())

model.eval()
locations, (box_cls, box_reg, ctr) = model(images)
for boxes, scores, labels in fcos_postprocess(locations, box_cls, box_reg, ctr, (32, 40), pre_nms_thresh=0.02):
    report(boxes.shape[0], boxes.flatten().tolist(), scores.tolist(), labels.tolist())

torch.manual_seed(1)
yolo_conv = nn.Conv2d(16, 2 * (3 + 5), 1)
share_init(yolo_conv, "yolo")
yolo = YOLOLayer([(10., 13.), (16., 30.)], num_classes=3, stride=8).eval()
with torch.no_grad():
    c4 = model.c4(model.c3(model.stem(images)))
    raw = yolo_conv(c4) * 3.0
    pred = yolo(raw)
    dets = non_max_suppression(pred, conf_thres=0.2, iou_thres=0.3)
report(list(pred.shape), pred[0, :3].flatten().tolist())
for d in dets:
    report(list(d.shape), d.flatten().tolist())
