"""The PyTorch examples' time_sequence_prediction, shrunk: sine waves written with torch.save as a
NumPy array (generate_sine_wave.py) and read back with torch.load(weights_only=False), a
Sequence module of two nn.LSTMCell and a Linear stepping over input.split(1, dim=1) with
double-precision zero states, .double() on the module, MSELoss, optim.LBFGS driven by a closure
that prints the loss on every evaluation, and test predictions that run `future` steps past
the input under torch.no_grad()."""
from __future__ import print_function
import argparse
import os
import numpy as np
import torch
import torch.nn as nn
import torch.optim as optim

# generate_sine_wave.py
np.random.seed(2)
T = 20
L = 24
N = 7
x = np.empty((N, L), 'int64')
x[:] = np.array(range(L)) + np.random.randint(-4 * T, 4 * T, N).reshape(N, 1)
data = np.sin(x / 1.0 / T).astype('float64')
torch.save(data, open(os.path.join(TMP, 'traindata.pt'), 'wb'))

HIDDEN = 10


class Sequence(nn.Module):
    def __init__(self):
        super(Sequence, self).__init__()
        self.lstm1 = nn.LSTMCell(1, HIDDEN)
        self.lstm2 = nn.LSTMCell(HIDDEN, HIDDEN)
        self.linear = nn.Linear(HIDDEN, 1)

    def forward(self, input, future=0):
        outputs = []
        h_t = torch.zeros(input.size(0), HIDDEN, dtype=torch.double)
        c_t = torch.zeros(input.size(0), HIDDEN, dtype=torch.double)
        h_t2 = torch.zeros(input.size(0), HIDDEN, dtype=torch.double)
        c_t2 = torch.zeros(input.size(0), HIDDEN, dtype=torch.double)

        for input_t in input.split(1, dim=1):
            h_t, c_t = self.lstm1(input_t, (h_t, c_t))
            h_t2, c_t2 = self.lstm2(h_t, (h_t2, c_t2))
            output = self.linear(h_t2)
            outputs += [output]
        for i in range(future):  # if we should predict the future
            h_t, c_t = self.lstm1(output, (h_t, c_t))
            h_t2, c_t2 = self.lstm2(h_t, (h_t2, c_t2))
            output = self.linear(h_t2)
            outputs += [output]
        outputs = torch.cat(outputs, dim=1)
        return outputs


parser = argparse.ArgumentParser()
parser.add_argument('--steps', type=int, default=2, help='steps to run')
opt = parser.parse_args([])
# set random seed to 0
np.random.seed(0)
torch.manual_seed(0)
# load data and make training set
data = torch.load(os.path.join(TMP, 'traindata.pt'), weights_only=False)
input = torch.from_numpy(data[3:, :-1])
target = torch.from_numpy(data[3:, 1:])
test_input = torch.from_numpy(data[:3, :-1])
test_target = torch.from_numpy(data[:3, 1:])
report("data", type(data).__name__, data.dtype.name, input.dtype == torch.float64, list(input.shape))
# build the model
seq = Sequence()
seq.double()
share_init(seq)
criterion = nn.MSELoss()
# use LBFGS as optimizer since we can load the whole data to train
optimizer = optim.LBFGS(seq.parameters(), lr=0.8, max_iter=6)
# begin to train
for i in range(opt.steps):
    print('STEP: ', i)

    def closure():
        optimizer.zero_grad()
        out = seq(input)
        loss = criterion(out, target)
        print('loss:', loss.item())
        report('loss:', loss.item())
        loss.backward()
        return loss
    optimizer.step(closure)
    # begin to predict, no need to track gradient here
    with torch.no_grad():
        future = 5
        pred = seq(test_input, future=future)
        loss = criterion(pred[:, :-future], test_target)
        print('test loss:', loss.item())
        report('test loss:', loss.item())
        y = pred.detach().numpy()
    report("future", y.dtype.name, y.shape, y[:, -future:].round(6).tolist())
state = optimizer.state_dict()['state'][0]
report("lbfgs state", state['func_evals'], state['n_iter'], len(state['old_dirs']))
