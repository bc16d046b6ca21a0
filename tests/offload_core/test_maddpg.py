"""MADDPG-MATO and its ablations: actions, gradients, critics, targets, exploration, rewards, variants, and
that it learns."""

from __future__ import annotations

import math

import pytest
import torch

from offload_core.config import preset
from offload_core.engine import EdgeEngine
from offload_core.maddpg import (
    MADDPG,
    MADDPGConfig,
    _clip_per_agent,
    explore_noise,
    hybrid_action,
    straight_through_onehot,
)
from offload_core.observations import feature_split, observation_size, observe, step_reward
from offload_core.replay import ReplayBuffer
from offload_core.training import Stream, TrainSettings, evaluate, held_out_streams, make_agent, stream_seed, train

torch.set_num_threads(1)


def _setup(variant: str = "maddpg-mato", devices: int = 4, envs: int = 8, **hp: object):
    config = preset("mato", n_devices=devices).config
    engine = EdgeEngine(config, envs)
    engine.reset(3)
    tasks = engine.sample_tasks(torch.Generator().manual_seed(4))
    return config, engine, tasks, MADDPG(config, MADDPGConfig(variant=variant, batch_size=16, **hp), seed=0)  # type: ignore[arg-type]


def _filled_buffer(agent: MADDPG, engine: EdgeEngine, tasks, rewards: torch.Tensor | None = None) -> ReplayBuffer:
    buffer = ReplayBuffer(64, agent.config.n_devices, agent.obs_dim, agent.action_dim, agent.device, agent.dtype)
    _, vector, obs = agent.act(engine, tasks, torch.Generator().manual_seed(0))
    buffer.add(obs, vector, -torch.ones(obs.shape[:2]) if rewards is None else rewards, obs)
    return buffer


def test_the_actors_action_is_a_valid_split_with_a_ratio_in_bounds() -> None:
    config, engine, tasks, agent = _setup()
    action, vector, _ = agent.act(engine, tasks, torch.Generator().manual_seed(0))
    assert action.split.shape == (8, 4, config.n_servers + 2)
    assert bool((action.split >= 0).all())
    assert torch.allclose(action.split.sum(-1), torch.ones(8, 4))
    target = vector[..., : config.n_servers]
    assert torch.equal(target.sum(-1), torch.ones(8, 4)) and bool(((target == 0) | (target == 1)).all())
    ratio = vector[..., config.n_servers]
    assert bool(((ratio >= 0) & (ratio <= 1)).all())
    engine.step(tasks, action)  # the engine accepts it


def test_gradients_flow_through_the_straight_through_gumbel_softmax() -> None:
    logits = torch.tensor([[0.2, -0.1, 0.4]], requires_grad=True)
    onehot = straight_through_onehot(logits, 1.0, torch.tensor([[0.0, 0.0, 0.0]]))
    assert onehot.tolist() == [[0.0, 0.0, 1.0]]
    (onehot * torch.tensor([1.0, 2.0, 3.0])).sum().backward()
    assert logits.grad is not None and float(logits.grad.abs().sum()) > 0


def test_gradients_reach_every_part_of_the_hybrid_head() -> None:
    head = torch.zeros((2, 3, 5), requires_grad=True)
    mask = torch.ones((2, 3, 3), dtype=torch.bool)
    vector = hybrid_action(head, mask, True, MADDPGConfig(), torch.Generator().manual_seed(1))
    (vector * torch.arange(1.0, 6.0)).sum().backward()
    assert head.grad is not None
    assert bool((head.grad.abs().sum(dim=(0, 1)) > 0).all())


def test_masked_servers_are_never_chosen() -> None:
    head = torch.randn((64, 4, 5), generator=torch.Generator().manual_seed(2))
    mask = torch.ones((64, 4, 3), dtype=torch.bool)
    mask[..., 1] = False
    vector = hybrid_action(head, mask, True, MADDPGConfig(), torch.Generator().manual_seed(3))
    assert float(vector[..., 1].sum()) == 0.0


# -- (1) exploration noise is in act() only ---------------------------------------------------------------


