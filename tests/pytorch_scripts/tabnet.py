"""TabNet as dreamquark's pytorch-tabnet writes it, with the tabular preprocessing around it:
sparsemax and entmax-1.5 as torch.autograd.Function classes (torch.sort descending, cumsum, a
support size from a comparison summed and gather, ctx.save_for_backward, masked_fill in the
backward), GhostBatchNorm (x.chunk into virtual batches, BatchNorm1d(momentum=0.02) on each),
GLU blocks with shared and step-dependent Linear layers scaled by torch.sqrt(torch.FloatTensor
([0.5])), attentive transformers with a prior updated by torch.mul(gamma - M, prior), the
sparsity loss torch.mean(torch.sum(torch.mul(M, torch.log(M + eps)), dim=1)), explanations
from the masks, xavier_normal_ with a computed gain, trained in float64 (the table
from NumPy, then torch.set_default_dtype; in float32 the sparse masks' supports flip on rounding, and Adam
turns those flips into whole steps); missing values
(torch.nanmean imputation, torch.nan_to_num, an isnan indicator), piecewise-linear encodings
of numbers from quantile bins (torch.quantile, torch.bucketize, clamp), and the
unsupervised pretraining mask from torch.bernoulli on a fixed probability."""
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.autograd import Function


def _make_ix_like(input, dim=0):
    d = input.size(dim)
    rho = torch.arange(1, d + 1, device=input.device, dtype=input.dtype)
    view = [1] * input.dim()
    view[0] = -1
    return rho.view(view).transpose(0, dim)


class SparsemaxFunction(Function):
    @staticmethod
    def forward(ctx, input, dim=-1):
        ctx.dim = dim
        max_val, _ = input.max(dim=dim, keepdim=True)
        input -= max_val  # same numerical stability trick as for softmax
        tau, supp_size = SparsemaxFunction._threshold_and_support(input, dim=dim)
        output = torch.clamp(input - tau, min=0)
        ctx.save_for_backward(supp_size, output)
        return output

    @staticmethod
    def backward(ctx, grad_output):
        supp_size, output = ctx.saved_tensors
        dim = ctx.dim
        grad_input = grad_output.clone()
        grad_input[output == 0] = 0
        v_hat = grad_input.sum(dim=dim) / supp_size.to(output.dtype).squeeze()
        v_hat = v_hat.unsqueeze(dim)
        grad_input = torch.where(output != 0, grad_input - v_hat, grad_input)
        return grad_input, None

    @staticmethod
    def _threshold_and_support(input, dim=-1):
        input_srt, _ = torch.sort(input, descending=True, dim=dim)
        input_cumsum = input_srt.cumsum(dim) - 1
        rhos = _make_ix_like(input, dim)
        support = rhos * input_srt > input_cumsum
        support_size = support.sum(dim=dim).unsqueeze(dim)
        tau = input_cumsum.gather(dim, support_size - 1)
        tau /= support_size.to(input.dtype)
        return tau, support_size


sparsemax = SparsemaxFunction.apply


class Sparsemax(nn.Module):
    def __init__(self, dim=-1):
        self.dim = dim
        super(Sparsemax, self).__init__()

    def forward(self, input):
        return sparsemax(input, self.dim)


class Entmax15Function(Function):
    @staticmethod
    def forward(ctx, input, dim=-1):
        ctx.dim = dim
        max_val, _ = input.max(dim=dim, keepdim=True)
        input = input - max_val
        input = input / 2
        tau_star, _ = Entmax15Function._threshold_and_support(input, dim)
        output = torch.clamp(input - tau_star, min=0) ** 2
        ctx.save_for_backward(output)
        return output

    @staticmethod
    def backward(ctx, grad_output):
        Y, = ctx.saved_tensors
        gppr = Y.sqrt()
        dX = grad_output * gppr
        q = dX.sum(ctx.dim) / gppr.sum(ctx.dim)
        q = q.unsqueeze(ctx.dim)
        dX -= q * gppr
        return dX, None

    @staticmethod
    def _threshold_and_support(input, dim=-1):
        Xsrt, _ = torch.sort(input, descending=True, dim=dim)
        rho = _make_ix_like(input, dim)
        mean = Xsrt.cumsum(dim) / rho
        mean_sq = (Xsrt ** 2).cumsum(dim) / rho
        ss = rho * (mean_sq - mean ** 2)
        delta = (1 - ss) / rho
        delta_nz = torch.clamp(delta, 0)
        tau = mean - torch.sqrt(delta_nz)
        support_size = (tau <= Xsrt).sum(dim).unsqueeze(dim)
        tau_star = tau.gather(dim, support_size - 1)
        return tau_star, support_size


