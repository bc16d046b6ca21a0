"""Placement of the market's tasks on the chosen ESP's servers (`market.flows.Placement`).

The hand-derived cases use a stub view (the state a scheduler reads) with distances, caches and
queues set by hand, and the rules as the core documents them (`offload_core.schedulers`): edge is
the nearest server, greedy the nearest that holds the task's model (else local), least-loaded the
least backlog counting this step's own work, parallel-split shares in proportion to 1 / (1 +
backlog) over the model's holders. On the real engine, the market's placement with a single ESP
that runs every server is the core's scheduler itself.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch

from market.flows import Placement, esp_servers, load_placement
from market.simulation import SimulationConfig, build_engine, run_dynamics
from offload_core.config import preset
from offload_core.engine import Action, EdgeEngine
from offload_core.names import Backend, SchedulerName
from offload_core.scenario import TaskBatch
from offload_core.schedulers import scheduler

N = 4  # two ESPs of two servers: ESP 0 runs servers 0 and 1, ESP 1 runs servers 2 and 3
ESP0, ESP1 = esp_servers(0, 2, N), esp_servers(1, 2, N)


@dataclass
class StubView:
    """What a scheduler reads (`EngineView`), set by hand: one environment, M devices, N servers."""

    distance: torch.Tensor  # [1, M, N]
    cache: torch.Tensor  # [1, N, I]
    busy_until: torch.Tensor  # [1, N]
    time: float = 20.0
    batch: int = 1
    device: torch.device = torch.device("cpu")
    dtype: torch.dtype = torch.float64
    backend: Backend = Backend.TORCH
    concurrent: bool = False
    steps: int = 1

    def __post_init__(self) -> None:
        self.distance, self.busy_until = self.distance.double(), self.busy_until.double()

    @property
    def config(self):  # type: ignore[no-untyped-def]
        return preset("mato", n_devices=self.distance.shape[1], n_servers=N, n_models=self.cache.shape[2]).config

    @property
    def server_freq(self) -> torch.Tensor:
        return torch.full((1, N), 7e9, dtype=torch.float64)


@dataclass
class StubEngine:
    view: StubView


def tasks_of(models: list[int], sizes: list[float] | None = None) -> TaskBatch:
    m = len(models)
    size = torch.tensor([sizes or [8e7] * m], dtype=torch.float64)
    ones = torch.ones((1, m), dtype=torch.float64)
    return TaskBatch(torch.tensor([models]), size, 100 * ones, 20 * ones, 0 * ones)


def placed(name: str, view: StubView, tasks: TaskBatch, servers: list[torch.Tensor]) -> torch.Tensor:
    """The split [M, N + 2] (local, servers 0..3, cloud) that placement `name` gives."""
    action = Placement(SchedulerName(name)).action(
        StubEngine(view),  # type: ignore[arg-type]
        tasks,
        torch.stack(servers),
        torch.Generator().manual_seed(0),
    )
    return action.split[0]


def row(*shares: float) -> list[float]:
    return list(shares)


ONE_DEVICE = StubView(
    distance=torch.tensor([[[300.0, 200.0, 50.0, 100.0]]]),
    # model 0 on servers 0 and 2; model 1 on server 3 only
    cache=torch.tensor([[[True, False], [False, False], [True, False], [False, True]]]),
    busy_until=torch.tensor([[30.0, 25.0, 0.0, 0.0]]),  # backlog at t = 20: 10 s, 5 s, none, none
)


def test_edge_takes_the_nearest_server_of_the_chosen_esp_not_the_nearest_of_all():
    # ESP 0's servers are 300 m and 200 m away; ESP 1's server 2, at 50 m, is not ESP 0's.
    assert placed("edge", ONE_DEVICE, tasks_of([0]), [ESP0]).tolist() == [row(0, 0, 1, 0, 0, 0)]
    assert placed("edge", ONE_DEVICE, tasks_of([0]), [ESP1]).tolist() == [row(0, 0, 0, 1, 0, 0)]


def test_greedy_takes_the_nearest_own_server_with_the_model_else_runs_locally():
    assert placed("greedy", ONE_DEVICE, tasks_of([0]), [ESP0]).tolist() == [row(0, 1, 0, 0, 0, 0)]
    # Model 1 is only on ESP 1's server 3: ESP 0 has no server with it, so the task stays on the device.
    assert placed("greedy", ONE_DEVICE, tasks_of([1]), [ESP0]).tolist() == [row(1, 0, 0, 0, 0, 0)]
    assert placed("greedy", ONE_DEVICE, tasks_of([1]), [ESP1]).tolist() == [row(0, 0, 0, 0, 1, 0)]


def test_least_loaded_takes_the_own_server_with_the_least_backlog():
    # Backlogs 10 s and 5 s on ESP 0's servers; ESP 1's idle servers are not ESP 0's to use.
    assert placed("least-loaded", ONE_DEVICE, tasks_of([0]), [ESP0]).tolist() == [row(0, 0, 1, 0, 0, 0)]


def test_least_loaded_counts_only_the_work_of_the_esps_own_tasks():
    """Devices 0 and 1 chose ESP 0, device 2 ESP 1; every server idle. Device 0 takes server 0 (ties: the
    first); its 8e7 bits x 100 cycles/bit at 7 GHz (1.14 s) make server 1 the lighter for device 1.
    Device 2's large task (2e8 bits) on ESP 1 does not count on ESP 0's servers."""
    view = StubView(
        distance=torch.full((1, 3, N), 100.0),
        cache=torch.ones((1, N, 1), dtype=torch.bool),
        busy_until=torch.zeros((1, N)),
    )
    split = placed("least-loaded", view, tasks_of([0, 0, 0], [8e7, 8e7, 2e8]), [ESP0, ESP0, ESP1])
    assert split.tolist() == [row(0, 1, 0, 0, 0, 0), row(0, 0, 1, 0, 0, 0), row(0, 0, 0, 1, 0, 0)]


def test_parallel_split_shares_the_task_over_the_own_servers_holding_its_model():
    """Model 0 on servers 0, 1 (ESP 0) and 2 (ESP 1); backlogs 1 s and 0 s: free shares 1/2 and 1,
    so ESP 0's servers take 1/3 and 2/3; ESP 1's server 2 takes nothing."""
    view = StubView(
        distance=torch.tensor([[[300.0, 200.0, 50.0, 100.0]]]),
        cache=torch.tensor([[[True], [True], [True], [False]]]),
        busy_until=torch.tensor([[21.0, 20.0, 0.0, 0.0]]),
    )
    split = placed("parallel-split", view, tasks_of([0]), [ESP0])
    torch.testing.assert_close(split, torch.tensor([row(0, 1 / 3, 2 / 3, 0, 0, 0)], dtype=torch.float64))


def test_a_device_without_a_request_runs_its_task_locally():
    view = StubView(
        distance=torch.full((1, 2, N), 100.0), cache=torch.ones((1, N, 1), dtype=torch.bool), busy_until=torch.zeros((1, N))
    )
    split = placed("edge", view, tasks_of([0, 0]), [ESP1, torch.zeros(N, dtype=torch.bool)])
    assert split.tolist() == [row(0, 0, 0, 1, 0, 0), row(1, 0, 0, 0, 0, 0)]


def test_a_policy_that_places_a_share_on_another_esp_is_refused():
    class Stray:  # a learned policy that ignores its mask
        device = torch.device("cpu")

        def act(self, engine, tasks, generator, mask):  # type: ignore[no-untyped-def]
            split = torch.zeros((1, 1, N + 2), dtype=torch.float64)
            split[0, 0, 3] = 1.0  # server 2: ESP 1's
            return Action(split, torch.ones((1, 1), dtype=torch.bool)), None, None

    placement = Placement(agent=Stray(), source="stray.pt")  # type: ignore[arg-type]
    with pytest.raises(RuntimeError, match="outside the chosen ESP's servers"):
        placement.action(StubEngine(ONE_DEVICE), tasks_of([0]), ESP0.unsqueeze(0), torch.Generator())  # type: ignore[arg-type]


@pytest.mark.parametrize("name", ["edge", "greedy", "least-loaded", "parallel-split"])
def test_with_one_esp_running_every_server_the_placement_is_the_cores_scheduler(name: str):
    config = SimulationConfig(esps=1, servers_per_esp=3, esp_profiles=("honest",), scheduler=name)  # type: ignore[arg-type]
    market, core = build_engine(config), build_engine(config)
    generator = torch.Generator().manual_seed(0)
    every = torch.ones((config.producers, 3), dtype=torch.bool)
    for _ in range(12):  # the states evolve alike: queues, caches
        tasks, same = market.sample_tasks(), core.sample_tasks()
        mine = config.placement().action(market, tasks, every, generator)
        theirs = scheduler(name)(core, same, generator, None)
        torch.testing.assert_close(mine.split, theirs.split.to(mine.split.dtype), rtol=0, atol=0)
        assert torch.equal(mine.download, theirs.download)
        market.step(tasks, mine)
        core.step(same, theirs)


def test_split_offloading_stays_on_each_esps_servers_over_a_run():
    config = SimulationConfig(periods=15, random_periods=3, servers_per_esp=2, scheduler="parallel-split")
    run = run_dynamics(config)  # the placement refuses any share outside the chosen ESP's servers
    assert len(run.chosen) == 15 and all(len(costs) == config.producers for costs in run.costs)
    engine, placement, generator = build_engine(config), config.placement(), torch.Generator()
    assert engine.config.n_servers == 6
    servers = torch.stack([esp_servers(0, 2, 6), esp_servers(0, 2, 6), esp_servers(1, 2, 6)])
    split_tasks = 0
    for _ in range(10):
        tasks = engine.sample_tasks()
        action = placement.action(engine, tasks, servers, generator)
        on = action.split[0, :, 1:7] > 0  # [M, N]
        assert not bool((on & ~servers).any())
        split_tasks += int((on.sum(1) == 2).sum())  # tasks split across both servers of their ESP
        engine.step(tasks, action)
    assert split_tasks > 0


# -- schedulers by name, and checkpoints ------------------------------------------------------------


def test_unknown_schedulers_are_refused_naming_the_field():
    for bad in ("nope", "random", "cloud", "maddpg", "maddpg:"):
        with pytest.raises(ValueError, match="scheduler"):
            SimulationConfig(scheduler=bad)


def save(path: Path, algo: str, edge) -> Path:  # type: ignore[no-untyped-def]
    from offload_core.training import TrainSettings, make_agent, save_checkpoint

    return save_checkpoint(path, make_agent(algo, edge, 0), edge, TrainSettings(algo=algo, envs=1, episodes=1, steps=1))


def test_a_checkpoint_trained_on_the_markets_system_places_the_tasks(tmp_path: Path):
    config = SimulationConfig(periods=4, random_periods=1)
    path = save(tmp_path / "ok.pt", "maddpg-mato", config.edge_config())
    learned = SimulationConfig(periods=4, random_periods=1, scheduler=f"maddpg:{path}")
    assert learned.placement().agent is not None and learned.placement().name == f"maddpg:{path}"
    run = run_dynamics(learned)
    assert len(run.costs) == 4


def test_checkpoints_that_do_not_fit_are_refused(tmp_path: Path):
    market = SimulationConfig().edge_config()
    wrong_size = save(tmp_path / "ten.pt", "maddpg-mato", preset("mato").config)  # 10 devices, not 3
    with pytest.raises(ValueError, match="trained on 10 devices, 3 servers and 3 models"):
        SimulationConfig(scheduler=f"maddpg:{wrong_size}")
    other_system = save(tmp_path / "slower.pt", "maddpg-mato", dataclasses.replace(market, server_freq_hz=5e9))
    with pytest.raises(ValueError, match=r"another system than the market's \(differs in server_freq_hz\)"):
        SimulationConfig(scheduler=f"maddpg:{other_system}")
    mappo = save(tmp_path / "mappo.pt", "mappo", market)
    with pytest.raises(ValueError, match="MADDPG variant"):
        SimulationConfig(scheduler=f"maddpg:{mappo}")
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="not a checkpoint"):
        SimulationConfig(scheduler=f"maddpg:{garbage}")
    with pytest.raises(ValueError, match="no checkpoint file"):
        SimulationConfig(scheduler=f"maddpg:{tmp_path / 'missing.pt'}")


class _Planted:
    def __reduce__(self):  # type: ignore[no-untyped-def]
        return (Path.touch, (Path(_Planted.target),))

    target = ""


def test_a_checkpoint_that_would_run_code_is_refused_before_it_is_unpickled(tmp_path: Path):
    _Planted.target = str(tmp_path / "ran")
    path = tmp_path / "evil.pt"
    torch.save({"format": 1, "payload": _Planted()}, path)
    with pytest.raises(ValueError, match="not a checkpoint"):
        load_placement(f"maddpg:{path}", SimulationConfig().edge_config())
    assert not (tmp_path / "ran").exists()
    torch.load(path, weights_only=False)  # what a plain unpickling would have done: run the payload
    assert (tmp_path / "ran").exists()


def test_the_markets_system_is_the_mato_preset_with_the_markets_deadline():
    config = SimulationConfig(producers=4, esps=2, servers_per_esp=3, deadline_s=15.0)
    edge = config.edge_config()
    assert (edge.n_devices, edge.n_servers, edge.deadline_s) == (4, 6, (15.0, 15.0))
    mato = preset("mato").config
    assert edge.task_size_bits == mato.task_size_bits and edge.server_freq_hz == mato.server_freq_hz
    assert isinstance(build_engine(config), EdgeEngine)
