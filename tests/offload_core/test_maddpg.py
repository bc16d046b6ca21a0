"""MADDPG-MATO and its ablations: actions, gradients, targets, masks, variants."""

from __future__ import annotations

import torch

from offload_core.config import preset
from offload_core.engine import EdgeEngine
from offload_core.maddpg import MADDPG, MADDPGConfig, hybrid_action, straight_through_onehot
from offload_core.observations import observation_size
from offload_core.replay import ReplayBuffer

torch.set_num_threads(1)


def _setup(variant: str = "maddpg-mato", devices: int = 4, envs: int = 8):
    config = preset("mato", n_devices=devices).config
    engine = EdgeEngine(config, envs)
    engine.reset(3)
    tasks = engine.sample_tasks(torch.Generator().manual_seed(4))
    return config, engine, tasks, MADDPG(config, MADDPGConfig(variant=variant, batch_size=16), seed=0)


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
    config, engine, tasks, agent = _setup()
    buffer = ReplayBuffer(64, 4, agent.obs_dim, agent.action_dim, agent.device, agent.dtype)
    _, vector, obs = agent.act(engine, tasks, torch.Generator().manual_seed(0))
    buffer.add(obs, vector, -torch.ones(8, 4), obs)
    actor, critic = agent.actor.layers[0].weight.clone(), agent.critic.layers[0].weight.clone()
    losses = agent.update(buffer, torch.Generator().manual_seed(1))
    assert set(losses) == {"critic_loss", "actor_loss"}
    assert not torch.equal(actor, agent.actor.layers[0].weight)
    assert not torch.equal(critic, agent.critic.layers[0].weight)


def test_nomodel_observation_has_no_compatibility_features_and_never_downloads() -> None:
    config, engine, tasks, agent = _setup("maddpg-nomodel")
    aware = MADDPG(config, MADDPGConfig(), seed=0)
    assert agent.obs_dim == observation_size(config, True) - config.n_servers == aware.obs_dim - config.n_servers
    for seed in range(5):
        action, vector, _ = agent.act(engine, tasks, torch.Generator().manual_seed(seed))
        assert not bool(action.download.any()) and float(vector[..., -1].abs().sum()) == 0.0


def test_saddpg_critics_see_only_their_own_observation_and_action() -> None:
    config, _, _, agent = _setup("saddpg")
    central = MADDPG(config, MADDPGConfig(), seed=0)
    assert agent.critic.layers[0].weight.shape[1] == agent.obs_dim + agent.action_dim
    assert central.critic.layers[0].weight.shape[1] == config.n_devices * (central.obs_dim + central.action_dim)


def test_the_replay_buffer_keeps_the_newest_transitions() -> None:
    buffer = ReplayBuffer(5, 1, 1, 1, torch.device("cpu"), torch.float32)
    for start in (0, 3):
        values = torch.arange(start, start + 3, dtype=torch.float32).view(3, 1, 1)
        buffer.add(values, values, values.view(3, 1), values)
    assert buffer.size == 5
    assert sorted(buffer.obs.flatten().tolist()) == [1.0, 2.0, 3.0, 4.0, 5.0]