def initialize_non_glu(module, input_dim, output_dim):
    gain_value = np.sqrt((input_dim + output_dim) / np.sqrt(4 * input_dim))
    torch.nn.init.xavier_normal_(module.weight, gain=gain_value)


def initialize_glu(module, input_dim, output_dim):
    gain_value = np.sqrt((input_dim + output_dim) / np.sqrt(input_dim))
    torch.nn.init.xavier_normal_(module.weight, gain=gain_value)


class GBN(torch.nn.Module):
    def __init__(self, input_dim, virtual_batch_size=128, momentum=0.01):
        super(GBN, self).__init__()
        self.input_dim = input_dim
        self.virtual_batch_size = virtual_batch_size
        self.bn = nn.BatchNorm1d(self.input_dim, momentum=momentum)

    def forward(self, x):
        chunks = x.chunk(int(np.ceil(x.shape[0] / self.virtual_batch_size)), 0)
        res = [self.bn(x_) for x_ in chunks]
        return torch.cat(res, dim=0)


class GLU_Layer(torch.nn.Module):
    def __init__(self, input_dim, output_dim, fc=None, virtual_batch_size=128, momentum=0.02):
        super(GLU_Layer, self).__init__()
        self.output_dim = output_dim
        if fc:
            self.fc = fc
        else:
            self.fc = nn.Linear(input_dim, 2 * output_dim, bias=False)
        initialize_glu(self.fc, input_dim, 2 * output_dim)
        self.bn = GBN(2 * output_dim, virtual_batch_size=virtual_batch_size, momentum=momentum)

    def forward(self, x):
        x = self.fc(x)
        x = self.bn(x)
        out = torch.mul(x[:, : self.output_dim], torch.sigmoid(x[:, self.output_dim:]))
        return out


class GLU_Block(torch.nn.Module):
    def __init__(self, input_dim, output_dim, n_glu=2, first=False, shared_layers=None, virtual_batch_size=128,
                 momentum=0.02):
        super(GLU_Block, self).__init__()
        self.first = first
        self.shared_layers = shared_layers
        self.n_glu = n_glu
        self.glu_layers = torch.nn.ModuleList()
        params = {"virtual_batch_size": virtual_batch_size, "momentum": momentum}
        fc = shared_layers[0] if shared_layers else None
        self.glu_layers.append(GLU_Layer(input_dim, output_dim, fc=fc, **params))
        for glu_id in range(1, self.n_glu):
            fc = shared_layers[glu_id] if shared_layers else None
            self.glu_layers.append(GLU_Layer(output_dim, output_dim, fc=fc, **params))

    def forward(self, x):
        scale = torch.sqrt(torch.FloatTensor([0.5]).to(x.device))
        if self.first:  # the first layer of the block has no scale multiplication
            x = self.glu_layers[0](x)
            layers_left = range(1, self.n_glu)
        else:
            layers_left = range(self.n_glu)
        for glu_id in layers_left:
            x = torch.add(x, self.glu_layers[glu_id](x))
            x = x * scale
        return x


