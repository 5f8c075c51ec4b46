"""N-BEATS as Element AI's reference code writes it, plus an N-HiTS block as Nixtla writes it:
generic blocks (a fully connected stack whose theta splits into backcast and forecast), trend
blocks with a fixed polynomial basis and seasonality blocks with a cos/sin basis built from
torch.arange (kept as nn.Parameter(requires_grad=False) and as register_buffer), theta applied
by torch.einsum("bp,pt->bt"), one block shared across a stack (nn.ModuleList([block] * n)),
the backcast residual taken on the flipped input with x.flip(dims=(1,)) and an input mask,
sMAPE / MAPE / MASE losses with divide_no_nan (result[result != result] = .0, result[result ==
np.inf] = .0), Adam with a hand-written learning-rate decay through param_groups and gradient
clipping; then N-HiTS' MaxPool1d(ceil_mode=True) input pooling with its knots interpolated by
F.interpolate (linear, nearest and bicubic)."""
import numpy as np
import torch as t
import torch.nn.functional as F
from torch import nn


def divide_no_nan(a, b):
    result = a / b
    result[result != result] = .0
    result[result == np.inf] = .0
    return result


def mape_loss(forecast: t.Tensor, target: t.Tensor, mask: t.Tensor) -> t.float:
    weights = divide_no_nan(mask, target)
    return t.mean(t.abs((forecast - target) * weights))


def smape_2_loss(forecast, target, mask) -> t.float:
    return 200 * t.mean(divide_no_nan(t.abs(forecast - target),
                                      t.abs(forecast.data) + t.abs(target.data)) * mask)


def mase_loss(insample: t.Tensor, freq: int, forecast: t.Tensor, target: t.Tensor, mask: t.Tensor) -> t.float:
    masep = t.mean(t.abs(insample[:, freq:] - insample[:, :-freq]), dim=1)
    masked_masep_inv = divide_no_nan(mask, masep[:, None])
    return t.mean(t.abs(target - forecast) * masked_masep_inv)


class NBeatsBlock(t.nn.Module):
    def __init__(self, input_size, theta_size: int, basis_function: t.nn.Module, layers: int, layer_size: int):
        super().__init__()
        self.layers = t.nn.ModuleList([t.nn.Linear(in_features=input_size, out_features=layer_size)] +
                                      [t.nn.Linear(in_features=layer_size, out_features=layer_size)
                                       for _ in range(layers - 1)])
        self.basis_parameters = t.nn.Linear(in_features=layer_size, out_features=theta_size)
        self.basis_function = basis_function

    def forward(self, x: t.Tensor):
        block_input = x
        for layer in self.layers:
            block_input = t.relu(layer(block_input))
        basis_parameters = self.basis_parameters(block_input)
        return self.basis_function(basis_parameters)


class NBeats(t.nn.Module):
    def __init__(self, blocks: t.nn.ModuleList):
        super().__init__()
        self.blocks = blocks

    def forward(self, x: t.Tensor, input_mask: t.Tensor) -> t.Tensor:
        residuals = x.flip(dims=(1,))
        input_mask = input_mask.flip(dims=(1,))
        forecast = x[:, -1:]
        for i, block in enumerate(self.blocks):
            backcast, block_forecast = block(residuals)
            residuals = (residuals - backcast) * input_mask
            forecast = forecast + block_forecast
        return forecast


class GenericBasis(t.nn.Module):
    def __init__(self, backcast_size: int, forecast_size: int):
        super().__init__()
        self.backcast_size = backcast_size
        self.forecast_size = forecast_size

    def forward(self, theta: t.Tensor):
        return theta[:, :self.backcast_size], theta[:, -self.forecast_size:]


class TrendBasis(t.nn.Module):
    def __init__(self, degree_of_polynomial: int, backcast_size: int, forecast_size: int):
        super().__init__()
        self.polynomial_size = degree_of_polynomial + 1
        self.backcast_time = t.nn.Parameter(
            t.tensor(np.concatenate([np.power(np.arange(backcast_size, dtype=np.float64) / backcast_size, i)[None, :]
                                     for i in range(self.polynomial_size)]), dtype=t.float32),
            requires_grad=False)
        self.forecast_time = t.nn.Parameter(
            t.tensor(np.concatenate([np.power(np.arange(forecast_size, dtype=np.float64) / forecast_size, i)[None, :]
                                     for i in range(self.polynomial_size)]), dtype=t.float32), requires_grad=False)

    def forward(self, theta: t.Tensor):
        backcast = t.einsum('bp,pt->bt', theta[:, self.polynomial_size:], self.backcast_time)
        forecast = t.einsum('bp,pt->bt', theta[:, :self.polynomial_size], self.forecast_time)
        return backcast, forecast


