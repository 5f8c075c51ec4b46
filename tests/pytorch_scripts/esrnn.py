"""ES-RNN (Smyl's M4 winner) as its PyTorch ports write it: per-series Holt-Winters parameters
in nn.Embedding tables (level and seasonality smoothing through sigmoid, initial seasonality
through exp), the level/seasonality recursion as a Python loop over time appending to lists and
torch.stack-ing them (a long autograd graph), log-normalised input windows cut with
Tensor.unfold, a dilated RNN whose dilation is done by padding the time axis with
torch.cat(zeros) and reshaping (the DRNN idiom: _prepare_inputs / _split_outputs), residual
LSTM blocks, a pinball loss with a level-variability penalty, and Adam with an
ExponentialLR; then forecasts de-normalised with the last level and the repeated seasonality."""
import numpy as np
import torch
import torch.nn as nn


class DRNN(nn.Module):
    def __init__(self, n_input, n_hidden, n_layers, dilations, cell_type="LSTM", batch_first=False):
        super(DRNN, self).__init__()
        self.dilations = dilations
        self.cell_type = cell_type
        self.batch_first = batch_first
        layers = []
        if self.cell_type == "GRU":
            cell = nn.GRU
        elif self.cell_type == "RNN":
            cell = nn.RNN
        elif self.cell_type == "LSTM":
            cell = nn.LSTM
        else:
            raise NotImplementedError
        for i in range(n_layers):
            if i == 0:
                c = cell(n_input, n_hidden)
            else:
                c = cell(n_hidden, n_hidden)
            layers.append(c)
        self.cells = nn.Sequential(*layers)

    def forward(self, inputs, hidden=None):
        if self.batch_first:
            inputs = inputs.transpose(0, 1)
        outputs = []
        for i, (cell, dilation) in enumerate(zip(self.cells, self.dilations)):
            if hidden is None:
                inputs, _ = self.drnn_layer(cell, inputs, dilation)
            else:
                inputs, hidden[i] = self.drnn_layer(cell, inputs, dilation, hidden[i])
            outputs.append(inputs[-dilation:])
        if self.batch_first:
            inputs = inputs.transpose(0, 1)
        return inputs, outputs

    def drnn_layer(self, cell, inputs, rate, hidden=None):
        n_steps = len(inputs)
        batch_size = inputs[0].size(0)
        hidden_size = cell.hidden_size
        inputs, dilated_steps = self._pad_inputs(inputs, n_steps, rate)
        dilated_inputs = self._prepare_inputs(inputs, rate)
        if hidden is None:
            dilated_outputs, hidden = self._apply_cell(dilated_inputs, cell, batch_size, rate, hidden_size)
        else:
            hidden = self._prepare_inputs(hidden, rate)
            dilated_outputs, hidden = self._apply_cell(dilated_inputs, cell, batch_size, rate, hidden_size, hidden=hidden)
        splitted_outputs = self._split_outputs(dilated_outputs, rate)
        outputs = self._unpad_outputs(splitted_outputs, n_steps)
        return outputs, hidden

    def _apply_cell(self, dilated_inputs, cell, batch_size, rate, hidden_size, hidden=None):
        if hidden is None:
            if self.cell_type == "LSTM":
                c, m = self.init_hidden(batch_size * rate, hidden_size)
                hidden = (c.unsqueeze(0), m.unsqueeze(0))
            else:
                hidden = self.init_hidden(batch_size * rate, hidden_size).unsqueeze(0)
        dilated_outputs, hidden = cell(dilated_inputs, hidden)
        return dilated_outputs, hidden

    def _unpad_outputs(self, splitted_outputs, n_steps):
        return splitted_outputs[:n_steps]

    def _split_outputs(self, dilated_outputs, rate):
        batchsize = dilated_outputs.size(1) // rate
        blocks = [dilated_outputs[:, i * batchsize: (i + 1) * batchsize, :] for i in range(rate)]
        interleaved = torch.stack((blocks)).transpose(1, 0).contiguous()
        interleaved = interleaved.view(dilated_outputs.size(0) * rate, batchsize, dilated_outputs.size(2))
        return interleaved

    def _pad_inputs(self, inputs, n_steps, rate):
        is_even = (n_steps % rate) == 0
        if not is_even:
            dilated_steps = n_steps // rate + 1
            zeros_ = torch.zeros(dilated_steps * rate - inputs.size(0), inputs.size(1), inputs.size(2))
            inputs = torch.cat((inputs, zeros_))
        else:
            dilated_steps = n_steps // rate
        return inputs, dilated_steps

    def _prepare_inputs(self, inputs, rate):
        dilated_inputs = torch.cat([inputs[j::rate, :, :] for j in range(rate)], 1)
        return dilated_inputs

    def init_hidden(self, batch_size, hidden_dim):
        hidden = torch.zeros(batch_size, hidden_dim)
        if self.cell_type == "LSTM":
            memory = torch.zeros(batch_size, hidden_dim)
            return (hidden, memory)
        else:
            return hidden


