"""A PPO agent as CleanRL's ppo.py writes it, on a tiny deterministic vectorised environment
written here instead of gym: an Agent with orthogonal-initialised layers (layer_init with
torch.nn.init.orthogonal_ and constant_), a critic and an actor whose logits feed
Categorical, rollout buffers preallocated with torch.zeros and filled per step, GAE computed
backwards, mini-batches from np.random.permutation indices, the clipped surrogate with
advantage normalisation, ratio = logratio.exp(), approx_kl, clipfracs, the clipped value loss,
the entropy bonus, Adam with eps=1e-5 and its lr annealed by writing param_groups[0]["lr"],
and nn.utils.clip_grad_norm_. Actions are sampled in the rollout, so the rollout reports only
what does not depend on the draws; the update then runs on a fixed buffer replayed from NumPy."""
import numpy as np
import torch
import torch.nn as nn
import torch.optim as optim
from torch.distributions.categorical import Categorical


class Corridor:
    """num_envs corridors of length 5; action 1 steps right, 0 left; reward 1 at the right end,
    which resets the env. Observations are one-hot positions."""
    def __init__(self, num_envs):
        self.num_envs = num_envs
        self.pos = np.zeros(num_envs, np.int64)

    def obs(self):
        return np.eye(5, dtype=np.float32)[self.pos]

    def reset(self):
        self.pos[:] = 0
        return self.obs()

    def step(self, action):
        self.pos = np.clip(self.pos + np.where(action == 1, 1, -1), 0, 4)
        done = self.pos == 4
        reward = done.astype(np.float32)
        self.pos[done] = 0
        return self.obs(), reward, done


def layer_init(layer, std=np.sqrt(2), bias_const=0.0):
    torch.nn.init.orthogonal_(layer.weight, std)
    torch.nn.init.constant_(layer.bias, bias_const)
    return layer


class Agent(nn.Module):
    def __init__(self, obs_dim, n_actions):
        super().__init__()
        self.critic = nn.Sequential(
            layer_init(nn.Linear(obs_dim, 16)), nn.Tanh(),
            layer_init(nn.Linear(16, 16)), nn.Tanh(),
            layer_init(nn.Linear(16, 1), std=1.0))
        self.actor = nn.Sequential(
            layer_init(nn.Linear(obs_dim, 16)), nn.Tanh(),
            layer_init(nn.Linear(16, 16)), nn.Tanh(),
            layer_init(nn.Linear(16, n_actions), std=0.01))

    def get_value(self, x):
        return self.critic(x)

    def get_action_and_value(self, x, action=None):
        logits = self.actor(x)
        probs = Categorical(logits=logits)
        if action is None:
            action = probs.sample()
        return action, probs.log_prob(action), probs.entropy(), self.critic(x)


num_envs, num_steps, num_minibatches, update_epochs = 4, 8, 2, 2
batch_size = num_envs * num_steps
minibatch_size = batch_size // num_minibatches
gamma, gae_lambda, clip_coef, ent_coef, vf_coef, max_grad_norm = 0.99, 0.95, 0.2, 0.01, 0.5, 0.5
learning_rate, num_iterations = 2.5e-3, 2

torch.manual_seed(1)
torch.backends.cudnn.deterministic = True
device = torch.device("cpu")
envs = Corridor(num_envs)
agent = Agent(5, 2).to(device)
w = agent.actor[0].weight.detach()                    # (16, 5): orthonormal columns times sqrt(2)
report("orthogonal", (w.T @ w - 2 * torch.eye(5)).abs().max().item() < 1e-4, agent.actor[4].weight.abs().max().item() < 0.05)
share_init(agent)
optimizer = optim.Adam(agent.parameters(), lr=learning_rate, eps=1e-5)

obs = torch.zeros((num_steps, num_envs, 5)).to(device)
actions = torch.zeros((num_steps, num_envs)).to(device)
logprobs = torch.zeros((num_steps, num_envs)).to(device)
rewards = torch.zeros((num_steps, num_envs)).to(device)
dones = torch.zeros((num_steps, num_envs)).to(device)
values = torch.zeros((num_steps, num_envs)).to(device)

next_obs = torch.Tensor(envs.reset()).to(device)
next_done = torch.zeros(num_envs).to(device)
for step in range(0, num_steps):
    obs[step] = next_obs
    dones[step] = next_done
    with torch.no_grad():
        action, logprob, _, value = agent.get_action_and_value(next_obs)
        values[step] = value.flatten()
    actions[step] = action
    logprobs[step] = logprob
    next_obs, reward, next_done = envs.step(action.cpu().numpy())
    rewards[step] = torch.tensor(reward).to(device).view(-1)
    next_obs, next_done = torch.Tensor(next_obs).to(device), torch.Tensor(next_done).to(device)
report("rollout", list(obs.shape), actions.dtype == torch.float32, bool(((actions == 0) | (actions == 1)).all()),
       bool((logprobs < 0).all()), values.requires_grad, logprobs.requires_grad)

