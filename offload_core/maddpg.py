"""MADDPG-MATO ([Wang 2025, eqs. 16-23]) and its ablations, in one readable file (CleanRL style).

Each end device (ED) is an agent with its own actor v_m(o_m) and critic Q_m. The M actors (and
critics) are held as one ensemble whose weights carry a leading agent axis, so that all agents run in
one batched matrix product: no Python loop over agents or environments.

Hybrid action of agent m (seed eq. 17): a categorical offloading target xi over the N servers
(straight-through Gumbel-softmax), a sigmoid offload ratio eta in [0, 1] (the rest runs locally) and
a binary download flag beta (straight-through threshold of a sigmoid). As a vector it is
[one-hot target (N), eta, beta], A = N + 2 numbers. A server mask [B, M, N] removes targets.

Variants:
- maddpg-mato: observations with model compatibility d, downloads allowed, centralized critics
  Q_m(o_1..o_M, a_1..a_M).
- maddpg-nomodel: no compatibility in the observation and never downloads (a miss is forwarded to
  the cloud by the server); centralized critics.
- saddpg: independent DDPG: each critic sees only its own observation and action Q_m(o_m, a_m).

Updates (seed eqs. 19-23): y = r_m + gamma Q'_m(s', a'), a' from the target actors; critic loss
(y - Q_m(s, a))^2; the actor ascends Q_m(s, a_1..v_m(o_m)..a_M) with the other agents' actions taken
from the replay batch; targets soft-updated with tau.
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
from offload_core.observations import Decision, observation_size, observe
from offload_core.replay import Batch, ReplayBuffer
from offload_core.result import StepResult
from offload_core.scenario import TaskBatch

VARIANTS: tuple[Algorithm, ...] = (Algorithm.MADDPG_MATO, Algorithm.MADDPG_NOMODEL, Algorithm.SADDPG)


@dataclass(frozen=True)
class MADDPGConfig:
    """Hyperparameters of MADDPG-MATO and its ablations ([Wang 2025] defaults where it gives them).

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
    """Width of the two hidden layers of every actor and critic."""
    updates_per_step: int = 1
    """Gradient steps per batched environment step."""
    learning_starts: int = 1024
    """Transitions stored before the first gradient step."""
    gumbel_temperature: float = 1.0
    """Temperature of the Gumbel-softmax over targets."""
    ratio_noise: float = 0.1
    """Std of the Gaussian exploration noise added to the offload ratio (clamped to [0, 1])."""
    download_epsilon: float = 0.1
    """Probability of flipping the download flag while exploring."""
    grad_clip: float = 1.0
    """Max gradient norm per update."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "variant", parse_among(VARIANTS, self.variant, "variant"))
        self.validate()

    def validate(self) -> MADDPGConfig:
        """Return self, or raise ValueError naming the first field out of range (done when built)."""
        for name in ("actor_lr", "critic_lr", "gumbel_temperature", "grad_clip"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")
        if not 0 < self.tau <= 1:
            raise ValueError(f"tau must lie in (0, 1], got {self.tau}")
        if not 0 <= self.gamma < 1:
            raise ValueError(f"gamma must lie in [0, 1), got {self.gamma}")
        for name in ("buffer_size", "batch_size", "hidden", "updates_per_step"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.learning_starts < 0:
            raise ValueError(f"learning_starts must not be negative, got {self.learning_starts}")
        if not self.ratio_noise >= 0:
            raise ValueError(f"ratio_noise must not be negative, got {self.ratio_noise}")
        if not 0 <= self.download_epsilon <= 1:
            raise ValueError(f"download_epsilon must lie in [0, 1], got {self.download_epsilon}")
        return self

    def state(self) -> dict[str, Any]:
        """The fields as plain values (names as strings), for checkpoints."""
        return {**asdict(self), "variant": self.variant.value}


# -- ensembles: one network per agent, batched over agents --------------------------------------------


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
        bound = scale / math.sqrt(fan_in)
        weight = (torch.rand((agents, fan_in, fan_out), generator=generator, dtype=dtype) * 2 - 1) * bound
        self.weight = nn.Parameter(weight.to(device))
        self.bias = nn.Parameter(torch.zeros((agents, 1, fan_out), device=device, dtype=dtype))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # [M, K, in] -> [M, K, out]
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
    head: torch.Tensor, server_mask: torch.Tensor, allow_download: bool, hp: MADDPGConfig, generator: torch.Generator | None
) -> torch.Tensor:
    """Actor output -> action vector [one-hot target, ratio, download]; noise when `generator` is given.

    head: [..., N + 2] (N target logits, ratio logit, download logit); server_mask: [..., N] bool.
    Returns [..., N + 2] with gradients through every part (straight-through for the discrete ones).
    """
    n = head.shape[-1] - 2
    logits = head[..., :n].masked_fill(~server_mask, -1e9)
    noise = None if generator is None else gumbel_noise(logits.shape, generator, head.device, head.dtype)
    target = straight_through_onehot(logits, hp.gumbel_temperature, noise)
    ratio = torch.sigmoid(head[..., n])
    download = straight_through_flag(head[..., n + 1])
    if generator is not None:
        jitter = torch.randn(ratio.shape, generator=generator, dtype=ratio.dtype, device=generator.device).to(ratio.device)
        ratio = (ratio + hp.ratio_noise * jitter).clamp(0.0, 1.0)
        flip = torch.rand(download.shape, generator=generator, dtype=ratio.dtype, device=generator.device).to(ratio.device)
        download = torch.where(flip < hp.download_epsilon, 1.0 - download, download)
    if not allow_download:
        download = torch.zeros_like(download)
    return torch.cat([target, ratio.unsqueeze(-1), download.unsqueeze(-1)], dim=-1)


def to_engine_action(vector: torch.Tensor, n_servers: int) -> Action:
    """Action vector [B, M, N + 2] -> the engine's Action ([Wang 2025]'s target and ratio)."""
    target = vector[..., :n_servers].argmax(dim=-1)
    ratio = vector[..., n_servers].clamp(0.0, 1.0)
    download = vector[..., n_servers + 1] > 0.5
    return Action.target_ratio(target, ratio, n_servers, download)


# -- the learner -----------------------------------------------------------------------------------------


class MADDPG:
    """M actors and M critics (with targets) for one EdgeConfig; `variant` picks the ablation."""

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
        critic_in = m * (self.obs_dim + self.action_dim) if self.centralized else self.obs_dim + self.action_dim
        self.actor = AgentMLP(m, self.obs_dim, hp.hidden, self.action_dim, init, self.device, dtype, out_scale=0.1)
        self.critic = AgentMLP(m, critic_in, hp.hidden, 1, init, self.device, dtype)
        self.actor_target = AgentMLP(m, self.obs_dim, hp.hidden, self.action_dim, init, self.device, dtype)
        self.critic_target = AgentMLP(m, critic_in, hp.hidden, 1, init, self.device, dtype)
        self.actor_target.load_state_dict(self.actor.state_dict())
        self.critic_target.load_state_dict(self.critic.state_dict())
        self.actor_optim = torch.optim.Adam(self.actor.parameters(), lr=hp.actor_lr)
        self.critic_optim = torch.optim.Adam(self.critic.parameters(), lr=hp.critic_lr)
        self.updates = 0
        self._buffer: ReplayBuffer | None = None
        self.last_losses: dict[str, float] = {}

    def new_buffer(self) -> ReplayBuffer:
        return ReplayBuffer(self.hp.buffer_size, self.config.n_devices, self.obs_dim, self.action_dim, self.device, self.dtype)

    # -- acting -------------------------------------------------------------------------------------------

    def observe(self, engine: EdgeEngine, tasks: TaskBatch) -> torch.Tensor:
        """[B, M, obs_dim]"""
        return observe(engine, tasks, self.model_aware).to(self.dtype)

    def policy(
        self, actor: AgentMLP, obs: torch.Tensor, generator: torch.Generator | None, server_mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Joint action vectors of every agent.  obs [K, M, D] -> [K, M, A]"""
        head = actor(obs.transpose(0, 1)).transpose(0, 1)  # [K, M, A]
        if server_mask is None:
            server_mask = torch.ones(head.shape[:-1] + (self.config.n_servers,), dtype=torch.bool, device=head.device)
        return hybrid_action(head, server_mask, self.allow_download, self.hp, generator)

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
        vector = self.policy(self.actor, obs, generator, server_mask)
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
        """Store the B transitions, then take `updates_per_step` gradient steps once enough are stored."""
        next_obs = self.observe(engine, next_tasks)
        memory = decision.memory
        assert self._buffer is not None
        self._buffer.add(memory["obs"], memory["action"], reward.to(self.dtype), next_obs)
        if self._buffer.size >= min(self.hp.learning_starts, self.hp.buffer_size):
            for _ in range(self.hp.updates_per_step):
                self.last_losses = self.update(self._buffer, generator)

    def end_episode(self, engine: EdgeEngine, tasks: TaskBatch, generator: torch.Generator) -> None:
        """Nothing: MADDPG learns off-policy at every step."""

    # -- learning -----------------------------------------------------------------------------------------

    def critic_input(self, obs: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        """Each agent's critic input.  obs [K, M, D], action [K, M, A] -> [M, K, in]"""
        k, m = obs.shape[0], obs.shape[1]
        if not self.centralized:
            return torch.cat([obs, action], dim=-1).transpose(0, 1)
        joint = torch.cat([obs.reshape(k, -1), action.reshape(k, -1)], dim=-1)  # [K, M (D + A)]
        return joint.unsqueeze(0).expand(m, k, joint.shape[-1])

    def actor_critic_input(self, obs: torch.Tensor, stored: torch.Tensor, fresh: torch.Tensor) -> torch.Tensor:
        """Agent m's critic input with its own action fresh and the others' stored.  [M, K, in]"""
        k, m = obs.shape[0], obs.shape[1]
        if not self.centralized:
            return torch.cat([obs, fresh], dim=-1).transpose(0, 1)
        own = torch.eye(m, dtype=torch.bool, device=obs.device).view(m, 1, m, 1)  # [M(critic), 1, M(slot), 1]
        actions = torch.where(own, fresh.unsqueeze(0), stored.unsqueeze(0))  # [M, K, M, A]
        flat_obs = obs.reshape(1, k, -1).expand(m, k, -1)
        return torch.cat([flat_obs, actions.reshape(m, k, -1)], dim=-1)

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
            next_action = self.policy(self.actor_target, batch.next_obs, None)
            next_q = self.critic_target(self.critic_input(batch.next_obs, next_action)).squeeze(-1)  # [M, K]
            target = batch.reward.transpose(0, 1) + self.hp.gamma * next_q  # eq. 19
        q = self.critic(self.critic_input(batch.obs, batch.action)).squeeze(-1)
        loss = ((target - q) ** 2).mean(dim=1).sum()  # eq. 20, summed over agents
        self.critic_optim.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(self.critic.parameters(), self.hp.grad_clip)
        self.critic_optim.step()
        return float(loss.item()) / self.config.n_devices

    def actor_step(self, batch: Batch, generator: torch.Generator) -> float:
        fresh = self.policy(self.actor, batch.obs, generator)  # Gumbel sample, straight-through gradients
        q = self.critic(self.actor_critic_input(batch.obs, batch.action, fresh)).squeeze(-1)  # [M, K]
        loss = -q.mean(dim=1).sum()  # eq. 21
        self.actor_optim.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(self.actor.parameters(), self.hp.grad_clip)
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
