"""MobileNetV2 / V3 and EfficientNet blocks, small, written the way torchvision's models
(mobilenetv2.py, mobilenetv3.py, efficientnet.py), torchvision.ops (Conv2dNormActivation,
SqueezeExcitation, StochasticDepth) and references/classification/train.py + utils.py write them:
_make_divisible, depthwise-separable inverted residuals with ReLU6(inplace=True) / Hardswish /
SiLU, squeeze-excitation (adaptive_avg_pool2d, 1x1 convs, sigmoid or hardsigmoid gating),
BatchNorm2d through partial(eps=0.001, momentum=0.01), kaiming_normal_(mode="fan_out") and
uniform_ Linear init, stochastic depth in "row" mode (kept in eval), Dropout before the
classifier; training with label-smoothing cross entropy, set_weight_decay (norm layers
excluded), SGD with nesterov momentum under OneCycleLR, then SequentialLR (LinearLR warmup +
CosineAnnealingLR), clip_grad_norm_, and the reference's ExponentialMovingAverage (an
AveragedModel with a custom avg_fn and use_buffers=True)."""
import math
from functools import partial

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor


def _make_divisible(v, divisor, min_value=None):
    if min_value is None:
        min_value = divisor
    new_v = max(min_value, int(v + divisor / 2) // divisor * divisor)
    # Make sure that round down does not go down by more than 10%.
    if new_v < 0.9 * v:
        new_v += divisor
    return new_v


class Conv2dNormActivation(torch.nn.Sequential):
    def __init__(self, in_channels, out_channels, kernel_size=3, stride=1, padding=None, groups=1,
                 norm_layer=torch.nn.BatchNorm2d, activation_layer=torch.nn.ReLU, dilation=1, inplace=True, bias=None):
        if padding is None:
            padding = (kernel_size - 1) // 2 * dilation
        if bias is None:
            bias = norm_layer is None
        layers = [torch.nn.Conv2d(in_channels, out_channels, kernel_size, stride, padding, dilation=dilation,
                                  groups=groups, bias=bias)]
        if norm_layer is not None:
            layers.append(norm_layer(out_channels))
        if activation_layer is not None:
            params = {} if inplace is None else {"inplace": inplace}
            layers.append(activation_layer(**params))
        super().__init__(*layers)
        self.out_channels = out_channels


class SqueezeExcitation(torch.nn.Module):
    def __init__(self, input_channels, squeeze_channels, activation=torch.nn.ReLU, scale_activation=torch.nn.Sigmoid):
        super().__init__()
        self.avgpool = torch.nn.AdaptiveAvgPool2d(1)
        self.fc1 = torch.nn.Conv2d(input_channels, squeeze_channels, 1)
        self.fc2 = torch.nn.Conv2d(squeeze_channels, input_channels, 1)
        self.activation = activation()
        self.scale_activation = scale_activation()

    def _scale(self, input: Tensor) -> Tensor:
        scale = self.avgpool(input)
        scale = self.fc1(scale)
        scale = self.activation(scale)
        scale = self.fc2(scale)
        return self.scale_activation(scale)

    def forward(self, input: Tensor) -> Tensor:
        scale = self._scale(input)
        return scale * input


def stochastic_depth(input: Tensor, p: float, mode: str, training: bool = True) -> Tensor:
    if p < 0.0 or p > 1.0:
        raise ValueError(f"drop probability has to be between 0 and 1, but got {p}")
    if mode not in ["batch", "row"]:
        raise ValueError(f"mode has to be either 'batch' or 'row', but got {mode}")
    if not training or p == 0.0:
        return input
    survival_rate = 1.0 - p
    if mode == "row":
        size = [input.shape[0]] + [1] * (input.ndim - 1)
    else:
        size = [1] * input.ndim
    noise = torch.empty(size, dtype=input.dtype, device=input.device)
    noise = noise.bernoulli_(survival_rate)
    if survival_rate > 0.0:
        noise.div_(survival_rate)
    return input * noise


class StochasticDepth(nn.Module):
    def __init__(self, p: float, mode: str) -> None:
        super().__init__()
        self.p = p
        self.mode = mode

    def forward(self, input: Tensor) -> Tensor:
        return stochastic_depth(input, self.p, self.mode, self.training)

    def __repr__(self) -> str:
        s = f"{self.__class__.__name__}(p={self.p}, mode={self.mode})"
        return s


# ------------------------------------------------------------------------- MobileNetV2
class InvertedResidual(nn.Module):
    def __init__(self, inp, oup, stride, expand_ratio, norm_layer=None):
        super().__init__()
        self.stride = stride
        if stride not in [1, 2]:
            raise ValueError(f"stride should be 1 or 2 instead of {stride}")
        if norm_layer is None:
            norm_layer = nn.BatchNorm2d
        hidden_dim = int(round(inp * expand_ratio))
        self.use_res_connect = self.stride == 1 and inp == oup
        layers = []
        if expand_ratio != 1:
            # pw
            layers.append(Conv2dNormActivation(inp, hidden_dim, kernel_size=1, norm_layer=norm_layer,
                                               activation_layer=nn.ReLU6))
        layers.extend([
            # dw
            Conv2dNormActivation(hidden_dim, hidden_dim, stride=stride, groups=hidden_dim, norm_layer=norm_layer,
                                 activation_layer=nn.ReLU6),
            # pw-linear
            nn.Conv2d(hidden_dim, oup, 1, 1, 0, bias=False),
            norm_layer(oup),
        ])
        self.conv = nn.Sequential(*layers)
        self.out_channels = oup
        self._is_cn = stride > 1

    def forward(self, x):
        if self.use_res_connect:
            return x + self.conv(x)
        else:
            return self.conv(x)


class MobileNetV2(nn.Module):
    def __init__(self, num_classes=5, width_mult=0.25, round_nearest=8, dropout=0.2):
        super().__init__()
        block = InvertedResidual
        norm_layer = nn.BatchNorm2d
        input_channel = 32
        last_channel = 64
        inverted_residual_setting = [
            # t, c, n, s
            [1, 16, 1, 1],
            [6, 24, 2, 2],
            [6, 32, 1, 2],
        ]
        input_channel = _make_divisible(input_channel * width_mult, round_nearest)
        self.last_channel = _make_divisible(last_channel * max(1.0, width_mult), round_nearest)
        features = [Conv2dNormActivation(3, input_channel, stride=2, norm_layer=norm_layer, activation_layer=nn.ReLU6)]
        for t, c, n, s in inverted_residual_setting:
            output_channel = _make_divisible(c * width_mult, round_nearest)
            for i in range(n):
                stride = s if i == 0 else 1
                features.append(block(input_channel, output_channel, stride, expand_ratio=t, norm_layer=norm_layer))
                input_channel = output_channel
        features.append(Conv2dNormActivation(input_channel, self.last_channel, kernel_size=1, norm_layer=norm_layer,
                                             activation_layer=nn.ReLU6))
        self.features = nn.Sequential(*features)
        self.classifier = nn.Sequential(nn.Dropout(p=dropout), nn.Linear(self.last_channel, num_classes))
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, (nn.BatchNorm2d, nn.GroupNorm)):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0, 0.01)
                nn.init.zeros_(m.bias)

    def forward(self, x):
        x = self.features(x)
        # Cannot use "squeeze" as batch-size can be 1
        x = nn.functional.adaptive_avg_pool2d(x, (1, 1))
        x = torch.flatten(x, 1)
        x = self.classifier(x)
        return x


