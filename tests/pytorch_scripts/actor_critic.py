"""The PyTorch examples' actor-critic (reinforcement_learning/actor_critic.py) on a tiny
hand-written corridor environment instead of gym: a shared body with policy and value heads,
torch.distributions.Categorical (log_prob, entropy), discounted returns computed with
a reversed loop and normalised with eps (and once vectorised with torch.flip and cumsum), smooth_l1_loss for the critic, stacking the
saved log-probs. Actions are drawn by inverse CDF from fixed uniforms (the generators' streams
differ between libraries); Categorical.sample() is still called for its shape and dtype."""
from collections import namedtuple
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
import torch.optim as optim
from torch.distributions import Categorical

SavedAction = namedtuple('SavedAction', ['log_prob', 'value'])
gamma = 0.9
eps = np.finfo(np.float32).eps.item()


class Corridor:
    """Walk a corridor of 6 cells from cell 0; reach the last for +1, each step costs 0.05."""
    def __init__(self, n=6):
        self.n = n

    def reset(self):
        self.pos = 0
        return self._obs()

    def _obs(self):
        o = np.zeros(self.n, dtype=np.float32)
        o[self.pos] = 1.0
        return o

    def step(self, action):
        self.pos = min(max(self.pos + (1 if action == 1 else -1), 0), self.n - 1)
        done = self.pos == self.n - 1
        return self._obs(), (1.0 if done else -0.05), done, {}


class Policy(nn.Module):
    def __init__(self):
        super(Policy, self).__init__()
        self.affine1 = nn.Linear(6, 16)
        self.action_head = nn.Linear(16, 2)
        self.value_head = nn.Linear(16, 1)
        self.saved_actions = []
        self.rewards = []
        self.entropies = []

    def forward(self, x):
        x = F.relu(self.affine1(x))
        action_prob = F.softmax(self.action_head(x), dim=-1)
        state_values = self.value_head(x)
        return action_prob, state_values


torch.manual_seed(543)
model = Policy()
share_init(model)
optimizer = optim.Adam(model.parameters(), lr=3e-2)
draws = np.random.default_rng(0).random(200)
n_draw = 0


def select_action(state):
    global n_draw
    state = torch.from_numpy(state).float()
    probs, state_value = model(state)
    m = Categorical(probs)
    u = torch.tensor([draws[n_draw]], dtype=probs.dtype); n_draw += 1
    action = torch.searchsorted(probs.detach().cumsum(dim=-1), u).clamp(max=probs.size(-1) - 1)[0]
    model.saved_actions.append(SavedAction(m.log_prob(action), state_value))
    model.entropies.append(m.entropy())
    return action.item()


def finish_episode():
    R = 0
    saved_actions = model.saved_actions
    policy_losses = []
    value_losses = []
    returns = []
    for r in model.rewards[::-1]:
        R = r + gamma * R
        returns.insert(0, R)
    returns = torch.tensor(returns)
    returns = (returns - returns.mean()) / (returns.std() + eps)
    for (log_prob, value), R in zip(saved_actions, returns):
        advantage = R - value.item()
        policy_losses.append(-log_prob * advantage)
        value_losses.append(F.smooth_l1_loss(value, torch.tensor([R])))
    entropy = torch.stack(model.entropies).mean()
    optimizer.zero_grad()
    loss = torch.stack(policy_losses).sum() + torch.stack(value_losses).sum() - 0.01 * entropy
    loss.backward()
    optimizer.step()
    del model.rewards[:]
    del model.saved_actions[:]
    del model.entropies[:]
    return loss.item(), entropy.item()


env = Corridor()
running_reward = 0
for i_episode in range(1, 6):
    state, ep_reward = env.reset(), 0
    for t in range(1, 15):
        action = select_action(state)
        state, reward, done, _ = env.step(action)
        model.rewards.append(reward)
        ep_reward += reward
        if done:
            break
    running_reward = 0.05 * ep_reward + (1 - 0.05) * running_reward
    loss, ent = finish_episode()
    report(i_episode, t, ep_reward, running_reward, loss, ent)

# discounted returns the vectorised way: flip, cumulative sum of scaled rewards, flip back
rewards = torch.tensor([-0.05, -0.05, -0.05, 1.0])
discounts = gamma ** torch.arange(len(rewards), dtype=torch.float32)
disc = torch.flip(torch.cumsum(torch.flip(rewards * discounts, dims=[0]), dim=0), dims=[0]) / discounts
report(disc.tolist())
with torch.no_grad():
    probs, values = model(torch.eye(6))
    dist = Categorical(logits=probs.log())
    sample = dist.sample()
    sample_n = dist.sample((3,))
report(probs[:, 1].tolist(), values.squeeze(-1).tolist(), dist.entropy().tolist(),
       list(sample.shape), sample.dtype == torch.int64, list(sample_n.shape), dist.probs.sum(-1).tolist(),
       dist.log_prob(torch.ones(6, dtype=torch.long)).tolist())
