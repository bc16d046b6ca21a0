"""MADDPG-MATO ([Wang 2025, eqs. 16-23]) and its ablations, in one readable file (CleanRL style).

Each end device (ED) is an agent with its own actor v_m(o_m) and critic Q_m. The M actors (and
critics) are held as one ensemble whose weights carry an agent axis, so that all agents run in a few
batched matrix products: no Python loop over agents or environments.

Hybrid action of agent m (seed eq. 17): a categorical offloading target xi over the N servers
(straight-through Gumbel-softmax), a sigmoid offload ratio eta in [0, 1] (the rest runs locally) and
a binary download flag beta (straight-through threshold of a sigmoid). As a vector it is
[one-hot target (N), eta, beta], A = N + 2 numbers. A server mask [B, M, N] removes targets.

Variants:
- maddpg-mato: observations with model compatibility d, its own download decision, centralized
  critics Q_m(s, a_1..a_M) of the global state s (every device's own features and the features all
  devices share, once) and every agent's action.
- maddpg-nomodel ([Wang 2025, sec. IV-A]: "Agents can't detect ES model compatibility or download
  models"; sec. IV-C: it "requires frequent model downloads"). Our reading, which satisfies both: it
  sees no compatibility (the d block is not in its observation) and has no download decision: its
  download flag is always set, so every part it sends to a server without the model pays the model's
  download (eqs. 7-8). It never chooses to skip a download, and never learns where the models are.
  Centralized critics as MATO's.
- saddpg: independent DDPG: each critic sees only its own observation and action, Q_m(o_m, a_m).

Updates (seed eqs. 19-23), as openai/maddpg and maddpg-pytorch do them: y = r_m + gamma Q'_m(s', a')
with a' from the target actors (deterministic: the target's argmax, the ratio, the flag); critic loss
(y - Q_m(s, a))^2; the actor ascends Q_m(s, a_1..v_m(o_m)..a_M) with the other agents' actions taken
from the replay batch, its target a straight-through Gumbel-softmax sample of its own categorical
(the references' reparameterised sample; the ratio and the flag enter deterministically: exploration
noise is added in `act` only), plus the references' logit regulariser 1e-3 * mean(head^2); each
agent's critic and actor gradients are clipped to norm 0.5 separately; targets soft-updated with tau.

Exploration (`act` with a generator): the target is a Gumbel-softmax sample of the actor's
categorical; the ratio gets Gaussian noise of std `ratio_noise * s`, the download flag flips with
probability `download_epsilon * s`, where s decays linearly from 1 to `explore_floor` over the first
`explore_decay` of the run's update budget (`plan`).

The download logit starts at `download_bias` = -log 9 (sigmoid 0.1, not a coin flip): the actor starts
from not downloading and learns where a download pays. In `mato` a download moves 90-250 MB over
the 400 Mbit/s backhaul (1.8-5 s) and loads it at 50 W (about 15 J, twice a mean task's local
energy), and every later part on that FIFO server queues behind it; a part that skips it fails
(eq. 18's penalty) but costs only its upload. Measured on held-out streams (seed 0, 32 x 25): the
nearest-server rule with ratio 0.7 scores -21.1 per step when it downloads every miss and -9.7 when
it never does; MADDPG-MATO at 2,000 updates ended at -10.5 from sigmoid 0.9 and -10.0 from 0.1 (seed
0, a development build). The flag's gradient at sigmoid 0.1 is 0.09 of the logit's, far from
saturated.

Budget: `plan(updates, envs, steps)` fixes the number of gradient updates of a run; each batched step
stores B joint transitions and earns B / `transitions_per_update` updates (so updates per step scale
with B and every transition is replayed about batch_size / transitions_per_update times).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn

from offload_core.config import EdgeConfig
from offload_core.engine import Action, EdgeEngine
from offload_core.names import Algorithm, parse_among
from offload_core.observations import Decision, Reward, feature_split, observation_size, observe, training_reward
from offload_core.replay import Batch, ReplayBuffer
from offload_core.result import StepResult
from offload_core.scenario import TaskBatch

VARIANTS: tuple[Algorithm, ...] = (Algorithm.MADDPG_MATO, Algorithm.MADDPG_NOMODEL, Algorithm.SADDPG)


@dataclass(frozen=True)
class MADDPGConfig:
    """Hyperparameters of MADDPG-MATO and its ablations ([Wang 2025] values where it states them; the
    others from openai/maddpg and maddpg-pytorch, or ours where marked).

    Checked when built: a field out of range raises ValueError naming it."""

    variant: Algorithm = Algorithm.MADDPG_MATO
    """One of maddpg-mato, maddpg-nomodel, saddpg."""
    actor_lr: float = 1e-3
    """Adam learning rate of the actors (seed: 0.001)."""
    critic_lr: float = 1e-3
    """Adam learning rate of the critics (seed: 0.001)."""
    gamma: float = 0.95
    """Discount factor (seed: 0.95)."""
    tau: float = 0.01
    """Soft target update rate (seed eqs. 22-23: 0.01)."""
    buffer_size: int = 10_000
    """Replay capacity in joint transitions (one environment step of all agents; seed: 10,000)."""
    batch_size: int = 1024
    """Transitions per gradient step (seed: 1024)."""
    hidden: int = 64
    """Width of the two hidden layers of every actor and critic (openai/maddpg: 64)."""
    transitions_per_update: int = 16
    """New joint transitions per gradient update: a batched step of B environments earns
    B / transitions_per_update updates (ours: each transition is replayed about 1024 / 16 = 64 times)."""
    learning_starts: int = 1024
    """Transitions stored before the first gradient step (ours: one batch)."""
    reward: Reward | None = None
    """What each agent learns from: team (eq. 18's sum over devices / M, for every agent; the scale is
    ours, `observations.training_reward`), team-sum (the sum itself) or agent (its own task's reward).
    None: the variant's, `reward_kind`: team for MADDPG-MATO and NoModel; agent for SADDPG, whose
    devices "independently optimize" their offloading ([Wang 2025, sec. IV-A])."""
    gumbel_temperature: float = 1.0
    """Temperature of the Gumbel-softmax over targets (openai/maddpg, maddpg-pytorch: 1)."""
    ratio_noise: float = 0.2
    """Std of the Gaussian exploration noise on the offload ratio at the start (ours; clamped to [0, 1])."""
    download_epsilon: float = 0.2
    """Probability of flipping the download flag while exploring, at the start (ours)."""
    explore_floor: float = 0.1
    """Exploration noise and flips end at this fraction of their start values (ours)."""
    explore_decay: float = 0.5
    """Fraction of the run's update budget over which exploration decays linearly (ours)."""
    download_bias: float = -math.log(9.0)
    """Initial bias of the download logit: sigmoid 0.1, start from not downloading (ours; module docstring)."""
    logit_reg: float = 1e-3
    """Weight of mean(actor output^2) in the actor loss (openai/maddpg, maddpg-pytorch: 1e-3)."""
    grad_clip: float = 0.5
    """Max gradient norm of each agent's actor and of each agent's critic (openai/maddpg: 0.5)."""
    share_actor: bool = False
    """One actor network for every device (parameter sharing, ours; docs/learners.md): the devices are alike
    and their observations carry their own position and frequency, so one policy can serve all, learning
    from M devices' samples at each update. False: one actor per device, as [Wang 2025]."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "variant", parse_among(VARIANTS, self.variant, "variant"))
        if self.reward is not None:
            object.__setattr__(self, "reward", parse_among(tuple(Reward), self.reward, "reward"))
        self.validate()

    @property
    def reward_kind(self) -> Reward:
        """The reward the agents learn from: `reward`, or the variant's when it is None."""
        if self.reward is not None:
            return self.reward
        return Reward.AGENT if self.variant == Algorithm.SADDPG else Reward.TEAM

    def validate(self) -> MADDPGConfig:
        """Return self, or raise ValueError naming the first field out of range (done when built)."""
        for name in ("actor_lr", "critic_lr", "gumbel_temperature", "grad_clip"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")
        if not 0 < self.tau <= 1:
            raise ValueError(f"tau must lie in (0, 1], got {self.tau}")
        if not 0 <= self.gamma < 1:
            raise ValueError(f"gamma must lie in [0, 1), got {self.gamma}")
        for name in ("buffer_size", "batch_size", "hidden", "transitions_per_update"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.learning_starts < 0:
            raise ValueError(f"learning_starts must not be negative, got {self.learning_starts}")
        for name in ("ratio_noise", "logit_reg"):
            if not getattr(self, name) >= 0:
                raise ValueError(f"{name} must not be negative, got {getattr(self, name)}")
        for name in ("download_epsilon", "explore_floor", "explore_decay"):
            if not 0 <= getattr(self, name) <= 1:
                raise ValueError(f"{name} must lie in [0, 1], got {getattr(self, name)}")
        if not math.isfinite(self.download_bias):
            raise ValueError(f"download_bias must be finite, got {self.download_bias}")
        return self

    def state(self) -> dict[str, Any]:
        """The fields as plain values (names as strings), for checkpoints."""
        return {**asdict(self), "variant": self.variant.value, "reward": None if self.reward is None else self.reward.value}


# -- ensembles: one network per agent, batched over agents --------------------------------------------


def _uniform(shape: tuple[int, ...], bound: float, generator: torch.Generator, dtype: torch.dtype) -> torch.Tensor:
    return (torch.rand(shape, generator=generator, dtype=dtype) * 2 - 1) * bound


class AgentLinear(nn.Module):
    """M independent linear layers applied at once: [M, K, in] -> [M, K, out]."""

    def __init__(
        self,
        agents: int,
        fan_in: int,
        fan_out: int,
        generator: torch.Generator,
        device: torch.device,
        dtype: torch.dtype,
        scale: float = 1.0,
    ) -> None:
        super().__init__()
        weight = _uniform((agents, fan_in, fan_out), scale / math.sqrt(fan_in), generator, dtype)
        self.weight = nn.Parameter(weight.to(device))
        self.bias = nn.Parameter(torch.zeros((agents, 1, fan_out), device=device, dtype=dtype))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # [M, K, in] -> [M, K, out]; one shared layer (agents == 1) serves every agent of x
        if self.weight.shape[0] == 1 and x.shape[0] != 1:
            agents, rows, fan_in = x.shape
            out = torch.addmm(self.bias[0], x.reshape(agents * rows, fan_in), self.weight[0])  # [M K, out]
            return out.view(agents, rows, -1)
        return torch.baddbmm(self.bias, x, self.weight)


class AgentMLP(nn.Module):
    """Two ReLU hidden layers per agent: [M, K, in] -> [M, K, out]."""

    def __init__(
        self,
        agents: int,
        fan_in: int,
        hidden: int,
        fan_out: int,
        generator: torch.Generator,
        device: torch.device,
        dtype: torch.dtype,
        out_scale: float = 1.0,
    ) -> None:
        super().__init__()
        self.layers = nn.ModuleList(
            [
                AgentLinear(agents, fan_in, hidden, generator, device, dtype),
                AgentLinear(agents, hidden, hidden, generator, device, dtype),
                AgentLinear(agents, hidden, fan_out, generator, device, dtype, scale=out_scale),
            ]
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # [M, K, in] -> [M, K, out]
        *hidden, last = self.layers
        for layer in hidden:
            x = torch.relu(layer(x))
        out: torch.Tensor = last(x)
        return out


class AgentOutput(nn.Module):
    """M independent linear layers to one output: [M, K, in] -> [M, K] (an elementwise product and a sum,
    cheaper than a matrix product with one column, forward and backward)."""

    def __init__(self, agents: int, fan_in: int, generator: torch.Generator, device: torch.device, dtype: torch.dtype) -> None:
        super().__init__()
        self.weight = nn.Parameter(_uniform((agents, 1, fan_in), 1.0 / math.sqrt(fan_in), generator, dtype).to(device))
        self.bias = nn.Parameter(torch.zeros((agents, 1), device=device, dtype=dtype))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # [M, K, in] -> [M, K]
        return (x * self.weight).sum(-1) + self.bias


class SharedInputLinear(nn.Module):
    """M linear layers that read the same input: [K, in] -> [M, K, out] in one matrix product.

    The weight is stored [in, M, out], so that all M layers are one [in, M out] matrix (agent axis 1)."""

    def __init__(
        self, agents: int, fan_in: int, fan_out: int, generator: torch.Generator, device: torch.device, dtype: torch.dtype
    ) -> None:
        super().__init__()
        weight = _uniform((agents, fan_in, fan_out), 1.0 / math.sqrt(fan_in), generator, dtype)
        self.weight = nn.Parameter(weight.transpose(0, 1).contiguous().to(device))  # [in, M, out]
        self.bias = nn.Parameter(torch.zeros((agents, fan_out), device=device, dtype=dtype))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # [K, in] -> [M, K, out]
        fan_in, agents, fan_out = self.weight.shape
        out = torch.addmm(self.bias.reshape(-1), x, self.weight.reshape(fan_in, agents * fan_out))  # [K, M out]
        return out.view(x.shape[0], agents, fan_out).transpose(0, 1)


class Critics(nn.Module):
    """The M critics, centralized (every critic reads the global state and every action) or not.

    Centralized input: [shared features (S), every device's own features (M P), every action (M A)],
    one vector per transition read by all M critics (SharedInputLinear). Decentralized (SADDPG):
    critic m reads [o_m, a_m]."""

    def __init__(
        self,
        config: EdgeConfig,
        model_aware: bool,
        centralized: bool,
        hidden: int,
        action_dim: int,
        generator: torch.Generator,
        device: torch.device,
        dtype: torch.dtype,
    ) -> None:
        super().__init__()
        m = config.n_devices
        self.agents, self.action_dim, self.centralized = m, action_dim, centralized
        own, shared = feature_split(config, model_aware)
        self.own_index = torch.tensor(own, device=device)  # [P] positions of a device's own features
        self.shared_index = torch.tensor(shared, device=device)  # [S] positions of the features all share
        obs_dim = observation_size(config, model_aware)
        if centralized:
            self.action_start = len(shared) + m * len(own)  # where agent 0's action begins in the input
            fan_in = self.action_start + m * action_dim
            self.first: nn.Module = SharedInputLinear(m, fan_in, hidden, generator, device, dtype)
        else:
            self.first = AgentLinear(m, obs_dim + action_dim, hidden, generator, device, dtype)
        self.second = AgentLinear(m, hidden, hidden, generator, device, dtype)
        self.last = AgentOutput(m, hidden, generator, device, dtype)

    def state_input(self, obs: torch.Tensor) -> torch.Tensor:
        """Global state s from the observations.  obs [K, M, D] -> [K, S + M P]"""
        shared = obs[:, 0].index_select(-1, self.shared_index)  # [K, S], alike for every device
        own = obs.index_select(-1, self.own_index).flatten(1)  # [K, M P]
        return torch.cat([shared, own], dim=-1)

    def head(self, pre: torch.Tensor) -> torch.Tensor:
        """First-layer pre-activations [M, K, H] -> Q [M, K]."""
        hidden = torch.relu(self.second(torch.relu(pre)))
        out: torch.Tensor = self.last(hidden)
        return out

    def forward(self, obs: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        """Q_m(s, a) of every critic.  obs [K, M, D], action [K, M, A] -> [M, K]"""
        if self.centralized:
            joint = torch.cat([self.state_input(obs), action.flatten(1)], dim=-1)  # [K, in]
            return self.head(self.first(joint))
        return self.head(self.first(torch.cat([obs, action], dim=-1).transpose(0, 1)))

    def with_own_action(self, obs: torch.Tensor, stored: torch.Tensor, fresh: torch.Tensor) -> torch.Tensor:
        """Q_m with agent m's action `fresh` and every other agent's `stored`; gradients reach `fresh`
        only (not the critics' weights).  obs [K, M, D], stored and fresh [K, M, A] -> [M, K]"""
        if not self.centralized:
            return self.head(self.first(torch.cat([obs, fresh], dim=-1).transpose(0, 1)))
        first = self.first
        assert isinstance(first, SharedInputLinear)
        with torch.no_grad():
            base = first(torch.cat([self.state_input(obs), stored.flatten(1)], dim=-1))  # [M, K, H]
            m, a = self.agents, self.action_dim
            rows = self.action_start + torch.arange(m, device=obs.device).unsqueeze(1) * a + torch.arange(a, device=obs.device)
            own_weight = first.weight.detach()[rows, torch.arange(m, device=obs.device).unsqueeze(1)]  # [M, A, H]
        delta = (fresh - stored).transpose(0, 1)  # [M, K, A]: the own action's change
        return self.head(base + torch.bmm(delta, own_weight))


def _clip_per_agent(groups: list[tuple[torch.Tensor, int]], max_norm: float) -> None:
    """Scale each agent's gradients (over all of its parameters) to norm at most `max_norm`.

    groups: (parameter, axis of its agent dimension)."""
    squares: torch.Tensor | None = None
    for param, axis in groups:
        if param.grad is None:
            continue
        dims = [d for d in range(param.grad.dim()) if d != axis]
        part = param.grad.pow(2).sum(dim=dims)  # [M]
        squares = part if squares is None else squares + part
    if squares is None:
        return
    scale = (max_norm / (squares.sqrt() + 1e-6)).clamp_max(1.0)  # [M]
    for param, axis in groups:
        if param.grad is not None:
            shape = [1] * param.grad.dim()
            shape[axis] = -1
            param.grad.mul_(scale.view(shape))


def _agent_axes(module: nn.Module) -> list[tuple[torch.Tensor, int]]:
    """Every parameter with its agent axis (1 for SharedInputLinear weights, else 0)."""
    groups: list[tuple[torch.Tensor, int]] = []
    for sub in module.modules():
        for name, param in sub.named_parameters(recurse=False):
            axis = 1 if isinstance(sub, SharedInputLinear) and name == "weight" else 0
            groups.append((param, axis))
    return groups


# -- the hybrid action head ----------------------------------------------------------------------------


def gumbel_noise(shape: torch.Size, generator: torch.Generator, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """-log(-log U), U ~ Uniform(0, 1).  [shape]"""
    uniform = torch.rand(shape, generator=generator, dtype=dtype, device=generator.device).to(device)
    return -torch.log(-torch.log(uniform.clamp(1e-10, 1.0 - 1e-7)))


def straight_through_onehot(logits: torch.Tensor, temperature: float, noise: torch.Tensor | None) -> torch.Tensor:
    """Hard one-hot forward, Gumbel-softmax gradient backward.  [..., N] -> [..., N]"""
    perturbed = logits if noise is None else logits + noise
    soft = torch.softmax(perturbed / temperature, dim=-1)
    hard = torch.nn.functional.one_hot(perturbed.argmax(dim=-1), logits.shape[-1]).to(soft.dtype)
    return hard - soft.detach() + soft


def straight_through_flag(logit: torch.Tensor) -> torch.Tensor:
    """1 where sigmoid(logit) > 1/2, with the sigmoid's gradient.  [...] -> [...]"""
    soft = torch.sigmoid(logit)
    return (logit > 0).to(soft.dtype) - soft.detach() + soft


def hybrid_action(
    head: torch.Tensor,
    server_mask: torch.Tensor,
    allow_download: bool,
    hp: MADDPGConfig,
    generator: torch.Generator | None,
) -> torch.Tensor:
    """Actor output -> action vector [one-hot target, ratio, download], without exploration noise.

    head: [..., N + 2] (N target logits, ratio logit, download logit); server_mask: [..., N] bool.
    With `generator` the target is a Gumbel-softmax sample (the categorical's reparameterised sample,
    as in the references' actor loss), else its argmax; the ratio and the flag are deterministic.
    Without `allow_download` (MADDPG-NoModel) the flag is always 1. Returns [..., N + 2] with gradients
    through every part the actor decides (straight-through for the discrete ones).
    """
    n = head.shape[-1] - 2
    logits = head[..., :n].masked_fill(~server_mask, -1e9)
    noise = None if generator is None else gumbel_noise(logits.shape, generator, head.device, head.dtype)
    target = straight_through_onehot(logits, hp.gumbel_temperature, noise)
    ratio = torch.sigmoid(head[..., n])
    download = straight_through_flag(head[..., n + 1]) if allow_download else torch.ones_like(ratio)
    return torch.cat([target, ratio.unsqueeze(-1), download.unsqueeze(-1)], dim=-1)


def explore_noise(
    vector: torch.Tensor, scale: float, allow_download: bool, hp: MADDPGConfig, generator: torch.Generator
) -> torch.Tensor:
    """Exploration of `act`: Gaussian noise of std ratio_noise * scale on the ratio (clamped to [0, 1]) and
    flips of the download flag with probability download_epsilon * scale.  [..., N + 2] -> [..., N + 2]"""
    n = vector.shape[-1] - 2
    out = vector.clone()
    jitter = torch.randn(vector.shape[:-1], generator=generator, dtype=vector.dtype, device=generator.device)
    out[..., n] = (vector[..., n] + hp.ratio_noise * scale * jitter.to(vector.device)).clamp(0.0, 1.0)
    flip = torch.rand(vector.shape[:-1], generator=generator, dtype=vector.dtype, device=generator.device).to(vector.device)
    if allow_download:
        out[..., n + 1] = torch.where(flip < hp.download_epsilon * scale, 1.0 - vector[..., n + 1], vector[..., n + 1])
    return out


def to_engine_action(vector: torch.Tensor, n_servers: int) -> Action:
    """Action vector [B, M, N + 2] -> the engine's Action ([Wang 2025]'s target and ratio)."""
    target = vector[..., :n_servers].argmax(dim=-1)
    ratio = vector[..., n_servers].clamp(0.0, 1.0)
    download = vector[..., n_servers + 1] > 0.5
    return Action.target_ratio(target, ratio, n_servers, download)


# -- the learner -----------------------------------------------------------------------------------------


class MADDPG:
    """M actors (or one shared, `share_actor`) and M critics (with targets) for one EdgeConfig; `variant` picks
    the ablation."""

    def __init__(
        self,
        config: EdgeConfig,
        hp: MADDPGConfig,
        seed: int,
        device: str | torch.device = "cpu",
        dtype: torch.dtype = torch.float32,
    ) -> None:
        self.config, self.hp = config, hp
        self.device, self.dtype = torch.device(device), dtype
        self.model_aware = hp.variant != Algorithm.MADDPG_NOMODEL
        self.allow_download = hp.variant != Algorithm.MADDPG_NOMODEL
        self.centralized = hp.variant != Algorithm.SADDPG
        m, n = config.n_devices, config.n_servers
        self.obs_dim, self.action_dim = observation_size(config, self.model_aware), n + 2
        init = torch.Generator().manual_seed(seed)
        actors = 1 if hp.share_actor else m
        self.actor = AgentMLP(actors, self.obs_dim, hp.hidden, self.action_dim, init, self.device, dtype, out_scale=0.1)
        last = self.actor.layers[-1]
        assert isinstance(last, AgentLinear)
        with torch.no_grad():
            last.bias[..., n + 1] = hp.download_bias if self.allow_download else 0.0
        self.critic = Critics(config, self.model_aware, self.centralized, hp.hidden, self.action_dim, init, self.device, dtype)
        self.actor_target = AgentMLP(actors, self.obs_dim, hp.hidden, self.action_dim, init, self.device, dtype)
        self.critic_target = Critics(
            config, self.model_aware, self.centralized, hp.hidden, self.action_dim, init, self.device, dtype
        )
        self.actor_target.load_state_dict(self.actor.state_dict())
        self.critic_target.load_state_dict(self.critic.state_dict())
        self.actor_optim = torch.optim.Adam(self.actor.parameters(), lr=hp.actor_lr)
        self.critic_optim = torch.optim.Adam(self.critic.parameters(), lr=hp.critic_lr)
        self.actor_axes, self.critic_axes = _agent_axes(self.actor), _agent_axes(self.critic)
        self.updates = 0
        self.budget: int | None = None
        self._credit = 0
        self._buffer: ReplayBuffer | None = None
        self.last_losses: dict[str, float] = {}

    def new_buffer(self) -> ReplayBuffer:
        return ReplayBuffer(self.hp.buffer_size, self.config.n_devices, self.obs_dim, self.action_dim, self.device, self.dtype)

    # -- the budget -----------------------------------------------------------------------------------------

    def plan(self, updates: int, envs: int, steps: int) -> int:
        """Fix the run's budget at `updates` gradient updates; returns the episodes of `steps` steps on
        `envs` environments that fill the replay buffer to `learning_starts` and earn them."""
        if updates < 1:
            raise ValueError(f"updates must be at least 1, got {updates}")
        self.budget = updates
        # The step that fills the buffer to learning_starts already earns updates.
        warmup = math.ceil(min(self.hp.learning_starts, self.hp.buffer_size) / envs) - 1
        learning = math.ceil(updates * self.hp.transitions_per_update / envs)
        return max(1, math.ceil((warmup + learning) / steps))

    def exploration(self) -> float:
        """The scale s of the exploration noise now: 1 decaying linearly to explore_floor over the first
        explore_decay of the budget (1 throughout when no budget is planned)."""
        if self.budget is None or self.hp.explore_decay == 0:
            return 1.0 if self.budget is None else self.hp.explore_floor
        progress = min(1.0, self.updates / (self.hp.explore_decay * self.budget))
        return 1.0 + (self.hp.explore_floor - 1.0) * progress

    # -- acting -------------------------------------------------------------------------------------------

    def observe(self, engine: EdgeEngine, tasks: TaskBatch) -> torch.Tensor:
        """[B, M, obs_dim]"""
        return observe(engine, tasks, self.model_aware).to(self.dtype)

    def policy(
        self, actor: AgentMLP, obs: torch.Tensor, generator: torch.Generator | None, server_mask: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(joint action vectors [K, M, A], actor outputs [K, M, A]) of every agent.  obs [K, M, D]"""
        head = actor(obs.transpose(0, 1)).transpose(0, 1)  # [K, M, A]
        if server_mask is None:
            server_mask = torch.ones(head.shape[:-1] + (self.config.n_servers,), dtype=torch.bool, device=head.device)
        return hybrid_action(head, server_mask, self.allow_download, self.hp, generator), head

    @torch.no_grad()
    def act(
        self,
        engine: EdgeEngine,
        tasks: TaskBatch,
        generator: torch.Generator | None = None,
        server_mask: torch.Tensor | None = None,
    ) -> tuple[Action, torch.Tensor, torch.Tensor]:
        """(engine action, action vectors [B, M, A], observations [B, M, D]); explores if `generator` is given."""
        obs = self.observe(engine, tasks)
        vector, _ = self.policy(self.actor, obs, generator, server_mask)
        if generator is not None:
            vector = explore_noise(vector, self.exploration(), self.allow_download, self.hp, generator)
        return to_engine_action(vector.to(engine.view.dtype), self.config.n_servers), vector, obs

    def explore(self, engine: EdgeEngine, tasks: TaskBatch, generator: torch.Generator) -> Decision:
        """A noisy action for training; remembers observation and action vector."""
        action, vector, obs = self.act(engine, tasks, generator)
        if self._buffer is None:
            self._buffer = self.new_buffer()
        return Decision(action, tasks, torch.ones_like(tasks.size), {"obs": obs, "action": vector})

    def decide(self, engine: EdgeEngine, tasks: TaskBatch) -> tuple[Action, TaskBatch, torch.Tensor]:
        """The deterministic policy (evaluation)."""
        action, _, _ = self.act(engine, tasks, None)
        return action, tasks, torch.ones_like(tasks.size)

    def record(
        self,
        decision: Decision,
        reward: torch.Tensor,
        out: StepResult,
        engine: EdgeEngine,
        next_tasks: TaskBatch,
        generator: torch.Generator,
    ) -> None:
        """Store the B transitions (each agent's reward per `hp.reward_kind`), then take the gradient updates
        they earn (B / transitions_per_update) once `learning_starts` are stored, up to the budget."""
        next_obs = self.observe(engine, next_tasks)
        memory = decision.memory
        assert self._buffer is not None
        learned = training_reward(reward, self.hp.reward_kind).to(self.dtype)
        self._buffer.add(memory["obs"], memory["action"], learned, next_obs)
        if self._buffer.size < min(self.hp.learning_starts, self.hp.buffer_size):
            return
        self._credit += reward.shape[0]  # new transitions not yet paid for by an update
        due, self._credit = divmod(self._credit, self.hp.transitions_per_update)
        if self.budget is not None:
            due = min(due, self.budget - self.updates)
        for _ in range(due):
            self.last_losses = self.update(self._buffer, generator)

    def end_episode(self, engine: EdgeEngine, tasks: TaskBatch, generator: torch.Generator) -> None:
        """Nothing: MADDPG learns off-policy at every step."""

    # -- learning -----------------------------------------------------------------------------------------

    def update(self, buffer: ReplayBuffer, generator: torch.Generator) -> dict[str, float]:
        """One gradient step of every critic and actor, then the soft target update (seed eqs. 19-23)."""
        batch = buffer.sample(self.hp.batch_size, generator)
        critic_loss = self.critic_step(batch)
        actor_loss = self.actor_step(batch, generator)
        self.soft_update()
        self.updates += 1
        return {"critic_loss": critic_loss, "actor_loss": actor_loss}

    def critic_step(self, batch: Batch) -> float:
        with torch.no_grad():
            next_action, _ = self.policy(self.actor_target, batch.next_obs, None)
            next_q = self.critic_target(batch.next_obs, next_action)  # [M, K]
            target = batch.reward.transpose(0, 1) + self.hp.gamma * next_q  # eq. 19
        q = self.critic(batch.obs, batch.action)
        loss = ((target - q) ** 2).mean(dim=1).sum()  # eq. 20, summed over agents
        self.critic_optim.zero_grad()
        torch.autograd.backward(loss)
        _clip_per_agent(self.critic_axes, self.hp.grad_clip)
        self.critic_optim.step()
        return float(loss.item()) / self.config.n_devices

    def actor_step(self, batch: Batch, generator: torch.Generator) -> float:
        fresh, head = self.policy(self.actor, batch.obs, generator)  # Gumbel sample of the target, straight-through
        q = self.critic.with_own_action(batch.obs, batch.action, fresh)  # [M, K]
        regulariser = head.pow(2).mean(dim=(0, 2)).sum()  # sum over agents of mean(head_m^2)
        loss = -q.mean(dim=1).sum() + self.hp.logit_reg * regulariser  # eq. 21
        params = list(self.actor.parameters())
        grads = torch.autograd.grad(loss, params)  # the critics' weights get no gradient
        for param, grad in zip(params, grads, strict=True):
            param.grad = grad
        _clip_per_agent(self.actor_axes, self.hp.grad_clip)
        self.actor_optim.step()
        return float(loss.item()) / self.config.n_devices

    @torch.no_grad()
    def soft_update(self) -> None:
        """theta' <- tau theta + (1 - tau) theta' for actors and critics (eqs. 22-23)."""
        for net, target in ((self.actor, self.actor_target), (self.critic, self.critic_target)):
            for param, target_param in zip(net.parameters(), target.parameters(), strict=True):
                target_param.lerp_(param, self.hp.tau)

    # -- checkpoints ----------------------------------------------------------------------------------------

    def state(self) -> dict[str, Any]:
        return {
            "hp": self.hp.state(),
            "actor": self.actor.state_dict(),
            "critic": self.critic.state_dict(),
            "actor_target": self.actor_target.state_dict(),
            "critic_target": self.critic_target.state_dict(),
            "updates": self.updates,
        }

    def load_state(self, state: dict[str, Any]) -> None:
        for name in ("actor", "critic", "actor_target", "critic_target"):
            getattr(self, name).load_state_dict(state[name])
        self.updates = int(state["updates"])
