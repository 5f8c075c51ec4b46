"""Physics-informed and ODE networks as their PyTorch ports write them. Raissi's Burgers PINN
(PhysicsInformedNN with a DNN built from an OrderedDict of Linear/Tanh layers): collocation
points from torch.linspace and torch.meshgrid(indexing='ij'), inputs with requires_grad=True,
u_t, u_x and u_xx from torch.autograd.grad(u, x, grad_outputs=torch.ones_like(u),
retain_graph=True, create_graph=True)[0], the residual f = u_t + u u_x - (0.01/pi) u_xx, an
Adam warm-up and then LBFGS(line_search_fn="strong_wolfe") with a closure; then torchdiffeq's
ode_demo without torchdiffeq: a fixed-step RK4 integrator in Python over torch.linspace times,
the true spiral dy/dt = y**3 @ A, an ODEFunc MLP with normal_(std=0.1) init, get_batch from a
seeded NumPy choice, RMSprop, and the integrated trajectory compared with the truth."""
from collections import OrderedDict

import numpy as np
import torch
import torch.nn as nn
import torch.optim as optim

torch.manual_seed(1234)
np.random.seed(1234)
device = torch.device('cpu')


# the deep neural network
class DNN(torch.nn.Module):
    def __init__(self, layers):
        super(DNN, self).__init__()

        # parameters
        self.depth = len(layers) - 1

        # set up layer order dict
        self.activation = torch.nn.Tanh

        layer_list = list()
        for i in range(self.depth - 1):
            layer_list.append(
                ('layer_%d' % i, torch.nn.Linear(layers[i], layers[i+1]))
            )
            layer_list.append(('activation_%d' % i, self.activation()))

        layer_list.append(
            ('layer_%d' % (self.depth - 1), torch.nn.Linear(layers[-2], layers[-1]))
        )
        layerDict = OrderedDict(layer_list)

        # deploy layers
        self.layers = torch.nn.Sequential(layerDict)

    def forward(self, x):
        out = self.layers(x)
        return out


# the physics-guided neural network
class PhysicsInformedNN():
    def __init__(self, X_u, u, X_f, layers, lb, ub, nu):

        # boundary conditions
        self.lb = torch.tensor(lb).float().to(device)
        self.ub = torch.tensor(ub).float().to(device)

        # data
        self.x_u = torch.tensor(X_u[:, 0:1], requires_grad=True).float().to(device)
        self.t_u = torch.tensor(X_u[:, 1:2], requires_grad=True).float().to(device)
        self.x_f = torch.tensor(X_f[:, 0:1], requires_grad=True).float().to(device)
        self.t_f = torch.tensor(X_f[:, 1:2], requires_grad=True).float().to(device)
        self.u = torch.tensor(u).float().to(device)

        self.layers = layers
        self.nu = nu

        # deep neural networks
        self.dnn = DNN(layers).to(device)
        share_init(self.dnn, "pinn")

        # optimizers: using the same settings
        self.optimizer = torch.optim.LBFGS(
            self.dnn.parameters(),
            lr=1.0,
            max_iter=6,
            max_eval=10,
            history_size=50,
            tolerance_grad=1e-5,
            tolerance_change=1.0 * np.finfo(float).eps,
            line_search_fn="strong_wolfe"       # can be "strong_wolfe"
        )

        self.iter = 0
        self.log = []

    def net_u(self, x, t):
        u = self.dnn(torch.cat([x, t], dim=1))
        return u

    def net_f(self, x, t):
        """ The pytorch autograd version of calculating residual """
        u = self.net_u(x, t)

        u_t = torch.autograd.grad(
            u, t,
            grad_outputs=torch.ones_like(u),
            retain_graph=True,
            create_graph=True
        )[0]
        u_x = torch.autograd.grad(
            u, x,
            grad_outputs=torch.ones_like(u),
            retain_graph=True,
            create_graph=True
        )[0]
        u_xx = torch.autograd.grad(
            u_x, x,
            grad_outputs=torch.ones_like(u_x),
            retain_graph=True,
            create_graph=True
        )[0]

        f = u_t + u * u_x - self.nu * u_xx
        return f

    def loss_func(self):
        self.optimizer.zero_grad()

        u_pred = self.net_u(self.x_u, self.t_u)
        f_pred = self.net_f(self.x_f, self.t_f)
        loss_u = torch.mean((self.u - u_pred) ** 2)
        loss_f = torch.mean(f_pred ** 2)

        loss = loss_u + loss_f

        loss.backward()
        self.iter += 1
        self.log.append((loss.item(), loss_u.item(), loss_f.item()))
        return loss

    def train_adam(self, nIter):
        self.dnn.train()
        optimizer_Adam = torch.optim.Adam(self.dnn.parameters(), lr=1e-3)
        for epoch in range(nIter):
            u_pred = self.net_u(self.x_u, self.t_u)
            f_pred = self.net_f(self.x_f, self.t_f)
            loss = torch.mean((self.u - u_pred) ** 2) + torch.mean(f_pred ** 2)

            # Backward and optimize
            optimizer_Adam.zero_grad()
            loss.backward()
            optimizer_Adam.step()
            self.log.append((loss.item(),))

    def train(self):
        self.dnn.train()

        # Backward and optimize
        self.optimizer.step(self.loss_func)

    def predict(self, X):
        x = torch.tensor(X[:, 0:1], requires_grad=True).float().to(device)
        t = torch.tensor(X[:, 1:2], requires_grad=True).float().to(device)

        self.dnn.eval()
        u = self.net_u(x, t)
        f = self.net_f(x, t)
        u = u.detach().cpu().numpy()
        f = f.detach().cpu().numpy()
        return u, f


