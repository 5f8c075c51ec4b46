"""Self-supervised training, small, written the way its public code writes it: sthalles/SimCLR's
info_nce_loss (labels from torch.arange compared with unsqueeze, F.normalize, features @ features.T,
boolean-mask selection with ~torch.eye, positives / negatives through labels.bool(), a top-k
accuracy helper), Spijkervet/SimCLR's NT_Xent (mask_correlated_samples with fill_diagonal_,
nn.CosineSimilarity(dim=2) on unsqueezed views, torch.diag(sim, k), masked_fill of the diagonal,
CrossEntropyLoss(reduction="sum")), and facebookresearch/dino: DINOHead (an MLP, F.normalize, a
weight-normalised last layer with weight_g filled with 1 and frozen), MultiCropWrapper (crops of
two resolutions grouped with torch.unique_consecutive(return_counts=True) + torch.cumsum), DINOLoss
(a center buffer, student / teacher temperatures with a warmup schedule from np.linspace, chunk
per crop, the centre's EMA update), cosine lr / weight-decay / momentum schedules from utils.
cosine_scheduler set into param groups, get_params_groups (no weight decay on biases and norms),
utils.clip_gradients (per-parameter norm, grad.data.mul_), cancel_gradients_last_layer (p.grad =
None while the last layer is frozen), the teacher loaded from the student's state_dict with
requires_grad False and updated by param_k.data.mul_(m).add_((1 - m) * param_q.detach().data), and
utils.LARS (a torch.optim.Optimizer subclass: self.state, torch.where trust ratio, mu.mul_().add_()).
Views are augmented with NumPy so both libraries see the same pixels."""
import math

import numpy as np
import torch
import torch.distributed as dist
import torch.nn as nn
import torch.nn.functional as F


def is_dist_avail_and_initialized():
    if not dist.is_available():
        return False
    if not dist.is_initialized():
        return False
    return True


def get_world_size():
    if not is_dist_avail_and_initialized():
        return 1
    return dist.get_world_size()