# ------------------------------------------------------------------------- EfficientNet / MobileNetV3
class MBConv(nn.Module):
    def __init__(self, input_channels, out_channels, kernel, stride, expand_ratio, stochastic_depth_prob,
                 norm_layer, se_layer=SqueezeExcitation, activation_layer=nn.SiLU):
        super().__init__()
        self.use_res_connect = stride == 1 and input_channels == out_channels
        layers = []
        expanded_channels = _make_divisible(input_channels * expand_ratio, 8)
        if expanded_channels != input_channels:
            layers.append(Conv2dNormActivation(input_channels, expanded_channels, kernel_size=1, norm_layer=norm_layer,
                                               activation_layer=activation_layer))
        layers.append(Conv2dNormActivation(expanded_channels, expanded_channels, kernel_size=kernel, stride=stride,
                                           groups=expanded_channels, norm_layer=norm_layer,
                                           activation_layer=activation_layer))
        squeeze_channels = max(1, input_channels // 4)
        layers.append(se_layer(expanded_channels, squeeze_channels, activation=partial(nn.SiLU, inplace=True)))
        layers.append(Conv2dNormActivation(expanded_channels, out_channels, kernel_size=1, norm_layer=norm_layer,
                                           activation_layer=None))
        self.block = nn.Sequential(*layers)
        self.stochastic_depth = StochasticDepth(stochastic_depth_prob, "row")
        self.out_channels = out_channels

    def forward(self, input):
        result = self.block(input)
        if self.use_res_connect:
            result = self.stochastic_depth(result)
            result += input
        return result


class V3Block(nn.Module):
    """MobileNetV3's InvertedResidual: Hardswish, SE with hardsigmoid scale."""
    def __init__(self, cin, cexp, cout, kernel, stride, use_se, use_hs, norm_layer):
        super().__init__()
        self.use_res_connect = stride == 1 and cin == cout
        activation_layer = nn.Hardswish if use_hs else nn.ReLU
        layers = []
        if cexp != cin:
            layers.append(Conv2dNormActivation(cin, cexp, kernel_size=1, norm_layer=norm_layer,
                                               activation_layer=activation_layer))
        layers.append(Conv2dNormActivation(cexp, cexp, kernel_size=kernel, stride=stride, groups=cexp,
                                           norm_layer=norm_layer, activation_layer=activation_layer))
        if use_se:
            squeeze_channels = _make_divisible(cexp // 4, 8)
            layers.append(SqueezeExcitation(cexp, squeeze_channels, scale_activation=nn.Hardsigmoid))
        layers.append(Conv2dNormActivation(cexp, cout, kernel_size=1, norm_layer=norm_layer, activation_layer=None))
        self.block = nn.Sequential(*layers)

    def forward(self, input):
        result = self.block(input)
        if self.use_res_connect:
            result += input
        return result


class EfficientNet(nn.Module):
    def __init__(self, num_classes=5, stochastic_depth_prob=0.2, dropout=0.2):
        super().__init__()
        norm_layer = partial(nn.BatchNorm2d, eps=1e-03, momentum=0.01)
        # expand_ratio, kernel, stride, input_channels, out_channels, num_layers
        setting = [(1, 3, 1, 8, 8, 1), (6, 3, 2, 8, 16, 2), (6, 5, 2, 16, 24, 1)]
        layers = [Conv2dNormActivation(3, 8, kernel_size=3, stride=2, norm_layer=norm_layer, activation_layer=nn.SiLU)]
        total_stage_blocks = sum(cnf[-1] for cnf in setting)
        stage_block_id = 0
        for expand_ratio, kernel, stride, cin, cout, num_layers in setting:
            stage = []
            for i in range(num_layers):
                sd_prob = stochastic_depth_prob * float(stage_block_id) / total_stage_blocks
                stage.append(MBConv(cin if i == 0 else cout, cout, kernel, stride if i == 0 else 1, expand_ratio,
                                    sd_prob, norm_layer))
                stage_block_id += 1
            layers.append(nn.Sequential(*stage))
        layers.append(V3Block(24, 48, 24, 3, 1, use_se=True, use_hs=True, norm_layer=norm_layer))
        lastconv_output_channels = 4 * 24
        layers.append(Conv2dNormActivation(24, lastconv_output_channels, kernel_size=1, norm_layer=norm_layer,
                                           activation_layer=nn.Hardswish))
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Sequential(nn.Dropout(p=dropout, inplace=True),
                                        nn.Linear(lastconv_output_channels, num_classes))
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, (nn.BatchNorm2d, nn.GroupNorm)):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                init_range = 1.0 / math.sqrt(m.out_features)
                nn.init.uniform_(m.weight, -init_range, init_range)
                nn.init.zeros_(m.bias)

    def forward(self, x):
        x = self.features(x)
        x = self.avgpool(x)
        x = torch.flatten(x, 1)
        x = self.classifier(x)
        return x


# ------------------------------------------------------------------------- references/classification
class ExponentialMovingAverage(torch.optim.swa_utils.AveragedModel):
    def __init__(self, model, decay, device="cpu"):
        def ema_avg(avg_model_param, model_param, num_averaged):
            return decay * avg_model_param + (1 - decay) * model_param

        super().__init__(model, device, ema_avg, use_buffers=True)


def set_weight_decay(model, weight_decay, norm_weight_decay=None, norm_classes=None):
    if not norm_classes:
        norm_classes = [
            torch.nn.modules.batchnorm._BatchNorm,
            torch.nn.LayerNorm,
            torch.nn.GroupNorm,
            torch.nn.modules.instancenorm._InstanceNorm,
            torch.nn.LocalResponseNorm,
        ]
    norm_classes = tuple(norm_classes)
    params = {"other": [], "norm": []}
    params_weight_decay = {"other": weight_decay, "norm": norm_weight_decay}

    def _add_params(module, prefix=""):
        for name, p in module.named_parameters(recurse=False):
            if not p.requires_grad:
                continue
            if norm_weight_decay is not None and isinstance(module, norm_classes):
                params["norm"].append(p)
            else:
                params["other"].append(p)
        for child_name, child_module in module.named_children():
            child_prefix = f"{prefix}.{child_name}" if prefix != "" else child_name
            _add_params(child_module, prefix=child_prefix)

    _add_params(model)
    param_groups = []
    for key in params:
        if len(params[key]) > 0:
            param_groups.append({"params": params[key], "weight_decay": params_weight_decay[key]})
    return param_groups


def train_one_epoch(model, criterion, optimizer, images, target, model_ema=None, clip_grad_norm=None, tag=""):
    model.train()
    # stochastic depth and dropout draw from each library's own generator: train with them in eval
    for m in model.modules():
        if isinstance(m, (StochasticDepth, nn.Dropout)):
            m.eval()
    output = model(images)
    loss = criterion(output, target)
    optimizer.zero_grad()
    loss.backward()
    norm = None
    if clip_grad_norm is not None:
        norm = nn.utils.clip_grad_norm_(model.parameters(), clip_grad_norm).item()
    optimizer.step()
    if model_ema:
        model_ema.update_parameters(model)
    acc1 = (output.argmax(1) == target).float().mean().item() * 100
    return loss.item(), acc1, norm


rng = np.random.default_rng(0)
images = torch.from_numpy(rng.standard_normal((4, 3, 16, 16)).astype(np.float32))
target = torch.from_numpy(rng.integers(0, 5, 4))
report("make_divisible", [_make_divisible(v, 8) for v in (3, 8.5, 32 * 0.25, 24 * 0.35, 100, 1280 * 0.75)])

# MobileNetV2: SGD nesterov + OneCycleLR, label smoothing
torch.manual_seed(0)
model = MobileNetV2()
share_init(model, "mbv2")
report("mbv2", sum(p.numel() for p in model.parameters()), repr(model.features[1].conv[0]).count("\n"),
       [type(m).__name__ for m in model.features[2].conv[1]])
criterion = nn.CrossEntropyLoss(label_smoothing=0.1)
parameters = set_weight_decay(model, 4e-5, norm_weight_decay=0.0)
report("mbv2 groups", [len(g["params"]) for g in parameters])
optimizer = torch.optim.SGD(parameters, lr=0.05, momentum=0.9, weight_decay=4e-5, nesterov=True)
scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=0.1, total_steps=5, pct_start=0.3,
                                                anneal_strategy="cos", div_factor=25.0, final_div_factor=1e4)
