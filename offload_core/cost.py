"""The system cost of [Xu 2023, Table II], per task, from one step's breakdown.

[Xu 2023, sec. V-B]: "the system cost is calculated as the sum of the switching cost, the total accuracy
cost, the edge inference latency, the edge offloading latency, and the cloud computing cost". The paper
gives no formula for the terms; ours (docs/cost-model.md, "System cost of `lc`"), each [B, M] per task:

- switching cost: T_sw, the model switch (download at r_cn and GPU load) of the task's slowest edge part, s;
- accuracy cost: the accuracy lost at the edge, edge_share - edge_quality = sum over edge-run parts of
  s_n (1 - a(K) q_n); 0 in the cloud, which keeps full context (the `lc` preset's cloud_quality is 1.0);
- inference latency: T_es, the edge compute of the slowest edge part, s;
- offloading latency: T_up + T_down of the slowest edge part, for tasks that ran (partly) at the edge, s;
- cloud computing cost: the cloud path of every part run in the cloud: T_fwd (backhaul, WAN and cloud
  compute of the parts a server forwarded) plus T_cloud (a part the action sent to the cloud directly), s.

Table II's cloud cost is proportional to the share of requests run in the cloud (7.29 x the cloud share
matches every column), which a near-constant cloud path latency reproduces. Queue waits (T_wait) are in
no term, as in the paper's list.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import torch

from offload_core.result import StepResult


@dataclass(frozen=True, slots=True)
class LcCost:
    """The five cost terms of [Xu 2023, Table II] for every task of a step.  Each [B, M]."""

    switching: torch.Tensor  # [B, M] s
    accuracy: torch.Tensor  # [B, M] dimensionless
    inference: torch.Tensor  # [B, M] s
    offloading: torch.Tensor  # [B, M] s
    cloud: torch.Tensor  # [B, M] s

    @property
    def total(self) -> torch.Tensor:
        """The system cost: the sum of the five terms.  [B, M]"""
        return self.switching + self.accuracy + self.inference + self.offloading + self.cloud

    def as_dict(self) -> dict[str, torch.Tensor]:
        """{term: [B, M]} in field order, then "total"."""
        terms = {f.name: getattr(self, f.name) for f in fields(self)}
        return {**terms, "total": self.total}


def lc_system_cost(result: StepResult) -> LcCost:
    """The per-task terms of [Xu 2023, Table II]'s system cost (module docstring)."""
    at_edge = result.edge_share > 0  # [B, M]
    zero = torch.zeros_like(result.T)
    return LcCost(
        switching=result.T_sw,
        accuracy=result.edge_share - result.edge_quality,
        inference=result.T_es,
        offloading=torch.where(at_edge, result.T_up + result.T_down, zero),
        cloud=result.T_fwd + result.T_cloud,
    )