class Backbone(nn.Module):
    """A small ResNet-ish encoder that accepts any crop size (global pooling)."""
    def __init__(self, width=8):
        super().__init__()
        self.conv1 = nn.Conv2d(3, width, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, 2 * width, 3, stride=2, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(2 * width)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Identity()
        self.embed_dim = 2 * width

    def forward(self, x):
        x = F.relu(self.bn1(self.conv1(x)), inplace=True)
        x = F.relu(self.bn2(self.conv2(x)), inplace=True)
        x = self.avgpool(x)
        x = torch.flatten(x, 1)
        return self.fc(x)


# ------------------------------------------------------------------------- sthalles/SimCLR
class ResNetSimCLR(nn.Module):
    def __init__(self, out_dim=8):
        super(ResNetSimCLR, self).__init__()
        self.backbone = Backbone()
        dim_mlp = self.backbone.embed_dim
        # add mlp projection head
        self.backbone.fc = nn.Sequential(nn.Linear(dim_mlp, dim_mlp), nn.ReLU(), nn.Linear(dim_mlp, out_dim))

    def forward(self, x):
        return self.backbone(x)


def accuracy(output, target, topk=(1,)):
    """Computes the accuracy over the k top predictions for the specified values of k"""
    with torch.no_grad():
        maxk = max(topk)
        batch_size = target.size(0)
        _, pred = output.topk(maxk, 1, True, True)
        pred = pred.t()
        correct = pred.eq(target.view(1, -1).expand_as(pred))
        res = []
        for k in topk:
            correct_k = correct[:k].reshape(-1).float().sum(0, keepdim=True)
            res.append(correct_k.mul_(100.0 / batch_size))
        return res


def info_nce_loss(features, batch_size, n_views=2, temperature=0.07, device="cpu"):
    labels = torch.cat([torch.arange(batch_size) for i in range(n_views)], dim=0)
    labels = (labels.unsqueeze(0) == labels.unsqueeze(1)).float()
    labels = labels.to(device)
    features = F.normalize(features, dim=1)
    similarity_matrix = torch.matmul(features, features.T)
    # discard the main diagonal from both: labels and similarities matrix
    mask = torch.eye(labels.shape[0], dtype=torch.bool).to(device)
    labels = labels[~mask].view(labels.shape[0], -1)
    similarity_matrix = similarity_matrix[~mask].view(similarity_matrix.shape[0], -1)
    # select and combine multiple positives
    positives = similarity_matrix[labels.bool()].view(labels.shape[0], -1)
    # select only the negatives the negatives
    negatives = similarity_matrix[~labels.bool()].view(similarity_matrix.shape[0], -1)
    logits = torch.cat([positives, negatives], dim=1)
    labels = torch.zeros(logits.shape[0], dtype=torch.long).to(device)
    logits = logits / temperature
    return logits, labels


# ------------------------------------------------------------------------- Spijkervet/SimCLR
class NT_Xent(nn.Module):
    def __init__(self, batch_size, temperature, world_size=1):
        super(NT_Xent, self).__init__()
        self.batch_size = batch_size
        self.temperature = temperature
        self.world_size = world_size
        self.mask = self.mask_correlated_samples(batch_size, world_size)
        self.criterion = nn.CrossEntropyLoss(reduction="sum")
        self.similarity_f = nn.CosineSimilarity(dim=2)

    def mask_correlated_samples(self, batch_size, world_size):
        N = 2 * batch_size * world_size
        mask = torch.ones((N, N), dtype=bool)
        mask = mask.fill_diagonal_(0)
        for i in range(batch_size * world_size):
            mask[i, batch_size * world_size + i] = 0
            mask[batch_size * world_size + i, i] = 0
        return mask

    def forward(self, z_i, z_j):
        N = 2 * self.batch_size * self.world_size
        z = torch.cat((z_i, z_j), dim=0)
        sim = self.similarity_f(z.unsqueeze(1), z.unsqueeze(0)) / self.temperature
        sim_i_j = torch.diag(sim, self.batch_size * self.world_size)
        sim_j_i = torch.diag(sim, -self.batch_size * self.world_size)
        # We have 2N samples, but with Distributed training every GPU gets N examples too, resulting in: 2xNxN
        positive_samples = torch.cat((sim_i_j, sim_j_i), dim=0).reshape(N, 1)
        negative_samples = sim[self.mask].reshape(N, -1)
        labels = torch.zeros(N).to(positive_samples.device).long()
        logits = torch.cat((positive_samples, negative_samples), dim=1)
        loss = self.criterion(logits, labels)
        loss /= N
        return loss


def nt_xent_masked_fill(z, temperature):
    # the SupCon / lightly form: the diagonal masked to -inf before a cross_entropy over rows
    z = F.normalize(z, dim=-1)
    sim = z @ z.t() / temperature
    n = z.shape[0] // 2
    sim = sim.masked_fill(torch.eye(2 * n, dtype=torch.bool, device=z.device), float("-inf"))
    targets = torch.cat([torch.arange(n, 2 * n), torch.arange(0, n)]).to(z.device)
    return F.cross_entropy(sim, targets)


# ------------------------------------------------------------------------- facebookresearch/dino
class DINOHead(nn.Module):
    def __init__(self, in_dim, out_dim, use_bn=False, norm_last_layer=True, nlayers=3, hidden_dim=16, bottleneck_dim=8):
        super().__init__()
        nlayers = max(nlayers, 1)
        if nlayers == 1:
            self.mlp = nn.Linear(in_dim, bottleneck_dim)
        else:
            layers = [nn.Linear(in_dim, hidden_dim)]
            if use_bn:
                layers.append(nn.BatchNorm1d(hidden_dim))
            layers.append(nn.GELU())
            for _ in range(nlayers - 2):
                layers.append(nn.Linear(hidden_dim, hidden_dim))
                if use_bn:
                    layers.append(nn.BatchNorm1d(hidden_dim))
                layers.append(nn.GELU())
            layers.append(nn.Linear(hidden_dim, bottleneck_dim))
            self.mlp = nn.Sequential(*layers)
        self.apply(self._init_weights)
        self.last_layer = nn.utils.weight_norm(nn.Linear(bottleneck_dim, out_dim, bias=False))
        self.last_layer.weight_g.data.fill_(1)
        if norm_last_layer:
            self.last_layer.weight_g.requires_grad = False

    def _init_weights(self, m):
        if isinstance(m, nn.Linear):
            nn.init.trunc_normal_(m.weight, std=.02)
            if isinstance(m, nn.Linear) and m.bias is not None:
                nn.init.constant_(m.bias, 0)

    def forward(self, x):
        x = self.mlp(x)
        x = nn.functional.normalize(x, dim=-1, p=2)
        x = self.last_layer(x)
        return x


class MultiCropWrapper(nn.Module):
    def __init__(self, backbone, head):
        super(MultiCropWrapper, self).__init__()
        # disable layers dedicated to ImageNet labels classification
        backbone.fc, backbone.head = nn.Identity(), nn.Identity()
        self.backbone = backbone
        self.head = head

    def forward(self, x):
        # convert to list
        if not isinstance(x, list):
            x = [x]
        idx_crops = torch.cumsum(torch.unique_consecutive(
            torch.tensor([inp.shape[-1] for inp in x]),
            return_counts=True,
        )[1], 0)
        start_idx, output = 0, torch.empty(0).to(x[0].device)
        for end_idx in idx_crops:
            _out = self.backbone(torch.cat(x[start_idx: end_idx]))
            # The output is a tuple with XCiT model. See:
            # https://github.com/facebookresearch/xcit/blob/master/xcit.py#L404-L405
            if isinstance(_out, tuple):
                _out = _out[0]
            # accumulate outputs
            output = torch.cat((output, _out))
            start_idx = end_idx
        # Run the head forward on the concatenated features.
        return self.head(output)


class DINOLoss(nn.Module):
    def __init__(self, out_dim, ncrops, warmup_teacher_temp, teacher_temp,
                 warmup_teacher_temp_epochs, nepochs, student_temp=0.1, center_momentum=0.9):
        super().__init__()
        self.student_temp = student_temp
        self.center_momentum = center_momentum
        self.ncrops = ncrops
        self.register_buffer("center", torch.zeros(1, out_dim))
        # we apply a warm up for the teacher temperature because
        # a too high temperature makes the training instable at the beginning
        self.teacher_temp_schedule = np.concatenate((
            np.linspace(warmup_teacher_temp, teacher_temp, warmup_teacher_temp_epochs),
            np.ones(nepochs - warmup_teacher_temp_epochs) * teacher_temp
        ))

    def forward(self, student_output, teacher_output, epoch):
        """Cross-entropy between softmax outputs of the teacher and student networks."""
        student_out = student_output / self.student_temp
        student_out = student_out.chunk(self.ncrops)

        # teacher centering and sharpening
        temp = self.teacher_temp_schedule[epoch]
        teacher_out = F.softmax((teacher_output - self.center) / temp, dim=-1)
        teacher_out = teacher_out.detach().chunk(2)

        total_loss = 0
        n_loss_terms = 0
        for iq, q in enumerate(teacher_out):
            for v in range(len(student_out)):
                if v == iq:
                    # we skip cases where student and teacher operate on the same view
                    continue
                loss = torch.sum(-q * F.log_softmax(student_out[v], dim=-1), dim=-1)
                total_loss += loss.mean()
                n_loss_terms += 1
        total_loss /= n_loss_terms
        self.update_center(teacher_output)
        return total_loss

    @torch.no_grad()
    def update_center(self, teacher_output):
        """Update center used for teacher output."""
        batch_center = torch.sum(teacher_output, dim=0, keepdim=True)
        if is_dist_avail_and_initialized():
            dist.all_reduce(batch_center)
        batch_center = batch_center / (len(teacher_output) * get_world_size())
        # ema update
        self.center = self.center * self.center_momentum + batch_center * (1 - self.center_momentum)


class LARS(torch.optim.Optimizer):
    """
    Almost copy-paste from https://github.com/facebookresearch/barlowtwins/blob/main/main.py
    """
    def __init__(self, params, lr=0, weight_decay=0, momentum=0.9, eta=0.001,
                 weight_decay_filter=None, lars_adaptation_filter=None):
        defaults = dict(lr=lr, weight_decay=weight_decay, momentum=momentum,
                        eta=eta, weight_decay_filter=weight_decay_filter,
                        lars_adaptation_filter=lars_adaptation_filter)
        super().__init__(params, defaults)

    @torch.no_grad()
    def step(self):
        for g in self.param_groups:
            for p in g['params']:
                dp = p.grad

                if dp is None:
                    continue

                if p.ndim != 1:
                    dp = dp.add(p, alpha=g['weight_decay'])

                if p.ndim != 1:
                    param_norm = torch.norm(p)
                    update_norm = torch.norm(dp)
                    one = torch.ones_like(param_norm)
                    q = torch.where(param_norm > 0.,
                                    torch.where(update_norm > 0,
                                                (g['eta'] * param_norm / update_norm), one), one)
                    dp = dp.mul(q)

                param_state = self.state[p]
                if 'mu' not in param_state:
                    param_state['mu'] = torch.zeros_like(p)
                mu = param_state['mu']
                mu.mul_(g['momentum']).add_(dp)

                p.add_(mu, alpha=-g['lr'])


def cosine_scheduler(base_value, final_value, epochs, niter_per_ep, warmup_epochs=0, start_warmup_value=0):
    warmup_schedule = np.array([])
    warmup_iters = warmup_epochs * niter_per_ep
    if warmup_epochs > 0:
        warmup_schedule = np.linspace(start_warmup_value, base_value, warmup_iters)
    iters = np.arange(epochs * niter_per_ep - warmup_iters)
    schedule = final_value + 0.5 * (base_value - final_value) * (1 + np.cos(np.pi * iters / len(iters)))
    schedule = np.concatenate((warmup_schedule, schedule))
    assert len(schedule) == epochs * niter_per_ep
    return schedule


def get_params_groups(model):
    regularized = []
    not_regularized = []
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        # we do not regularize biases nor Norm parameters
        if name.endswith(".bias") or len(param.shape) == 1:
            not_regularized.append(param)
        else:
            regularized.append(param)
    return [{'params': regularized}, {'params': not_regularized, 'weight_decay': 0.}]


def clip_gradients(model, clip):
    norms = []
    for name, p in model.named_parameters():
        if p.grad is not None:
            param_norm = p.grad.data.norm(2)
            norms.append(param_norm.item())
            clip_coef = clip / (param_norm + 1e-6)
            if clip_coef < 1:
                p.grad.data.mul_(clip_coef)
    return norms


def cancel_gradients_last_layer(epoch, model, freeze_last_layer):
    if epoch >= freeze_last_layer:
        return
    for n, p in model.named_parameters():
        if "last_layer" in n:
            p.grad = None


def augment(rng, images, size):
    """Random crop + horizontal flip + brightness, in NumPy."""
    n, c, h, w = images.shape
    out = np.empty((n, c, size, size), np.float32)
    for i in range(n):
        top, left = rng.integers(0, h - size + 1), rng.integers(0, w - size + 1)
        crop = images[i, :, top:top + size, left:left + size]
        if rng.random() < 0.5:
            crop = crop[:, :, ::-1]
        out[i] = crop * rng.uniform(0.8, 1.2)
    return torch.from_numpy(out)


rng = np.random.default_rng(0)
data = rng.standard_normal((4, 3, 10, 10)).astype(np.float32)
batch_size = 4

# ---- SimCLR (sthalles) with the info_nce_loss and the NT_Xent criterion side by side
torch.manual_seed(0)
simclr = ResNetSimCLR(out_dim=8)
share_init(simclr, "simclr")
optimizer = torch.optim.Adam(simclr.parameters(), 3e-3, weight_decay=1e-4)
scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=4, eta_min=0, last_epoch=-1)
criterion = torch.nn.CrossEntropyLoss()
nt_xent = NT_Xent(batch_size, 0.5)
report("nt_xent mask", nt_xent.mask.int().sum().item(), nt_xent.mask[0].tolist())
for epoch_counter in range(4):
    images = torch.cat([augment(rng, data, 8), augment(rng, data, 8)], dim=0)
    features = simclr(images)
    logits, labels = info_nce_loss(features, batch_size, temperature=0.2)
    loss = criterion(logits, labels)
    z_i, z_j = features[:batch_size], features[batch_size:]
    loss_nt = nt_xent(z_i, z_j)
    loss_mf = nt_xent_masked_fill(features, 0.5)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    top1, top5 = accuracy(logits, labels, topk=(1, 5))
    if epoch_counter >= 1:
        scheduler.step()
    report("simclr", epoch_counter, loss.item(), loss_nt.item(), loss_mf.item(), top1[0].item(), top5.item(),
           scheduler.get_last_lr()[0], tuple(logits.shape))

