"""What one engine step returns: the cost breakdown of every task, as a typed result.

`StepResult` has one field per term of the cost model (docs/cost-model.md, section 4), each a
[B, M] tensor: environment b, device m (the task that device m generated this step). Its field
names are the breakdown's names everywhere: `BREAKDOWN_KEYS` (their order is the compiled
kernel's output layout), the scalar reference's per-task dicts (`offload_core.reference`) and
`StepResult.as_dict()` for code that iterates over the terms (CSV columns, averages).

Latency terms `T_up, T_wait, T_sw, T_es, T_down` are those of the task's slowest edge part (the
first on ties; 0 without an edge part); energy terms, `T_fwd`, `edge_share` and `edge_quality` are
summed over all of the task's parts.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch


@dataclass(frozen=True, slots=True)
class StepResult:
    """The breakdown of every task of one step.  Float fields have the engine's dtype; flags are bool."""

    T_up: torch.Tensor  # [B, M] s
    """Upload latency of the slowest edge part, s_n x / r_mn."""
    T_wait: torch.Tensor  # [B, M] s
    """FIFO queue wait of the slowest edge part (0 on servers with an ASP capacity)."""
    T_sw: torch.Tensor  # [B, M] s
    """Model switch (download and GPU load) latency of the slowest edge part; 0 on a hit."""
    T_es: torch.Tensor  # [B, M] s
    """Edge compute latency of the slowest edge part, cycles / f_n (effective frequency)."""
    T_down: torch.Tensor  # [B, M] s
    """Result return latency of the slowest edge part, s_n y_out / r_nm."""
    T_loc: torch.Tensor  # [B, M] s
    """Local compute latency, s_loc x rho / f_m."""
    T_cloud: torch.Tensor  # [B, M] s
    """Latency of the part sent directly to the cloud (0 without one)."""
    T: torch.Tensor  # [B, M] s
    """Task latency: the slowest part, max(T_loc, T_cloud, max_n T_n)."""
    E_up: torch.Tensor  # [B, M] J
    """Upload energy, summed over edge parts."""
    E_sw: torch.Tensor  # [B, M] J
    """Model switch energy, summed over edge parts."""
    E_es: torch.Tensor  # [B, M] J
    """Edge compute energy, summed over edge parts."""
    E_loc: torch.Tensor  # [B, M] J
    """Local compute energy of the local share."""
    E_cloud: torch.Tensor  # [B, M] J
    """Cloud energy: the direct cloud part (with its uplink) and parts forwarded by a server."""
    E: torch.Tensor  # [B, M] J
    """Task energy: the sum of every part's energy."""
    completed: torch.Tensor  # [B, M] bool
    """T <= deadline, and no part failed or crashed."""
    model_hit: torch.Tensor  # [B, M] bool
    """Some part went to an edge server, and every such part found its model cached."""
    offloaded: torch.Tensor  # [B, M] bool
    """Some part went to an edge server."""
    failed: torch.Tensor  # [B, M] bool
    """A part needed a model larger than its server's GPU memory."""
    crashed: torch.Tensor  # [B, M] bool
    """A part crashed its server (ASP capacity exceeded)."""
    quality: torch.Tensor  # [B, M] dimensionless, about [0, 1]
    """Content quality: local, cloud and edge shares weighted by their tiers' quality."""
    edge_share: torch.Tensor  # [B, M] in [0, 1]
    """Sum of the shares that ran at the edge (not forwarded, failed or crashed)."""
    T_fwd: torch.Tensor  # [B, M] s
    """Cloud path of the parts a server forwarded, summed over them: backhaul s x / r_cn, WAN, s x rho / f_c."""
    edge_quality: torch.Tensor  # [B, M] dimensionless, at most edge_share
    """Quality of the shares that ran at the edge: the sum of s_n a(K) q_n (accuracy lost there: edge_share - this)."""

    def as_dict(self) -> dict[str, torch.Tensor]:
        """{name: [B, M] tensor} in BREAKDOWN_KEYS order, for code that iterates over the terms."""
        return {name: getattr(self, name) for name in BREAKDOWN_KEYS}


BREAKDOWN_KEYS: tuple[str, ...] = tuple(f.name for f in fields(StepResult))
"""Names of the breakdown terms, in StepResult's field order (the compiled kernel's output layout)."""

FLAG_KEYS: frozenset[str] = frozenset({"completed", "model_hit", "offloaded", "failed", "crashed"})
"""The boolean terms of the breakdown."""