for epoch in range(5):
    loss, acc1, _ = train_one_epoch(model, criterion, optimizer, images, target)
    scheduler.step()
    report("mbv2", epoch, loss, acc1, scheduler.get_last_lr()[0], optimizer.param_groups[0]["momentum"])
model.eval()
with torch.no_grad():
    out = model(images)
bn = model.features[0][1]
report("mbv2 eval", out.softmax(1)[:, 0].tolist(), bn.running_mean[:3].tolist(), bn.running_var[:3].tolist(),
       bn.num_batches_tracked.item())

# EfficientNet: MBConv + SE + stochastic depth, SequentialLR, EMA with buffers
torch.manual_seed(0)
model = EfficientNet()
share_init(model, "effnet")
report("effnet", sum(p.numel() for p in model.parameters()),
       [repr(m) for m in model.modules() if isinstance(m, StochasticDepth)],
       model.features[1][0].block[0][1].momentum, model.features[1][0].block[0][1].eps)
parameters = set_weight_decay(model, 1e-4, norm_weight_decay=0.0)
optimizer = torch.optim.SGD(parameters, lr=0.05, momentum=0.9, weight_decay=1e-4)
warmup = torch.optim.lr_scheduler.LinearLR(optimizer, start_factor=0.1, total_iters=2)
main = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=3, eta_min=0.0)
lr_scheduler = torch.optim.lr_scheduler.SequentialLR(optimizer, schedulers=[warmup, main], milestones=[2])
model_ema = ExponentialMovingAverage(model, decay=1.0 - 0.5)
for epoch in range(5):
    loss, acc1, norm = train_one_epoch(model, criterion, optimizer, images, target, model_ema=model_ema,
                                       clip_grad_norm=2.0)
    lr_scheduler.step()
    report("effnet", epoch, loss, acc1, norm, lr_scheduler.get_last_lr()[0], model_ema.n_averaged.item())