def test_the_actor_loss_sees_the_ratio_and_the_download_flag_without_noise() -> None:
    """The action the actor loss differentiates (hybrid_action with a generator: the target is a Gumbel
    sample, as in the references) has exactly the deterministic ratio and flag, whatever the noise draw;
    no ratio jitter or flag flip can give a sample the wrong-sign gradient."""
    head = torch.randn((256, 4, 5), generator=torch.Generator().manual_seed(5))
    mask = torch.ones((256, 4, 3), dtype=torch.bool)
    plain = hybrid_action(head, mask, True, MADDPGConfig(), None)
    for seed in range(5):
        sampled = hybrid_action(head, mask, True, MADDPGConfig(), torch.Generator().manual_seed(seed))
        assert torch.equal(sampled[..., 3:], plain[..., 3:])
    assert torch.equal(plain[..., 4], (head[..., 4] > 0).float())


def test_act_explores_with_ratio_noise_and_download_flips_at_the_scheduled_rate() -> None:
    config, engine, tasks, agent = _setup(envs=256)
    _, plain, _ = agent.act(engine, tasks, None)
    _, noisy, _ = agent.act(engine, tasks, torch.Generator().manual_seed(1))
    n = config.n_servers
    assert float((noisy[..., n] - plain[..., n]).abs().mean()) > 0.05  # std 0.2 noise at the start
    flipped = float((noisy[..., n + 1] != plain[..., n + 1]).double().mean())
    assert flipped == pytest.approx(agent.hp.download_epsilon, abs=0.02)
    vector = plain.clone()
    quiet = explore_noise(vector, 0.0, True, agent.hp, torch.Generator().manual_seed(2))
    assert torch.equal(quiet, vector)


# -- (2) exploration decays; the download logit does not start at a coin flip -------------------------------


def test_exploration_decays_linearly_over_the_first_half_of_the_budget_to_its_floor() -> None:
    _, _, _, agent = _setup()
    assert agent.exploration() == 1.0  # no budget planned: full exploration
    agent.plan(1000, envs=16, steps=25)
    floor = agent.hp.explore_floor
    for updates, expected in ((0, 1.0), (250, 1 + (floor - 1) * 0.5), (500, floor), (900, floor)):
        agent.updates = updates
        assert agent.exploration() == pytest.approx(expected)


def test_the_untrained_actor_downloads_with_probability_one_in_ten() -> None:
    """The download logit starts at -log 9: sigmoid 0.1, so the deterministic flag starts unset (a download
    in `mato` costs 1.8-5 s and about 15 J and queues its server) and its gradient (0.09 of the logit's)
    is far from saturated; exploring, the flag is set for download_epsilon of the parts."""
    _, engine, tasks, agent = _setup(envs=256)
    with torch.no_grad():
        head = agent.actor(agent.observe(engine, tasks).transpose(0, 1)).transpose(0, 1)
    assert float(torch.sigmoid(head[..., -1]).mean()) == pytest.approx(0.1, abs=0.01)
    _, vector, _ = agent.act(engine, tasks, None)
    assert bool((vector[..., -1] == 0).all())
    action, _, _ = agent.act(engine, tasks, torch.Generator().manual_seed(3))
    assert float(action.download.double().mean()) == pytest.approx(agent.hp.download_epsilon, abs=0.02)


# -- (3) the team reward of eq. 18 -------------------------------------------------------------------------


@pytest.mark.parametrize("reward", ["team", "team-sum", "agent"])
def test_each_agent_learns_from_the_team_reward_or_optionally_its_own(reward: str) -> None:
    """team (the default): eq. 18's sum over devices divided by M, the same for every agent; team-sum:
    the sum; agent: each its own task's reward."""
    config, engine, tasks, agent = _setup(reward=reward)
    generator = torch.Generator().manual_seed(0)
    decision = agent.explore(engine, tasks, generator)
    out = engine.step(tasks, decision.action)
    per_task = step_reward(config, out)  # [B, M]
    agent.record(decision, per_task, out, engine, engine.sample_tasks(generator), generator)
    assert agent._buffer is not None
    stored = agent._buffer.reward[:8]
    expected = {
        "team": per_task.mean(-1, keepdim=True).expand(-1, 4),
        "team-sum": per_task.sum(-1, keepdim=True).expand(-1, 4),
        "agent": per_task,
    }[reward]
    assert torch.allclose(stored, expected)


def test_the_team_reward_is_the_default_of_maddpg_and_the_own_reward_of_saddpgs_independent_devices() -> None:
    assert MADDPGConfig().reward_kind == "team" and MADDPGConfig(variant="maddpg-nomodel").reward_kind == "team"
    assert MADDPGConfig(variant="saddpg").reward_kind == "agent"
    assert MADDPGConfig(variant="saddpg", reward="team").reward_kind == "team"