class ResidualDRNN(nn.Module):
    def __init__(self, input_size, state_hsize, dilations):
        super(ResidualDRNN, self).__init__()
        layers = []
        for grp_num in range(len(dilations)):
            if grp_num == 0:
                input_size_ = input_size
            else:
                input_size_ = state_hsize
            l = DRNN(input_size_, state_hsize, n_layers=len(dilations[grp_num]), dilations=dilations[grp_num],
                     cell_type="LSTM")
            layers.append(l)
        self.rnn_stack = nn.Sequential(*layers)

    def forward(self, input_data):
        for layer_num in range(len(self.rnn_stack)):
            residual = input_data
            out, _ = self.rnn_stack[layer_num](input_data)
            if layer_num > 0:
                out += residual
            input_data = out
        return out


class ESRNN(nn.Module):
    def __init__(self, num_series, seasonality, input_size, output_size, state_hsize=6,
                 dilations=((1, 2), (2, 4)), level_variability_penalty=80):
        super(ESRNN, self).__init__()
        self.seasonality = seasonality
        self.input_size = input_size
        self.output_size = output_size
        self.level_variability_penalty = level_variability_penalty
        self.init_lev_sms = nn.Embedding(num_series, 1)
        self.init_seas_sms = nn.Embedding(num_series, 1)
        self.init_seasonalities = nn.Embedding(num_series, seasonality)
        nn.init.constant_(self.init_lev_sms.weight, 0.5)
        nn.init.constant_(self.init_seas_sms.weight, 0.5)
        nn.init.constant_(self.init_seasonalities.weight, 0.5)
        self.logistic = nn.Sigmoid()
        self.resid_drnn = ResidualDRNN(input_size + 1, state_hsize, [list(d) for d in dilations])
        self.nl_layer = nn.Linear(state_hsize, state_hsize)
        self.act = nn.Tanh()
        self.scoring = nn.Linear(state_hsize, output_size)

    def forward(self, train, idxs):
        lev_sms = self.logistic(self.init_lev_sms(idxs).squeeze(1))
        seas_sms = self.logistic(self.init_seas_sms(idxs).squeeze(1))
        init_seasonalities = torch.exp(self.init_seasonalities(idxs))
        seasonalities = [init_seasonalities[:, i] for i in range(self.seasonality)]
        seasonalities.append(init_seasonalities[:, 0])
        levs = [train[:, 0] / seasonalities[0]]
        log_diff_of_levels = []
        for i in range(1, train.shape[1]):
            new_lev = lev_sms * (train[:, i] / seasonalities[i]) + (1 - lev_sms) * levs[i - 1]
            levs.append(new_lev)
            log_diff_of_levels.append(torch.log(new_lev / levs[i - 1]))
            seasonalities.append(seas_sms * (train[:, i] / new_lev) + (1 - seas_sms) * seasonalities[i])
        seasonalities_stacked = torch.stack(seasonalities).transpose(1, 0)
        levs_stacked = torch.stack(levs).transpose(1, 0)
        loss_mean_sq_log_diff_level = 0
        if self.level_variability_penalty > 0:
            sq_log_diff = torch.stack([(log_diff_of_levels[i] - log_diff_of_levels[i - 1]) ** 2
                                       for i in range(1, len(log_diff_of_levels))])
            loss_mean_sq_log_diff_level = torch.mean(sq_log_diff)
        if self.output_size > self.seasonality:
            start_seasonality_ext = seasonalities_stacked.shape[1] - self.seasonality
            end_seasonality_ext = start_seasonality_ext + self.output_size - self.seasonality
            seasonalities_stacked = torch.cat((seasonalities_stacked,
                                               seasonalities_stacked[:, start_seasonality_ext:end_seasonality_ext]), dim=1)
        window_input_list, window_output_list = [], []
        for i in range(self.input_size - 1, train.shape[1]):
            input_window_start = i + 1 - self.input_size
            input_window_end = i + 1
            train_deseas_window_input = train[:, input_window_start:input_window_end] / \
                seasonalities_stacked[:, input_window_start:input_window_end]
            train_deseas_norm_window_input = (train_deseas_window_input / levs_stacked[:, i].unsqueeze(1))
            train_deseas_norm_cat_window_input = torch.cat((train_deseas_norm_window_input,
                                                            idxs.float().unsqueeze(1) / 10), dim=1)
            window_input_list.append(train_deseas_norm_cat_window_input)
            output_window_start = i + 1
            output_window_end = i + 1 + self.output_size
            if i < train.shape[1] - self.output_size:
                train_deseas_window_output = train[:, output_window_start:output_window_end] / \
                    seasonalities_stacked[:, output_window_start:output_window_end]
                train_deseas_norm_window_output = (train_deseas_window_output / levs_stacked[:, i].unsqueeze(1))
                window_output_list.append(train_deseas_norm_window_output)
        window_input = torch.cat([i.unsqueeze(0) for i in window_input_list], dim=0)
        window_output = torch.cat([i.unsqueeze(0) for i in window_output_list], dim=0)
        network_pred = self.series_forward(window_input[:-self.output_size])
        network_act = window_output
        hold_out_pred = self.series_forward(window_input[-1:])[-1] * levs_stacked[:, -1].unsqueeze(1) * \
            seasonalities_stacked[:, -self.output_size:]
        return network_pred, network_act, hold_out_pred, loss_mean_sq_log_diff_level

    def series_forward(self, data):
        data = self.resid_drnn(data)
        data = self.nl_layer(data)
        data = self.act(data)
        data = self.scoring(data)
        return data