class FeatTransformer(torch.nn.Module):
    def __init__(self, input_dim, output_dim, shared_layers, n_glu_independent, virtual_batch_size=128, momentum=0.02):
        super(FeatTransformer, self).__init__()
        params = {"n_glu": n_glu_independent, "virtual_batch_size": virtual_batch_size, "momentum": momentum}
        if shared_layers is None:
            self.shared = torch.nn.Identity()
            is_first = True
        else:
            self.shared = GLU_Block(input_dim, output_dim, first=True, shared_layers=shared_layers,
                                    n_glu=len(shared_layers), virtual_batch_size=virtual_batch_size, momentum=momentum)
            is_first = False
        if n_glu_independent == 0:
            self.specifics = torch.nn.Identity()
        else:
            spec_input_dim = input_dim if is_first else output_dim
            self.specifics = GLU_Block(spec_input_dim, output_dim, first=is_first, **params)

    def forward(self, x):
        x = self.shared(x)
        x = self.specifics(x)
        return x


class AttentiveTransformer(torch.nn.Module):
    def __init__(self, input_dim, group_dim, group_matrix, virtual_batch_size=128, momentum=0.02, mask_type="sparsemax"):
        super(AttentiveTransformer, self).__init__()
        self.fc = nn.Linear(input_dim, group_dim, bias=False)
        initialize_non_glu(self.fc, input_dim, group_dim)
        self.bn = GBN(group_dim, virtual_batch_size=virtual_batch_size, momentum=momentum)
        if mask_type == "sparsemax":
            self.selector = Sparsemax(dim=-1)
        elif mask_type == "entmax":
            self.selector = lambda x: Entmax15Function.apply(x, -1)
        else:
            raise NotImplementedError("Please choose either sparsemax or entmax as masktype")

    def forward(self, priors, processed_feat):
        x = self.fc(processed_feat)
        x = self.bn(x)
        x = torch.mul(x, priors)
        x = self.selector(x)
        return x


class TabNetEncoder(torch.nn.Module):
    def __init__(self, input_dim, output_dim, n_d=8, n_a=8, n_steps=3, gamma=1.3, n_independent=2, n_shared=2,
                 epsilon=1e-15, virtual_batch_size=128, momentum=0.02, mask_type="sparsemax", group_attention_matrix=None):
        super(TabNetEncoder, self).__init__()
        self.input_dim = input_dim
        self.output_dim = output_dim
        self.n_d = n_d
        self.n_a = n_a
        self.n_steps = n_steps
        self.gamma = gamma
        self.epsilon = epsilon
        self.virtual_batch_size = virtual_batch_size
        self.initial_bn = nn.BatchNorm1d(self.input_dim, momentum=0.01)
        if group_attention_matrix is None:
            self.group_attention_matrix = torch.eye(self.input_dim)
            self.attention_dim = self.input_dim
        else:
            self.group_attention_matrix = group_attention_matrix
            self.attention_dim = self.group_attention_matrix.shape[0]
        if n_shared > 0:
            shared_feat_transform = torch.nn.ModuleList()
            for i in range(n_shared):
                if i == 0:
                    shared_feat_transform.append(nn.Linear(self.input_dim, 2 * (n_d + n_a), bias=False))
                else:
                    shared_feat_transform.append(nn.Linear(n_d + n_a, 2 * (n_d + n_a), bias=False))
        else:
            shared_feat_transform = None
        self.initial_splitter = FeatTransformer(self.input_dim, n_d + n_a, shared_feat_transform,
                                                n_glu_independent=n_independent, virtual_batch_size=virtual_batch_size,
                                                momentum=momentum)
        self.feat_transformers = torch.nn.ModuleList()
        self.att_transformers = torch.nn.ModuleList()
        for step in range(n_steps):
            transformer = FeatTransformer(self.input_dim, n_d + n_a, shared_feat_transform,
                                          n_glu_independent=n_independent, virtual_batch_size=virtual_batch_size,
                                          momentum=momentum)
            attention = AttentiveTransformer(n_a, self.attention_dim, group_matrix=group_attention_matrix,
                                             virtual_batch_size=virtual_batch_size, momentum=momentum, mask_type=mask_type)
            self.feat_transformers.append(transformer)
            self.att_transformers.append(attention)

    def forward(self, x, prior=None):
        x = self.initial_bn(x)
        bs = x.shape[0]
        if prior is None:
            prior = torch.ones((bs, self.attention_dim)).to(x.device)
        M_loss = 0
        att = self.initial_splitter(x)[:, self.n_d:]
        steps_output = []
        for step in range(self.n_steps):
            M = self.att_transformers[step](prior, att)
            M_loss += torch.mean(torch.sum(torch.mul(M, torch.log(M + self.epsilon)), dim=1))
            prior = torch.mul(self.gamma - M, prior)
            M_feature_level = torch.matmul(M, self.group_attention_matrix)
            masked_x = torch.mul(M_feature_level, x)
            out = self.feat_transformers[step](masked_x)
            d = F.relu(out[:, : self.n_d])
            steps_output.append(d)
            att = out[:, self.n_d:]
        M_loss /= self.n_steps
        return steps_output, M_loss

    def forward_masks(self, x):
        x = self.initial_bn(x)
        bs = x.shape[0]
        prior = torch.ones((bs, self.attention_dim)).to(x.device)
        M_explain = torch.zeros(x.shape).to(x.device)
        att = self.initial_splitter(x)[:, self.n_d:]
        masks = {}
        for step in range(self.n_steps):
            M = self.att_transformers[step](prior, att)
            M_feature_level = torch.matmul(M, self.group_attention_matrix)
            masks[step] = M_feature_level
            prior = torch.mul(self.gamma - M, prior)
            masked_x = torch.mul(M_feature_level, x)
            out = self.feat_transformers[step](masked_x)
            d = F.relu(out[:, : self.n_d])
            step_importance = torch.sum(d, axis=1)
            M_explain += torch.mul(M_feature_level, step_importance.unsqueeze(dim=1))
            att = out[:, self.n_d:]
        return M_explain, masks