# -- (4) MADDPG-NoModel: no compatibility, no download decision ---------------------------------------------


def test_nomodel_sees_no_compatibility_and_always_downloads_even_while_exploring() -> None:
    config, engine, tasks, agent = _setup("maddpg-nomodel")
    aware = MADDPG(config, MADDPGConfig(), seed=0)
    assert agent.obs_dim == observation_size(config, True) - config.n_servers == aware.obs_dim - config.n_servers
    for seed in range(5):
        action, vector, _ = agent.act(engine, tasks, torch.Generator().manual_seed(seed))
        assert bool(action.download.all()) and bool((vector[..., -1] == 1).all())
    action, _, _ = agent.act(engine, tasks, None)
    assert bool(action.download.all())


# -- the critics ------------------------------------------------------------------------------------------


def test_the_centralized_critic_reads_the_global_state_once() -> None:
    """The features every device sees alike (servers' compute and load, servers' and cloud's positions)
    are equal across devices, so the critic's input holds them once beside each device's own features
    and every action: S + M (P + A) numbers instead of M (D + A)."""
    config, engine, tasks, agent = _setup()
    own, shared = feature_split(config)
    obs = observe(engine, tasks)
    assert torch.equal(obs[..., shared], obs[:, :1, shared].expand(-1, config.n_devices, -1))
    m, a = config.n_devices, agent.action_dim
    assert agent.critic.first.weight.shape[0] == len(shared) + m * (len(own) + a)
    assert len(shared) + len(own) == agent.obs_dim


@pytest.mark.parametrize("variant", ["maddpg-mato", "saddpg"])
def test_a_critic_with_one_fresh_action_equals_the_critic_on_the_replaced_joint_action(variant: str) -> None:
    """with_own_action computes Q_m(s, a_1..fresh_m..a_M) through the first layer's change by the own
    action (the rest of the input is shared); it must equal the plain critic on that joint action."""
    config, engine, tasks, agent = _setup(variant)
    obs = agent.observe(engine, tasks)
    g = torch.Generator().manual_seed(9)
    stored, _ = agent.policy(agent.actor, obs, g)
    fresh, _ = agent.policy(agent.actor, obs + 0.3, g)
    with torch.no_grad():
        for layer in (agent.critic.second, agent.critic.last):
            layer.bias.normal_(generator=g)
    combined = agent.critic.with_own_action(obs, stored, fresh)  # [M, K]
    for m in range(config.n_devices):
        joint = stored.clone()
        joint[:, m] = fresh[:, m]
        torch.testing.assert_close(combined[m], agent.critic(obs, joint)[m], atol=1e-5, rtol=1e-5)


def test_saddpg_critics_see_only_their_own_observation_and_action() -> None:
    config, _, _, agent = _setup("saddpg")
    assert agent.critic.first.weight.shape == (config.n_devices, agent.obs_dim + agent.action_dim, agent.hp.hidden)


# -- updates ----------------------------------------------------------------------------------------------


def test_soft_update_moves_targets_by_tau() -> None:
    _, _, _, agent = _setup()
    before = agent.actor_target.layers[0].weight.detach().clone()
    with torch.no_grad():
        agent.actor.layers[0].weight.add_(1.0)
    online = agent.actor.layers[0].weight.detach().clone()
    agent.soft_update()
    expected = 0.01 * online + 0.99 * before
    assert torch.allclose(agent.actor_target.layers[0].weight, expected, atol=1e-6)


def test_an_update_changes_actors_and_critics() -> None:
    _, engine, tasks, agent = _setup()
    buffer = _filled_buffer(agent, engine, tasks)
    actor, critic = agent.actor.layers[0].weight.clone(), agent.critic.first.weight.clone()
    losses = agent.update(buffer, torch.Generator().manual_seed(1))
    assert set(losses) == {"critic_loss", "actor_loss"}
    assert not torch.equal(actor, agent.actor.layers[0].weight)
    assert not torch.equal(critic, agent.critic.first.weight)


def test_a_shared_actor_is_one_network_for_every_device() -> None:
    config, _, _, separate = _setup()
    _, _, _, shared = _setup(share_actor=True)
    count = sum(p.numel() for p in shared.actor.parameters())
    assert count * config.n_devices == sum(p.numel() for p in separate.actor.parameters())