class PinballLoss(nn.Module):
    def __init__(self, training_tau, output_size):
        super(PinballLoss, self).__init__()
        self.training_tau = training_tau
        self.output_size = output_size

    def forward(self, predictions, actuals):
        cond = torch.zeros_like(predictions)
        loss = torch.sub(actuals, predictions)
        less_than = torch.mul(loss, torch.mul(torch.gt(loss, cond).float(), self.training_tau))
        greater_than = torch.mul(loss, torch.mul(torch.lt(loss, cond).float(), (self.training_tau - 1)))
        final_loss = torch.add(less_than, greater_than)
        return torch.sum(final_loss) / self.output_size


rng = np.random.default_rng(12)
n_series, length, seasonality, input_size, output_size = 4, 30, 4, 4, 6
tt = np.arange(length + output_size)
series = (10 + 2 * np.arange(n_series)[:, None] + 0.1 * tt * (1 + np.arange(n_series)[:, None] % 2)) * \
    (1 + 0.2 * np.sin(2 * np.pi * tt / seasonality)) * np.exp(0.03 * rng.standard_normal((n_series, len(tt))))
train = torch.tensor(series[:, :length], dtype=torch.float32)
val = torch.tensor(series[:, length:], dtype=torch.float32)
idxs = torch.arange(n_series)

windows = train.unfold(1, input_size, 1)
report("unfold", list(windows.shape), windows[1, 3].tolist())

# the dilated RNN's reshapes alone: a padded odd length, interleaved back in order
torch.manual_seed(0)
drnn = DRNN(2, 3, n_layers=2, dilations=[1, 3])
share_init(drnn, "drnn")
seq = torch.tensor(rng.standard_normal((7, 2, 2)), dtype=torch.float32)
out, last = drnn(seq)
report("drnn", list(out.shape), [list(o.shape) for o in last], out[-1].tolist())
report("split", drnn._split_outputs(torch.arange(12.0).view(2, 6, 1), 3).flatten().tolist(),
       drnn._prepare_inputs(torch.arange(12.0).view(6, 2, 1), 3).flatten().tolist())

torch.manual_seed(0)
model = ESRNN(n_series, seasonality, input_size, output_size)
share_init(model, "esrnn")
optimizer = torch.optim.Adam(model.parameters(), lr=5e-3)
scheduler = torch.optim.lr_scheduler.ExponentialLR(optimizer, gamma=0.9)
criterion = PinballLoss(0.49, output_size)
for epoch in range(4):
    model.train()
    optimizer.zero_grad()
    network_pred, network_act, _, loss_mean_sq_log_diff_level = model(train, idxs)
    loss = criterion(network_pred, network_act)
    loss = loss + model.level_variability_penalty * loss_mean_sq_log_diff_level
    loss.backward()
    nn.utils.clip_grad_value_(model.parameters(), 20)
    optimizer.step()
    scheduler.step()
    report("esrnn", epoch, loss.item(), loss_mean_sq_log_diff_level.item(), model.init_lev_sms.weight.grad.flatten().tolist(),
           scheduler.get_last_lr()[0])
model.eval()
with torch.no_grad():
    _, _, hold_out_pred, _ = model(train, idxs)
sMAPE = (200 * (hold_out_pred - val).abs() / (hold_out_pred.abs() + val.abs())).mean()
report("esrnn forecast", hold_out_pred[0].tolist(), sMAPE.item(),
       torch.sigmoid(model.init_seas_sms.weight).flatten().tolist())