# ---- the same model under DINO's LARS (barlowtwins' copy), for ResNet backbones
lars = LARS(get_params_groups(simclr), lr=0.3, weight_decay=1e-4)
for step in range(3):
    images = torch.cat([augment(rng, data, 8), augment(rng, data, 8)], dim=0)
    features = simclr(images)
    logits, labels = info_nce_loss(features, batch_size, temperature=0.2)
    loss = criterion(logits, labels)
    lars.zero_grad()
    loss.backward()
    lars.step()
    report("lars", step, loss.item(), lars.state[simclr.backbone.conv1.weight]["mu"].abs().sum().item(),
           sorted(lars.state_dict()["param_groups"][1].keys()))

# ---- DINO: student / teacher with multi-crop
epochs, niter_per_ep, freeze_last_layer, out_dim = 3, 2, 1, 12
torch.manual_seed(0)
student = MultiCropWrapper(Backbone(), DINOHead(16, out_dim, use_bn=False, norm_last_layer=True))
teacher = MultiCropWrapper(Backbone(), DINOHead(16, out_dim, use_bn=False))
share_init(student, "student")
# teacher and student start with the same weights
teacher.load_state_dict(student.state_dict())
# there is no backpropagation through the teacher, so no need for gradients
for p in teacher.parameters():
    p.requires_grad = False