def test_a_shared_actor_acts_as_the_same_network_copied_to_every_device() -> None:
    """The reference: the shared layer's weights copied into M per-device layers, applied by baddbmm."""
    _, engine, tasks, agent = _setup(share_actor=True)
    obs = agent.observe(engine, tasks).transpose(0, 1)  # [M, B, D]
    x = obs
    for index, layer in enumerate(agent.actor.layers):
        m = obs.shape[0]
        copied = torch.baddbmm(layer.bias.expand(m, -1, -1), x, layer.weight.expand(m, -1, -1))
        x = torch.relu(copied) if index < len(agent.actor.layers) - 1 else copied
    torch.testing.assert_close(agent.actor(obs), x)


def test_an_update_of_a_shared_actor_keeps_one_network() -> None:
    _, engine, tasks, agent = _setup(share_actor=True)
    buffer = _filled_buffer(agent, engine, tasks)
    before = agent.actor.layers[0].weight.clone()
    agent.update(buffer, torch.Generator().manual_seed(1))
    assert agent.actor.layers[0].weight.shape[0] == 1
    assert not torch.equal(before, agent.actor.layers[0].weight)


def test_the_actor_step_leaves_the_critics_gradients_alone() -> None:
    _, engine, tasks, agent = _setup()
    batch = _filled_buffer(agent, engine, tasks).sample(16, torch.Generator().manual_seed(1))
    agent.critic_optim.zero_grad(set_to_none=True)
    agent.actor_step(batch, torch.Generator().manual_seed(2))
    assert all(p.grad is None for p in agent.critic.parameters())


def test_each_agents_gradient_is_clipped_to_its_own_norm() -> None:
    """Per-agent clipping (openai/maddpg clips each agent's gradients to norm 0.5): a large gradient of
    agent 0 is scaled to 0.5 without shrinking agent 1's small one."""
    weight = torch.nn.Parameter(torch.zeros(2, 3, 4))
    shared = torch.nn.Parameter(torch.zeros(3, 2, 4))  # agent axis 1, as SharedInputLinear's weight
    weight.grad = torch.stack([torch.full((3, 4), 10.0), torch.full((3, 4), 0.01)])
    shared.grad = torch.zeros(3, 2, 4)
    shared.grad[:, 0] = 10.0
    _clip_per_agent([(weight, 0), (shared, 1)], 0.5)
    norm0 = math.sqrt(float(weight.grad[0].pow(2).sum() + shared.grad[:, 0].pow(2).sum()))
    assert norm0 == pytest.approx(0.5, rel=1e-4)
    assert torch.allclose(weight.grad[1], torch.full((3, 4), 0.01))


def test_the_logit_regulariser_shrinks_the_actors_outputs_when_the_critic_is_flat() -> None:
    """With a critic whose output ignores its input, the actor loss is the regulariser alone
    (1e-3 mean(head^2), openai/maddpg and maddpg-pytorch): an actor step shrinks the outputs."""
    _, engine, tasks, agent = _setup()
    batch = _filled_buffer(agent, engine, tasks).sample(16, torch.Generator().manual_seed(1))
    with torch.no_grad():
        agent.critic.last.weight.zero_()

    def size() -> float:
        with torch.no_grad():
            return float(agent.actor(batch.obs.transpose(0, 1)).pow(2).mean())

    before = size()
    agent.actor_step(batch, torch.Generator().manual_seed(2))
    assert size() < before


def test_the_replay_buffer_keeps_the_newest_transitions() -> None:
    buffer = ReplayBuffer(5, 1, 1, 1, torch.device("cpu"), torch.float32)
    for start in (0, 3):
        values = torch.arange(start, start + 3, dtype=torch.float32).view(3, 1, 1)
        buffer.add(values, values, values.view(3, 1), values)
    assert buffer.size == 5
    assert sorted(buffer.obs.flatten().tolist()) == [1.0, 2.0, 3.0, 4.0, 5.0]


# -- learning: the trained policy against its own start and Random ----------------------------------------