class SeasonalityBasis(t.nn.Module):
    """The cos/sin basis built with torch ops and kept as buffers (not in the optimizer)."""

    def __init__(self, harmonics: int, backcast_size: int, forecast_size: int):
        super().__init__()
        frequency = t.cat([t.zeros(1), t.arange(harmonics, harmonics / 2 * forecast_size, dtype=t.float32) / harmonics])[None, :]
        backcast_grid = -2 * np.pi * (t.arange(backcast_size, dtype=t.float32)[:, None] / forecast_size) * frequency
        forecast_grid = 2 * np.pi * (t.arange(forecast_size, dtype=t.float32)[:, None] / forecast_size) * frequency
        self.register_buffer("backcast_cos_template", t.transpose(t.cos(backcast_grid), 0, 1))
        self.register_buffer("backcast_sin_template", t.transpose(t.sin(backcast_grid), 0, 1))
        self.register_buffer("forecast_cos_template", t.cos(forecast_grid).T.contiguous())
        self.register_buffer("forecast_sin_template", t.sin(forecast_grid).T.contiguous())

    def forward(self, theta: t.Tensor):
        params_per_harmonic = theta.shape[1] // 4
        backcast_harmonics_cos = t.einsum('bp,pt->bt', theta[:, 2 * params_per_harmonic:3 * params_per_harmonic],
                                          self.backcast_cos_template)
        backcast_harmonics_sin = t.einsum('bp,pt->bt', theta[:, 3 * params_per_harmonic:], self.backcast_sin_template)
        backcast = backcast_harmonics_sin + backcast_harmonics_cos
        forecast_harmonics_cos = t.einsum('bp,pt->bt', theta[:, :params_per_harmonic], self.forecast_cos_template)
        forecast_harmonics_sin = t.einsum('bp,pt->bt', theta[:, params_per_harmonic:2 * params_per_harmonic],
                                          self.forecast_sin_template)
        forecast = forecast_harmonics_sin + forecast_harmonics_cos
        return backcast, forecast


def interpretable(input_size, output_size, trend_blocks, trend_layers, trend_layer_size, degree_of_polynomial,
                  seasonality_blocks, seasonality_layers, seasonality_layer_size, num_of_harmonics):
    trend_block = NBeatsBlock(input_size=input_size,
                              theta_size=2 * (degree_of_polynomial + 1),
                              basis_function=TrendBasis(degree_of_polynomial=degree_of_polynomial,
                                                        backcast_size=input_size, forecast_size=output_size),
                              layers=trend_layers, layer_size=trend_layer_size)
    seasonality_block = NBeatsBlock(input_size=input_size,
                                    theta_size=4 * int(np.ceil(num_of_harmonics / 2 * output_size) - (num_of_harmonics - 1)),
                                    basis_function=SeasonalityBasis(harmonics=num_of_harmonics,
                                                                    backcast_size=input_size, forecast_size=output_size),
                                    layers=seasonality_layers, layer_size=seasonality_layer_size)
    return NBeats(t.nn.ModuleList([trend_block for _ in range(trend_blocks)] +
                                  [seasonality_block for _ in range(seasonality_blocks)]))


def generic(input_size: int, output_size: int, stacks: int, layers: int, layer_size: int):
    return NBeats(t.nn.ModuleList([NBeatsBlock(input_size=input_size, theta_size=input_size + output_size,
                                               basis_function=GenericBasis(backcast_size=input_size, forecast_size=output_size),
                                               layers=layers, layer_size=layer_size) for _ in range(stacks)]))


def make_series(rng, n, length):
    tt = np.arange(length)
    base = rng.uniform(5, 10, (n, 1)) + rng.uniform(-0.05, 0.1, (n, 1)) * tt
    season = rng.uniform(0.5, 2, (n, 1)) * np.sin(2 * np.pi * tt / 6 + rng.uniform(0, 6, (n, 1)))
    y = base + season + 0.1 * rng.standard_normal((n, length))
    y[:3, :4] = 0.0  # padding at the start of short series: masked out
    return y.astype(np.float32)


rng = np.random.default_rng(3)
horizon, lookback = 6, 18
series = make_series(rng, 12, lookback + horizon)
x = t.tensor(series[:, :lookback])
y = t.tensor(series[:, lookback:])
x_mask = (x != 0).float()
y_mask = t.ones_like(y)