model.eval()
model_ema.eval()
with torch.no_grad():
    out, ema_out = model(images), model_ema(images)
bn = model_ema.module.features[0][1]
report("effnet eval", out.argmax(1).tolist(), ema_out[0].tolist(), bn.running_mean[:3].tolist())
report("ema keys", sorted(model_ema.state_dict().keys())[:3], len(model_ema.state_dict()))

# the gating and activations on their own, and stochastic depth while training
x = torch.linspace(-4, 4, 9)
report("acts", F.hardswish(x).tolist(), F.hardsigmoid(x).tolist(), F.relu6(x * 2).tolist(), nn.Hardswish()(x).tolist())
se = SqueezeExcitation(4, 2, scale_activation=nn.Hardsigmoid)
share_init(se, "se")
y = se(images[:, :3].repeat(1, 2, 1, 1)[:, :4])
report("se", y.sum().item(), se._scale(images[:, :3].repeat(1, 2, 1, 1)[:, :4]).flatten()[:4].tolist())
out = stochastic_depth(torch.ones(300, 2, 2), 0.25, "row", training=True)
report("stochastic_depth", sorted(set(round(v, 4) for v in out.flatten().tolist())),
       bool(((out == 0).all(dim=(1, 2)) | (out == 1 / 0.75).all(dim=(1, 2))).all()))
try:
    stochastic_depth(x, 1.5, "row")
except ValueError as e:
    report("sd error", str(e))