class TabNet(torch.nn.Module):
    def __init__(self, input_dim, output_dim, n_d=8, n_a=8, n_steps=3, mask_type="sparsemax", virtual_batch_size=16):
        super().__init__()
        self.encoder = TabNetEncoder(input_dim, output_dim, n_d=n_d, n_a=n_a, n_steps=n_steps, mask_type=mask_type,
                                     virtual_batch_size=virtual_batch_size)
        self.final_mapping = nn.Linear(n_d, output_dim, bias=False)
        initialize_non_glu(self.final_mapping, n_d, output_dim)

    def forward(self, x):
        steps_output, M_loss = self.encoder(x)
        res = torch.sum(torch.stack(steps_output, dim=0), dim=0)
        return self.final_mapping(res), M_loss


# ---- the preprocessing: missing values, quantile bins, piecewise-linear encodings
rng = np.random.default_rng(17)
n, d = 40, 5
raw = rng.standard_normal((n, d))  # float64: the table, the preprocessing and the model
raw[:, 3] = np.exp(raw[:, 3])
y = ((raw[:, 0] + 0.5 * raw[:, 1] * raw[:, 2] - 0.3 * raw[:, 3]) > 0).astype(np.int64)
raw[rng.random((n, d)) < 0.1] = np.nan
X = torch.from_numpy(raw)
missing = torch.isnan(X)
col_means = torch.nanmean(X, dim=0)
X_imp = torch.where(missing, col_means.expand_as(X), X)
report("impute", col_means.tolist(), missing.sum(0).tolist(), torch.nan_to_num(X, nan=-1.0)[:2].tolist(),
       torch.nansum(X, 0).tolist(), torch.nanmedian(X[:, 0]).item())
inf_x = torch.tensor([float("nan"), float("inf"), -float("inf"), 1.5])  # float32: its own max for inf
report("nan_to_num", torch.nan_to_num(inf_x).tolist(), torch.nan_to_num(inf_x, nan=0.0, posinf=9.0, neginf=-9.0).tolist())

bins = torch.quantile(X_imp[:, 3], torch.linspace(0, 1, 5, dtype=X_imp.dtype))
bins_mid = torch.quantile(X_imp[:, 3], torch.tensor([0.25, 0.5, 0.75], dtype=torch.float64), interpolation="midpoint")
try:
    torch.quantile(X_imp[:, 3], torch.tensor([0.5]))
