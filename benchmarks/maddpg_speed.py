"""Environment steps per second while training MADDPG-MATO: batched environments against one, same run.

An environment step is one step of one environment (M tasks placed, costed and stored, with
one gradient update per `transitions_per_update` transitions stored). Both loops run the same number of batched steps
and gradient updates; the batched one collects B times the experience for the same updates.

Wall time to convergence: the first episode from which the windowed mean reward stays within 5%
of the final level, times the wall time per episode.

    python benchmarks/maddpg_speed.py [--envs 16] [--episodes 8] [--device cpu] [--json]
"""

from __future__ import annotations

import argparse
import json
import time

import torch

from offload_core.config import preset
from offload_core.maddpg import MADDPGConfig
from offload_core.names import Algorithm, PresetName
from offload_core.training import EvalSettings, SweepSettings, TrainSettings, evaluate, train

CONVERGENCE_WINDOW = 3
CONVERGENCE_TOLERANCE = 0.05


def convergence_episode(rewards: list[float]) -> int:
    """First episode from which the moving mean reward (window 3) stays within 5% of the final level.

    The final level is the moving mean at the last episode; a short run can only give a lower bound
    on the true time to convergence.
    """
    moving = [
        sum(rewards[max(0, e - CONVERGENCE_WINDOW + 1) : e + 1]) / min(e + 1, CONVERGENCE_WINDOW) for e in range(len(rewards))
    ]
    band = CONVERGENCE_TOLERANCE * abs(moving[-1])
    converged = len(rewards) - 1
    for episode in range(len(rewards) - 1, -1, -1):
        if abs(moving[episode] - moving[-1]) > band:
            break
        converged = episode
    return converged


def timed_training(envs: int, episodes: int | None, steps: int, device: str, batch_size: int) -> dict[str, float]:
    """Train with B = envs; returns env steps/s, wall seconds and the final evaluation reward."""
    config = preset(PresetName.MATO).config
    settings = TrainSettings(algo=Algorithm.MADDPG_MATO, envs=envs, episodes=episodes, steps=steps, seed=0)
    hp = MADDPGConfig(batch_size=batch_size, learning_starts=min(batch_size, envs * steps))
    start = time.perf_counter()
    result = train(config, settings, device, hp)
    if device == "cuda":
        torch.cuda.synchronize()
    wall = time.perf_counter() - start
    episodes = len(result.curve)  # None above: as many as the update budget takes
    held_out = EvalSettings()
    reward = evaluate(config, Algorithm.MADDPG_MATO, result.agent, held_out.envs, held_out.steps, held_out.seed, device=device)[
        "reward"
    ]
    rewards = [row["reward"] for row in result.curve]
    converged = convergence_episode(rewards)
    return {
        "envs": envs,
        "env_steps_per_s": envs * episodes * steps / wall,
        "wall_s": wall,
        "convergence_episode": converged,
        "wall_s_to_convergence": wall * (converged + 1) / episodes,
        "first_reward": rewards[0],
        "last_reward": rewards[-1],
        "eval_reward": reward,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    # The sweep's short runs (SweepSettings) on TrainSettings' environments and steps.
    parser.add_argument("--envs", type=int, default=TrainSettings.envs)
    parser.add_argument("--episodes", type=int, default=SweepSettings.episodes)
    parser.add_argument("--steps", type=int, default=TrainSettings.steps)
    parser.add_argument("--batch-size", type=int, default=SweepSettings.batch_size)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(1)
    rows = [timed_training(b, args.episodes, args.steps, args.device, args.batch_size) for b in (1, args.envs)]
    card = torch.cuda.get_device_name() if args.device == "cuda" else "cpu"
    for row in rows:
        print(
            f"B={row['envs']:>4}: {row['env_steps_per_s']:9.1f} env steps/s, {row['wall_s']:.1f} s, "
            f"converged at episode {row['convergence_episode']} after {row['wall_s_to_convergence']:.1f} s, "
            f"reward first {row['first_reward']:.3f} last {row['last_reward']:.3f} eval {row['eval_reward']:.3f}"
        )
    print(f"speed-up of batched collection: {rows[1]['env_steps_per_s'] / rows[0]['env_steps_per_s']:.1f}x on {card}")
    if args.json:
        print(json.dumps({"device": card, "rows": rows}))


if __name__ == "__main__":
    main()