for name, model in [("generic", generic(lookback, horizon, stacks=3, layers=2, layer_size=16)),
                    ("interpretable", interpretable(lookback, horizon, trend_blocks=2, trend_layers=2, trend_layer_size=16,
                                                    degree_of_polynomial=2, seasonality_blocks=2, seasonality_layers=2,
                                                    seasonality_layer_size=16, num_of_harmonics=1))]:
    t.manual_seed(0)
    share_init(model, name)
    report(name, "params", sum(p.numel() for p in model.parameters()), sum(p.numel() for p in model.parameters() if p.requires_grad),
           len(model.state_dict()), len(list(model.buffers())))
    optimizer = t.optim.Adam(model.parameters(), lr=1e-3)
    learning_rate, lr_decay_step, iterations = 1e-3, 2, 6
    for i in range(iterations):
        model.train()
        optimizer.zero_grad()
        forecast = model(x, x_mask)
        loss_smape = smape_2_loss(forecast, y, y_mask)
        loss_mase = mase_loss(x, 6, forecast, y, y_mask)
        loss = loss_mase if name == "generic" else loss_smape
        if np.isnan(float(loss)):
            break
        loss.backward()
        t.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        for param_group in optimizer.param_groups:
            param_group["lr"] = learning_rate * 0.5 ** (i // lr_decay_step)
        report(name, i, loss_smape.item(), loss_mase.item(), mape_loss(forecast, y, y_mask).item(),
               optimizer.param_groups[0]["lr"])
    model.eval()
    with t.no_grad():
        report(name, "forecast", model(x[:2], x_mask[:2]).numpy().tolist())

# the interpretable decomposition: a trend block's basis output and a seasonality block's
basis = model.blocks[0].basis_function
theta = t.tensor(rng.standard_normal((2, 6)), dtype=t.float32)
b, f = basis(theta)
report("trend basis", b.numpy().tolist(), f.numpy().tolist(), basis.backcast_time.requires_grad)
sb = model.blocks[-1].basis_function
report("season templates", list(sb.forecast_cos_template.shape), sb.backcast_sin_template.numpy()[1].tolist())
report("shared", model.blocks[0] is model.blocks[1], len(list(model.parameters())))

# divide_no_nan on zeros and infinities
num = t.tensor([1.0, 0.0, 2.0, -1.0])
den = t.tensor([0.0, 0.0, 4.0, 0.0])
report("divide_no_nan", divide_no_nan(num, den).tolist())


class NHITSBlock(nn.Module):
    def __init__(self, input_size, h, n_theta, mlp_units, n_pool_kernel_size, pooling_mode, interpolation_mode):
        super().__init__()
        pooled_hist_size = int(np.ceil(input_size / n_pool_kernel_size))
        self.h = h
        self.input_size = input_size
        self.interpolation_mode = interpolation_mode
        if pooling_mode == "MaxPool1d":
            self.pooling_layer = nn.MaxPool1d(kernel_size=n_pool_kernel_size, stride=n_pool_kernel_size, ceil_mode=True)
        else:
            self.pooling_layer = nn.AvgPool1d(kernel_size=n_pool_kernel_size, stride=n_pool_kernel_size, ceil_mode=True)
        hidden_layers = [nn.Linear(in_features=pooled_hist_size, out_features=mlp_units[0][0])]
        for layer in mlp_units:
            hidden_layers.append(nn.Linear(in_features=layer[0], out_features=layer[1]))
            hidden_layers.append(nn.ReLU())
        self.layers = nn.Sequential(*hidden_layers)
        self.output = nn.Linear(mlp_units[-1][1], input_size + n_theta)
        self.n_theta = n_theta

    def forward(self, insample_y):
        insample_y = insample_y.unsqueeze(1)
        insample_y = self.pooling_layer(insample_y)
        insample_y = insample_y.squeeze(1)
        theta = self.output(self.layers(insample_y))
        backcast = theta[:, :self.input_size]
        knots = theta[:, self.input_size:]
        knots = knots.reshape(len(knots), 1, -1)
        if self.interpolation_mode in ["nearest", "linear"]:
            forecast = F.interpolate(knots, size=self.h, mode=self.interpolation_mode)
        else:
            knots = knots[:, :, None, :]
            forecast = F.interpolate(knots, size=(1, self.h), mode="bicubic")
            forecast = forecast[:, 0, 0, :]
            forecast = forecast[:, None, :]
        return backcast, forecast.squeeze(1)


for k, (pool, mode) in enumerate([("MaxPool1d", "linear"), ("AvgPool1d", "nearest"), ("MaxPool1d", "cubic")]):
    t.manual_seed(k)
    block = NHITSBlock(lookback, horizon, n_theta=4, mlp_units=[[8, 8], [8, 8]], n_pool_kernel_size=4,
                       pooling_mode=pool, interpolation_mode=mode)
    share_init(block, f"nhits{k}")
    backcast, forecast = block(x)
    loss = F.l1_loss(forecast, y) + F.mse_loss(backcast, x)
    loss.backward()
    report("nhits", mode, loss.item(), forecast[0].tolist(), block.output.weight.grad.abs().sum().item())