except RuntimeError as e:
    report("quantile q dtype", "RuntimeError", "same dtype" in str(e))
bins_low = torch.quantile(X_imp[:, 3], 0.3, interpolation="lower")
idx = torch.bucketize(X_imp[:, 3], bins[1:-1])
idx_r = torch.bucketize(bins, bins, right=True)
ss = torch.searchsorted(bins, torch.tensor([0.0, 1.0, 100.0]), side="left")
report("bins", bins.tolist(), bins_mid.tolist(), bins_low.item(), torch.bincount(idx, minlength=4).tolist(), idx_r.tolist(),
       ss.tolist())
lo, hi = bins[:-1], bins[1:]
ple = ((X_imp[:, 3:4] - lo) / (hi - lo)).clamp(0, 1)
ple = torch.where(torch.arange(4) == idx[:, None], ple, (X_imp[:, 3:4] >= hi).float())
report("ple", ple[:3].tolist(), ple.sum(1)[:5].tolist())
features = torch.cat([X_imp, missing.float()], dim=1)
features = (features - features.mean(0)) / (features.std(0) + 1e-6)
target = torch.from_numpy(y)

torch.set_default_dtype(torch.float64)
for mask_type in ["sparsemax", "entmax"]:
    torch.manual_seed(0)
    model = TabNet(features.shape[1], 2, n_d=8, n_a=8, n_steps=3, mask_type=mask_type, virtual_batch_size=16)
    share_init(model, f"tabnet_{mask_type}")
    opt = torch.optim.Adam(model.parameters(), lr=2e-2)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=2, gamma=0.9)
    lambda_sparse = 1e-3
    for epoch in range(4):
        model.train()
        out, M_loss = model(features)
        loss = F.cross_entropy(out, target) - lambda_sparse * M_loss
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        report(mask_type, epoch, loss.item(), M_loss.item(), model.encoder.initial_bn.running_mean[:3].tolist())
    model.eval()
    with torch.no_grad():
        explain, masks = model.encoder.forward_masks(features[:6])
        logits, _ = model(features)
    report(mask_type, "masks", masks[0].tolist(), explain.sum(1).tolist(),
           (masks[0] == 0).float().mean().item(), masks[1].sum(1).tolist())
    report(mask_type, "acc", (logits.argmax(1) == target).float().mean().item())
    importance = explain.sum(0) / explain.sum()
    report(mask_type, "importance", importance.tolist())

torch.set_default_dtype(torch.float32)
report("dtypes", features.dtype == torch.float64, model.final_mapping.weight.dtype == torch.float64,
       torch.get_default_dtype() == torch.float32)

# sparsemax itself: projection onto the simplex, exact zeros, its gradient
z = torch.tensor([[1.0, 0.8, -0.5, 0.1], [0.0, 0.0, 0.0, 0.0], [3.0, -1.0, 2.5, 2.9]], requires_grad=True)
p = sparsemax(z.clone(), -1)
(p * torch.tensor([1.0, -2.0, 0.5, 3.0])).sum().backward()
report("sparsemax", p.tolist(), p.sum(1).tolist(), z.grad.tolist())
z2 = z.detach().clone().requires_grad_(True)
e = Entmax15Function.apply(z2, -1)
(e * torch.tensor([1.0, -2.0, 0.5, 3.0])).sum().backward()
report("entmax", e.tolist(), z2.grad.tolist())
report("gradcheck", torch.autograd.gradcheck(lambda t: Entmax15Function.apply(t, -1),
                                             (torch.tensor([[0.3, -0.2, 0.9], [1.1, 0.4, 0.2]], dtype=torch.float64,
                                                           requires_grad=True),)))

# pretraining: a fixed-probability bernoulli mask (random draws differ: statistics only)
torch.manual_seed(0)
obf = torch.bernoulli(0.2 * torch.ones(2000, 5))
report("bernoulli", obf.dtype == torch.float32, bool(((obf == 0) | (obf == 1)).all()), abs(obf.mean().item() - 0.2) < 0.03)
