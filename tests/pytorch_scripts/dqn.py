"""The PyTorch DQN tutorial (reinforcement_q_learning.py) on a tiny deterministic grid world
written here instead of gym: Transition namedtuple and a deque ReplayMemory sampled with
random.sample, epsilon-greedy with the tutorial's exponential decay drawing from the seeded
`random` module, policy_net(state).max(1).indices.view(1, 1), Transition(*zip(*transitions)),
the non-final mask as torch.tensor(tuple(map(...)), dtype=torch.bool), .gather(1, action_batch),
next_state_values[non_final_mask] = target_net(...).max(1).values under no_grad, SmoothL1Loss,
AdamW(amsgrad=True), clip_grad_value_, and the soft update of the target network through
state_dict / load_state_dict; then CleanRL's style of the same update (zip of parameters with
.data.copy_ and in-place mul_/add_ under no_grad), a Double-DQN target with argmax(1,
keepdim=True), F.smooth_l1_loss and F.huber_loss with beta/delta, and a greedy rollout."""
import math
import random
from collections import deque, namedtuple
from itertools import count

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
import torch.optim as optim

device = torch.device("cpu")


class Discrete:
    def __init__(self, n, seed):
        self.n = n
        self.rng = np.random.default_rng(seed)

    def sample(self):
        return int(self.rng.integers(self.n))


class GridWorld:
    """A 4x4 grid: start at (0, 0), goal at (3, 3) (+1, terminal), a pit at (1, 2) (-1,
    terminal), -0.01 per step; actions up/down/left/right; truncated after 12 steps. The
    observation is the one-hot cell plus the scaled coordinates."""
    size = 4

    def __init__(self, seed=0):
        self.action_space = Discrete(4, seed)

    def obs(self):
        o = np.zeros(self.size * self.size + 2, dtype=np.float32)
        o[self.pos[0] * self.size + self.pos[1]] = 1.0
        o[-2:] = np.array(self.pos, dtype=np.float32) / (self.size - 1)
        return o

    def reset(self):
        self.pos = (0, 0)
        self.t = 0
        return self.obs(), {}

    def step(self, action):
        dr, dc = [(-1, 0), (1, 0), (0, -1), (0, 1)][action]
        r = min(max(self.pos[0] + dr, 0), self.size - 1)
        c = min(max(self.pos[1] + dc, 0), self.size - 1)
        self.pos = (r, c)
        self.t += 1
        if self.pos == (3, 3):
            return self.obs(), 1.0, True, False, {}
        if self.pos == (1, 2):
            return self.obs(), -1.0, True, False, {}
        return self.obs(), -0.01, False, self.t >= 12, {}


env = GridWorld(seed=0)
random.seed(0)
torch.manual_seed(0)

Transition = namedtuple('Transition',
                        ('state', 'action', 'next_state', 'reward'))


class ReplayMemory(object):

    def __init__(self, capacity):
        self.memory = deque([], maxlen=capacity)

    def push(self, *args):
        """Save a transition"""
        self.memory.append(Transition(*args))

    def sample(self, batch_size):
        return random.sample(self.memory, batch_size)

    def __len__(self):
        return len(self.memory)


class DQN(nn.Module):

    def __init__(self, n_observations, n_actions):
        super(DQN, self).__init__()
        self.layer1 = nn.Linear(n_observations, 32)
        self.layer2 = nn.Linear(32, 32)
        self.layer3 = nn.Linear(32, n_actions)

    # Called with either one element to determine next action, or a batch
    # during optimization. Returns tensor([[left0exp,right0exp]...]).
    def forward(self, x):
        x = F.relu(self.layer1(x))
        x = F.relu(self.layer2(x))
        return self.layer3(x)


BATCH_SIZE = 8
GAMMA = 0.99
EPS_START = 0.9
EPS_END = 0.05
EPS_DECAY = 50
TAU = 0.005
LR = 1e-3

n_actions = env.action_space.n
state, info = env.reset()
n_observations = len(state)

policy_net = DQN(n_observations, n_actions).to(device)
target_net = DQN(n_observations, n_actions).to(device)
share_init(policy_net)
target_net.load_state_dict(policy_net.state_dict())

optimizer = optim.AdamW(policy_net.parameters(), lr=LR, amsgrad=True)
memory = ReplayMemory(1000)

steps_done = 0


def select_action(state):
    global steps_done
    sample = random.random()
    eps_threshold = EPS_END + (EPS_START - EPS_END) * \
        math.exp(-1. * steps_done / EPS_DECAY)
    steps_done += 1
    if sample > eps_threshold:
        with torch.no_grad():
            # t.max(1) will return the largest column value of each row.
            # second column on max result is index of where max element was
            # found, so we pick action with the larger expected reward.
            return policy_net(state).max(1).indices.view(1, 1)
    else:
        return torch.tensor([[env.action_space.sample()]], device=device, dtype=torch.long)