nu = 0.01/np.pi
layers = [2, 12, 12, 1]
lb = np.array([-1.0, 0.0])
ub = np.array([1.0, 0.99])

# training data: u(x, 0) = -sin(pi x) and u(+-1, t) = 0, collocation points on a grid
x = torch.linspace(-1, 1, 9)
t = torch.linspace(0, 0.99, 6)
X, T = torch.meshgrid(x, t, indexing='ij')
X_star = torch.stack((X.flatten(), T.flatten()), 1).numpy()
xx1 = np.hstack((x.numpy()[:, None], np.zeros((9, 1), np.float32)))
xx2 = np.hstack((-np.ones((6, 1), np.float32), t.numpy()[:, None]))
xx3 = np.hstack((np.ones((6, 1), np.float32), t.numpy()[:, None]))
X_u_train = np.vstack([xx1, xx2, xx3])
u_train = np.vstack([-np.sin(np.pi * xx1[:, 0:1]), np.zeros((6, 1)), np.zeros((6, 1))])
idx = np.random.choice(X_star.shape[0], 20, replace=False)
X_f_train = np.vstack([X_star[idx], X_u_train])

model = PhysicsInformedNN(X_u_train, u_train, X_f_train, layers, lb, ub, nu)
report("grid", list(X.shape), X[2, 0].item(), T[0, 3].item(), model.x_f.requires_grad, model.x_f.is_leaf)
model.train_adam(3)
model.train()
u_pred, f_pred = model.predict(X_star)
report("pinn log", model.log)
report("pinn", model.iter, float(np.abs(f_pred).mean()), float(u_pred.std()), u_pred.shape,
       model.optimizer.state_dict()['state'][0]['n_iter'])

# ---- torchdiffeq's ode_demo, integrated with a hand-written RK4
data_size = 40
batch_time = 5
batch_size = 6


def odeint(func, y0, t):
    """Fixed-step classical Runge-Kutta: one step between consecutive times of ``t``."""
    ys = [y0]
    y = y0
    for t0, t1 in zip(t[:-1], t[1:]):
        dt = t1 - t0
        k1 = func(t0, y)
        k2 = func(t0 + dt / 2, y + dt * k1 / 2)
        k3 = func(t0 + dt / 2, y + dt * k2 / 2)
        k4 = func(t1, y + dt * k3)
        y = y + dt / 6 * (k1 + 2 * k2 + 2 * k3 + k4)
        ys.append(y)
    return torch.stack(ys)


true_y0 = torch.tensor([[2., 0.]]).to(device)
t = torch.linspace(0., 5., data_size).to(device)
true_A = torch.tensor([[-0.1, 2.0], [-2.0, -0.1]]).to(device)


class Lambda(nn.Module):

    def forward(self, t, y):
        return torch.mm(y**3, true_A)


with torch.no_grad():
    true_y = odeint(Lambda(), true_y0, t)


def get_batch():
    s = torch.from_numpy(np.random.choice(np.arange(data_size - batch_time, dtype=np.int64), batch_size, replace=False))
    batch_y0 = true_y[s]  # (M, D)
    batch_t = t[:batch_time]  # (T)
    batch_y = torch.stack([true_y[s + i] for i in range(batch_time)], dim=0)  # (T, M, D)
    return batch_y0.to(device), batch_t.to(device), batch_y.to(device)


class ODEFunc(nn.Module):

    def __init__(self):
        super(ODEFunc, self).__init__()

        self.net = nn.Sequential(
            nn.Linear(2, 50),
            nn.Tanh(),
            nn.Linear(50, 2),
        )

        for m in self.net.modules():
            if isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, mean=0, std=0.1)
                nn.init.constant_(m.bias, val=0)

    def forward(self, t, y):
        return self.net(y**3)


report("true", list(true_y.shape), true_y[-1].tolist())
func = ODEFunc().to(device)
report("init bias", func.net[0].bias.abs().sum().item())
share_init(func, "odefunc")
optimizer = optim.RMSprop(func.parameters(), lr=1e-3)
for itr in range(1, 4):
    optimizer.zero_grad()
    batch_y0, batch_t, batch_y = get_batch()
    pred_y = odeint(func, batch_y0, batch_t).to(device)
    loss = torch.mean(torch.abs(pred_y - batch_y))
    loss.backward()
    optimizer.step()
    with torch.no_grad():
        pred_y = odeint(func, true_y0, t)
        total = torch.mean(torch.abs(pred_y - true_y))
    report("ode", itr, list(batch_y.shape), loss.item(), total.item())