# the update from here on runs on a fixed rollout, the same in both libraries
rng = np.random.default_rng(0)
obs = torch.from_numpy(np.eye(5, dtype=np.float32)[rng.integers(0, 4, (num_steps, num_envs))])
actions = torch.from_numpy(rng.integers(0, 2, (num_steps, num_envs)).astype(np.float32))
rewards = torch.from_numpy((rng.random((num_steps, num_envs)) < 0.2).astype(np.float32))
dones = torch.from_numpy((rng.random((num_steps, num_envs)) < 0.1).astype(np.float32))
next_obs = torch.from_numpy(np.eye(5, dtype=np.float32)[rng.integers(0, 4, num_envs)])
next_done = torch.zeros(num_envs)
for iteration in range(1, num_iterations + 1):
    frac = 1.0 - (iteration - 1.0) / num_iterations
    lrnow = frac * learning_rate
    optimizer.param_groups[0]["lr"] = lrnow
    with torch.no_grad():
        _, logprobs, _, values = agent.get_action_and_value(obs.reshape(-1, 5), actions.reshape(-1).long())
        logprobs, values = logprobs.view(num_steps, num_envs), values.view(num_steps, num_envs)
        next_value = agent.get_value(next_obs).reshape(1, -1)
        advantages = torch.zeros_like(rewards).to(device)
        lastgaelam = 0
        for t in reversed(range(num_steps)):
            if t == num_steps - 1:
                nextnonterminal = 1.0 - next_done
                nextvalues = next_value
            else:
                nextnonterminal = 1.0 - dones[t + 1]
                nextvalues = values[t + 1]
            delta = rewards[t] + gamma * nextvalues * nextnonterminal - values[t]
            advantages[t] = lastgaelam = delta + gamma * gae_lambda * nextnonterminal * lastgaelam
        returns = advantages + values

    b_obs = obs.reshape((-1, 5))
    b_logprobs = logprobs.reshape(-1)
    b_actions = actions.reshape(-1)
    b_advantages = advantages.reshape(-1)
    b_returns = returns.reshape(-1)
    b_values = values.reshape(-1)

    b_inds = np.arange(batch_size)
    clipfracs = []
    perm = np.random.default_rng(iteration)
    for epoch in range(update_epochs):
        perm.shuffle(b_inds)
        for start in range(0, batch_size, minibatch_size):
            end = start + minibatch_size
            mb_inds = b_inds[start:end]

            _, newlogprob, entropy, newvalue = agent.get_action_and_value(b_obs[mb_inds], b_actions.long()[mb_inds])
            logratio = newlogprob - b_logprobs[mb_inds]
            ratio = logratio.exp()

            with torch.no_grad():
                old_approx_kl = (-logratio).mean()
                approx_kl = ((ratio - 1) - logratio).mean()
                clipfracs += [((ratio - 1.0).abs() > clip_coef).float().mean().item()]

            mb_advantages = b_advantages[mb_inds]
            mb_advantages = (mb_advantages - mb_advantages.mean()) / (mb_advantages.std() + 1e-8)

            pg_loss1 = -mb_advantages * ratio
            pg_loss2 = -mb_advantages * torch.clamp(ratio, 1 - clip_coef, 1 + clip_coef)
            pg_loss = torch.max(pg_loss1, pg_loss2).mean()

            newvalue = newvalue.view(-1)
            v_loss_unclipped = (newvalue - b_returns[mb_inds]) ** 2
            v_clipped = b_values[mb_inds] + torch.clamp(newvalue - b_values[mb_inds], -clip_coef, clip_coef)
            v_loss_clipped = (v_clipped - b_returns[mb_inds]) ** 2
            v_loss_max = torch.max(v_loss_unclipped, v_loss_clipped)
            v_loss = 0.5 * v_loss_max.mean()

            entropy_loss = entropy.mean()
            loss = pg_loss - ent_coef * entropy_loss + v_loss * vf_coef

            optimizer.zero_grad()
            loss.backward()
            gn = nn.utils.clip_grad_norm_(agent.parameters(), max_grad_norm)
            optimizer.step()
            report("minibatch", iteration, epoch, start, loss.item(), pg_loss.item(), v_loss.item(),
                   entropy_loss.item(), approx_kl.item(), old_approx_kl.item(), gn.item())

    y_pred, y_true = b_values.cpu().numpy(), b_returns.cpu().numpy()
    var_y = np.var(y_true)
    explained_var = np.nan if var_y == 0 else 1 - np.var(y_true - y_pred) / var_y
    report("iteration", iteration, optimizer.param_groups[0]["lr"], float(np.mean(clipfracs)), float(explained_var),
           advantages.sum().item())

with torch.no_grad():
    logits = agent.actor(torch.eye(5))
    dist = Categorical(logits=logits)
report("policy", dist.probs.tolist(), dist.entropy().tolist(), dist.logits.tolist(),
       dist.log_prob(torch.ones(5)).tolist())