def optimize_model():
    if len(memory) < BATCH_SIZE:
        return None
    transitions = memory.sample(BATCH_SIZE)
    # Transpose the batch (see https://stackoverflow.com/a/19343/3343043 for
    # detailed explanation). This converts batch-array of Transitions
    # to Transition of batch-arrays.
    batch = Transition(*zip(*transitions))

    # Compute a mask of non-final states and concatenate the batch elements
    # (a final state would've been the one after which simulation ended)
    non_final_mask = torch.tensor(tuple(map(lambda s: s is not None,
                                          batch.next_state)), device=device, dtype=torch.bool)
    non_final_next_states = torch.cat([s for s in batch.next_state
                                       if s is not None])
    state_batch = torch.cat(batch.state)
    action_batch = torch.cat(batch.action)
    reward_batch = torch.cat(batch.reward)

    # Compute Q(s_t, a) - the model computes Q(s_t), then we select the
    # columns of actions taken. These are the actions which would've been taken
    # for each batch state according to policy_net
    state_action_values = policy_net(state_batch).gather(1, action_batch)

    # Compute V(s_{t+1}) for all next states.
    next_state_values = torch.zeros(BATCH_SIZE, device=device)
    with torch.no_grad():
        next_state_values[non_final_mask] = target_net(non_final_next_states).max(1).values
    # Compute the expected Q values
    expected_state_action_values = (next_state_values * GAMMA) + reward_batch

    # Compute Huber loss
    criterion = nn.SmoothL1Loss()
    loss = criterion(state_action_values, expected_state_action_values.unsqueeze(1))

    # Optimize the model
    optimizer.zero_grad()
    loss.backward()
    # In-place gradient clipping
    torch.nn.utils.clip_grad_value_(policy_net.parameters(), 100)
    optimizer.step()
    return loss


num_episodes = 4
for i_episode in range(num_episodes):
    # Initialize the environment and get its state
    state, info = env.reset()
    state = torch.tensor(state, dtype=torch.float32, device=device).unsqueeze(0)
    losses = []
    for t in count():
        action = select_action(state)
        observation, reward, terminated, truncated, _ = env.step(action.item())
        reward = torch.tensor([reward], device=device)
        done = terminated or truncated

        if terminated:
            next_state = None
        else:
            next_state = torch.tensor(observation, dtype=torch.float32, device=device).unsqueeze(0)

        # Store the transition in memory
        memory.push(state, action, next_state, reward)

        # Move to the next state
        state = next_state

        # Perform one step of the optimization (on the policy network)
        loss = optimize_model()
        if loss is not None:
            losses.append(loss.item())

        # Soft update of the target network's weights
        # θ′ ← τ θ + (1 −τ )θ′
        target_net_state_dict = target_net.state_dict()
        policy_net_state_dict = policy_net.state_dict()
        for key in policy_net_state_dict:
            target_net_state_dict[key] = policy_net_state_dict[key]*TAU + target_net_state_dict[key]*(1-TAU)
        target_net.load_state_dict(target_net_state_dict)

        if done:
            break
    report("episode", i_episode, t + 1, len(memory), losses,
           target_net.layer3.bias.tolist(), optimizer.state[policy_net.layer1.weight]['max_exp_avg_sq'].sum().item()
           if policy_net.layer1.weight in optimizer.state else None)

# ---- CleanRL's target update and a Double-DQN target on one shared batch
share_init(policy_net, "trained")
target_net.load_state_dict(policy_net.state_dict())
with torch.no_grad():
    for p in target_net.parameters():
        p.mul_(0.9).add_(0.01)
q_network, target_network = policy_net, target_net
optimizer = optim.Adam(q_network.parameters(), lr=2.5e-4)
rng = np.random.default_rng(1)
observations = torch.from_numpy(rng.standard_normal((6, n_observations)).astype(np.float32))
next_observations = torch.from_numpy(rng.standard_normal((6, n_observations)).astype(np.float32))
actions = torch.from_numpy(rng.integers(0, n_actions, (6, 1)))
rewards = torch.from_numpy(rng.standard_normal(6).astype(np.float32))
dones = torch.from_numpy((rng.random(6) < 0.3).astype(np.float32))
gamma, tau = 0.99, 0.5
for global_step in range(3):
    with torch.no_grad():
        target_max, _ = target_network(next_observations).max(dim=1)
        td_target = rewards.flatten() + gamma * target_max * (1 - dones.flatten())
        # Double DQN: the online net picks, the target net evaluates
        next_actions = q_network(next_observations).argmax(1, keepdim=True)
        double_target = rewards + gamma * target_network(next_observations).gather(1, next_actions).squeeze(1) * (1 - dones)
    old_val = q_network(observations).gather(1, actions).squeeze()
    loss = F.mse_loss(td_target, old_val)
    loss = loss + F.smooth_l1_loss(old_val, double_target, beta=0.5) + F.huber_loss(old_val, double_target, delta=2.0)

    optimizer.zero_grad()
    loss.backward()
    torch.nn.utils.clip_grad_value_(q_network.parameters(), clip_value=0.05)
    optimizer.step()

    for target_network_param, q_network_param in zip(target_network.parameters(), q_network.parameters()):
        target_network_param.data.copy_(
            tau * q_network_param.data + (1.0 - tau) * target_network_param.data
        )
    report("cleanrl", global_step, loss.item(), next_actions.flatten().tolist(), target_max.tolist(),
           q_network.layer1.weight.grad.abs().max().item(), target_network.layer3.weight.sum().item())

# greedy rollout with the trained network
state, _ = env.reset()
path = []
for t in range(12):
    with torch.no_grad():
        q = q_network(torch.tensor(state).unsqueeze(0))
    a = q.argmax().item()
    path.append(a)
    state, reward, terminated, truncated, _ = env.step(a)
    if terminated or truncated:
        break
report("greedy", path, q.squeeze(0).tolist())