SMALL = preset("mato", n_devices=4).config
# Small, fast runs (batch 64, not the paper's 1024) that start from downloading every miss (the download
# logit's bias +log 9, sigmoid 0.9): what they must learn is MADDPG-MATO's own decision, to skip downloads.
FAST = MADDPGConfig(batch_size=64, learning_starts=64, buffer_size=2000, transitions_per_update=8, download_bias=math.log(9.0))
SEEDS = (0, 1, 2)
UPDATES = 300  # 8 environments: 300 updates in 12 episodes of 25 steps, a few seconds per seed on one core
EVAL_ENVS, EVAL_STEPS = 16, 25


@torch.no_grad()
def held_out_actions(agent: MADDPG, seed: int) -> dict[str, float]:
    """Mean offload ratio and download flag of the deterministic actor on the held-out streams `evaluate` uses."""
    topology_seed, task_seed = held_out_streams(seed)
    engine = EdgeEngine(SMALL, EVAL_ENVS)
    engine.reset(topology_seed)
    stream = torch.Generator().manual_seed(task_seed)
    ratio = download = 0.0
    for _ in range(EVAL_STEPS):
        tasks = engine.sample_tasks(stream)
        action, vector, _ = agent.act(engine, tasks, None)
        ratio += float(vector[..., SMALL.n_servers].mean()) / EVAL_STEPS
        download += float(vector[..., SMALL.n_servers + 1].mean()) / EVAL_STEPS
        engine.step(tasks, action)
    return {"ratio": ratio, "download": download}


@pytest.fixture(scope="module")
def learning() -> dict[int, dict]:
    """Per seed: held-out metrics and actions of the untrained actor (the run's start), the trained one,
    and Random."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as at import: an earlier numba kernel in this process may have changed it
    runs = {}
    for seed in SEEDS:
        result = train(SMALL, TrainSettings(algo="maddpg-mato", envs=8, updates=UPDATES, steps=25, seed=seed), hp=FAST)
        untrained = make_agent("maddpg-mato", SMALL, stream_seed(seed, Stream.NETWORK), hp=FAST)  # the run's start
        runs[seed] = {
            "updates": result.agent.updates,
            "untrained": evaluate(SMALL, "maddpg-mato", untrained, EVAL_ENVS, EVAL_STEPS, seed),
            "trained": evaluate(SMALL, "maddpg-mato", result.agent, EVAL_ENVS, EVAL_STEPS, seed),
            "random": evaluate(SMALL, "random", None, EVAL_ENVS, EVAL_STEPS, seed),
            "untrained_actions": held_out_actions(untrained, seed),
            "trained_actions": held_out_actions(result.agent, seed),
        }
    torch.set_num_threads(threads)
    return runs


def test_training_makes_exactly_its_budget_of_updates(learning) -> None:
    assert all(learning[seed]["updates"] == UPDATES for seed in SEEDS)


def test_a_trained_maddpg_mato_policy_learns_to_skip_downloads_and_beats_its_untrained_actor(learning) -> None:
    """In `mato` a download costs 1.8-5 s and about 15 J and queues its server, a skipped one fails the part
    (penalty 1) at the cost of its upload: the actor that starts downloading every miss (flag 1.0 on
    held-out streams) learns to skip (flag 0.0 / 0.0 / 0.05; its ratio 0.5 -> 0.76 / 0.95 / 0.91) and
    gains on the eq. 18 reward per step: -5.37 -> -4.48, -4.84 -> -4.16, -4.96 -> -4.17. (Started from
    not downloading, the default, 300 to 1,000 such small updates do not beat the untrained actor:
    -4.26 -> -4.39, -4.08 -> -3.98, -4.20 -> -4.21 at 1,000; see docs/learners.md.)"""
    gains = [learning[seed]["trained"]["reward"] - learning[seed]["untrained"]["reward"] for seed in SEEDS]
    assert all(gain > 0.15 for gain in gains), gains
    assert sum(gains) / len(gains) > 0.4, gains
    for seed in SEEDS:
        before, after = learning[seed]["untrained_actions"], learning[seed]["trained_actions"]
        assert before["download"] > 0.9 and after["download"] < 0.3, (seed, before, after)


def test_a_trained_maddpg_mato_policy_beats_random(learning) -> None:
    """Trained -4.48 / -4.16 / -4.17 against Random's -5.81 / -5.29 / -5.44 on the same held-out streams."""
    for seed in SEEDS:
        assert learning[seed]["trained"]["reward"] > learning[seed]["random"]["reward"] + 0.5, seed
