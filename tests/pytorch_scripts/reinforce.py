"""The PyTorch examples' reinforcement_learning/reinforce.py on a tiny deterministic cart-like
toy written here instead of gym: a Policy of Linear, Dropout(0.6), ReLU, Linear and softmax,
Categorical(probs) with sample() and log_prob, returns accumulated into a deque with
appendleft, torch.tensor(deque), normalised with (returns - mean) / (std + eps), and
torch.cat(policy_loss).sum() under Adam, with the running reward and itertools.count.
Dropout and sample() draw from the generators, whose streams differ between libraries, so
training reports what does not depend on the draws; then both runs load the trained weights
(share_init) and a fresh Adam, and replay a greedy episode in eval mode, whose loss, gradients and Adam step
are compared, and the sampler's frequencies are checked against the probabilities."""
import argparse
from collections import deque
from itertools import count

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
import torch.optim as optim
from torch.distributions import Categorical


parser = argparse.ArgumentParser(description='PyTorch REINFORCE example')
parser.add_argument('--gamma', type=float, default=0.99, metavar='G',
                    help='discount factor (default: 0.99)')
parser.add_argument('--seed', type=int, default=543, metavar='N',
                    help='random seed (default: 543)')
parser.add_argument('--log-interval', type=int, default=2, metavar='N',
                    help='interval between training status logs (default: 2)')
args = parser.parse_args([])


class Balance:
    """A pole angle and velocity; action 1 pushes right, 0 left; +1 per step while |angle| < 1,
    an episode ends when the pole falls or after 12 steps. Deterministic given its seed."""
    reward_threshold = 11.5

    def reset(self, seed=None):
        rng = np.random.default_rng(seed)
        self.state = rng.uniform(-0.05, 0.05, 4)
        self.t = 0
        return self.state.copy(), {}

    def step(self, action):
        x, v, a, w = self.state
        force = 1.0 if action == 1 else -1.0
        w = w + 0.1 * (a * 3.0 - force * 0.5)
        a = a + 0.1 * w
        v = v + 0.05 * force
        x = x + 0.1 * v
        self.state = np.array([x, v, a, w])
        self.t += 1
        terminated = bool(abs(a) > 1.0 or abs(x) > 2.4)
        truncated = self.t >= 12
        return self.state.copy(), 1.0, terminated, truncated, {}


env = Balance()
env.reset(seed=args.seed)
torch.manual_seed(args.seed)


class Policy(nn.Module):
    def __init__(self):
        super(Policy, self).__init__()
        self.affine1 = nn.Linear(4, 32)
        self.dropout = nn.Dropout(p=0.6)
        self.affine2 = nn.Linear(32, 2)

        self.saved_log_probs = []
        self.rewards = []

    def forward(self, x):
        x = self.affine1(x)
        x = self.dropout(x)
        x = F.relu(x)
        action_scores = self.affine2(x)
        return F.softmax(action_scores, dim=1)


policy = Policy()
share_init(policy)
optimizer = optim.Adam(policy.parameters(), lr=1e-2)
eps = np.finfo(np.float32).eps.item()


def select_action(state):
    state = torch.from_numpy(state).float().unsqueeze(0)
    probs = policy(state)
    m = Categorical(probs)
    action = m.sample()
    policy.saved_log_probs.append(m.log_prob(action))
    return action.item()


def finish_episode():
    R = 0
    policy_loss = []
    returns = deque()
    for r in policy.rewards[::-1]:
        R = r + args.gamma * R
        returns.appendleft(R)
    returns = torch.tensor(returns)
    returns = (returns - returns.mean()) / (returns.std() + eps)
    for log_prob, R in zip(policy.saved_log_probs, returns):
        policy_loss.append(-log_prob * R)
    optimizer.zero_grad()
    policy_loss = torch.cat(policy_loss).sum()
    policy_loss.backward()
    optimizer.step()
    del policy.rewards[:]
    del policy.saved_log_probs[:]
    return returns, policy_loss


running_reward = 10
for i_episode in count(1):
    state, _ = env.reset(seed=args.seed + i_episode)
    ep_reward = 0
    for t in range(1, 10000):  # Don't infinite loop while learning
        action = select_action(state)
        state, reward, done, truncated, _ = env.step(action)
        policy.rewards.append(reward)
        ep_reward += reward
        if done or truncated:
            break

    running_reward = 0.05 * ep_reward + (1 - 0.05) * running_reward
    log_prob = policy.saved_log_probs[0]
    report("step", list(log_prob.shape), log_prob.dtype == torch.float32, log_prob.requires_grad, action in (0, 1))
    returns, policy_loss = finish_episode()
    report("returns", len(returns), returns.dtype == torch.float32, abs(returns.mean().item()) < 1e-5,
           abs(returns.std().item() - 1) < 1e-4 or len(returns) == 1, policy_loss.dim(), bool(torch.isfinite(policy_loss)))
    if i_episode % args.log_interval == 0:
        print('Episode {}\tLast reward: {:.2f}\tAverage reward: {:.2f}'.format(
              i_episode, ep_reward, running_reward))
    if running_reward > env.reward_threshold or i_episode == 4:
        print("Solved! Running reward is now {} and "
              "the last episode runs to {} time steps!".format(running_reward, t))
        break
report("episodes", i_episode)

# from here on both runs hold the same weights: a greedy replay in eval mode (dropout off)
share_init(policy, "trained")
optimizer = optim.Adam(policy.parameters(), lr=1e-2)  # Adam's moments came from the draws too
policy.eval()
state, _ = env.reset(seed=7)
for t in range(1, 10000):
    probs = policy(torch.from_numpy(state).float().unsqueeze(0))
    m = Categorical(probs)
    action = probs.argmax(dim=1)
    policy.saved_log_probs.append(m.log_prob(action))
    state, reward, done, truncated, _ = env.step(action.item())
    policy.rewards.append(reward)
    if done or truncated:
        break
returns, policy_loss = finish_episode()
report("greedy", t, returns.tolist(), policy_loss.item(), policy.affine2.bias.tolist(),
       policy.affine1.weight.grad.norm().item(), m.entropy().tolist(), m.probs.tolist())

# Categorical(probs).sample(): right dtype and shape, frequencies near the probabilities
torch.manual_seed(0)
probs = torch.tensor([[0.1, 0.6, 0.3], [0.5, 0.25, 0.25]])
m = Categorical(probs)
draws = m.sample((4000,))
freq = torch.stack([(draws == k).float().mean(0) for k in range(3)], dim=-1)
report("sampler", list(draws.shape), draws.dtype == torch.int64, bool((freq - probs).abs().max() < 0.03),
       m.log_prob(torch.tensor([1, 0])).tolist(), m.batch_shape, m.event_shape)