report("dino params", sum(p.numel() for p in student.parameters() if p.requires_grad),
       student.head.last_layer.weight_g.requires_grad, sorted(student.head.last_layer.state_dict().keys()))
dino_loss = DINOLoss(out_dim, ncrops=4, warmup_teacher_temp=0.04, teacher_temp=0.07,
                     warmup_teacher_temp_epochs=2, nepochs=epochs)
params_groups = get_params_groups(student)
optimizer = torch.optim.AdamW(params_groups)  # to use with ViTs
lr_schedule = cosine_scheduler(5e-4 * batch_size / 256., 1e-6, epochs, niter_per_ep, warmup_epochs=1)
wd_schedule = cosine_scheduler(0.04, 0.4, epochs, niter_per_ep)
momentum_schedule = cosine_scheduler(0.996, 1, epochs, niter_per_ep)
report("schedules", lr_schedule.tolist(), wd_schedule[-1], momentum_schedule[1])
for epoch in range(epochs):
    student.train()
    for it_in_epoch in range(niter_per_ep):
        it = niter_per_ep * epoch + it_in_epoch  # global training iteration
        for i, param_group in enumerate(optimizer.param_groups):
            param_group["lr"] = lr_schedule[it]
            if i == 0:  # only the first group is regularized
                param_group["weight_decay"] = wd_schedule[it]
        images = [augment(rng, data, 8), augment(rng, data, 8), augment(rng, data, 4), augment(rng, data, 4)]
        teacher_output = teacher(images[:2])  # only the 2 global views pass through the teacher
        student_output = student(images)
        loss = dino_loss(student_output, teacher_output, epoch)
        if not math.isfinite(loss.item()):
            raise SystemExit("Loss is {}, stopping training".format(loss.item()))
        optimizer.zero_grad()
        loss.backward()
        param_norms = clip_gradients(student, 3.0)
        cancel_gradients_last_layer(epoch, student, freeze_last_layer)
        optimizer.step()
        # EMA update for the teacher
        with torch.no_grad():
            m = momentum_schedule[it]  # momentum parameter
            for param_q, param_k in zip(student.parameters(), teacher.parameters()):
                param_k.data.mul_(m).add_((1 - m) * param_q.detach().data)
        report("dino", it, loss.item(), sum(param_norms), len(param_norms), dino_loss.center.abs().sum().item(),
               student.head.last_layer.weight_v.grad is None, optimizer.param_groups[0]["weight_decay"])

report("idx_crops", torch.cumsum(torch.unique_consecutive(torch.tensor([8, 8, 4, 4, 4]), return_counts=True)[1], 0).tolist())
student.eval()
teacher.eval()
with torch.no_grad():
    s, t = student(augment(rng, data, 8)), teacher(augment(rng, data, 8))
report("final", F.softmax(s / 0.1, dim=-1).max(-1).values.tolist(), t.argmax(-1).tolist(),
       teacher.backbone.bn1.running_mean[:3].tolist())
