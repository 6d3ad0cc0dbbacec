"""CellBatch: a pool of copies of one cell's physics, stepped with the cell's own servo loop.

A sampling planner over the simulator (the oracle) needs S candidate futures from the same instant. Each
slot of the pool is an ``MjData`` of the cell's model; ``load`` copies a state into slots and
``step_twists`` applies one held twist per slot through ``SimCell.bound_to``, i.e. the very code path
``SimCell.step`` runs: the copies follow the true dynamics, not a re-implementation of them.
"""
from __future__ import annotations

import os
from typing import Sequence

import numpy as np

from ami_world_model.sim.cell import SimCell

os.environ.setdefault("MUJOCO_GL", "egl")  # as in cell.py: before mujoco is first imported
import mujoco  # noqa: E402


class CellBatch:
    """``size`` physics slots of ``cell``'s model (the cell's own physics is never touched)."""

    def __init__(self, cell: SimCell, size: int) -> None:
        if size < 1:
            raise ValueError(f"CellBatch needs size >= 1, got {size}")
        self.cell = cell
        self.model = cell.model
        self.slots = [mujoco.MjData(cell.model) for _ in range(size)]
        self._site = self.model.site("ee").id
        self._block = self.model.body("block").id
        self._pusher = self.model.geom("pusher").id
        self._block_geom = self.model.geom("block").id

    @property
    def size(self) -> int:
        return len(self.slots)

    def load_from_cell(self, indices: Sequence[int]) -> None:
        """Copy the cell's current physics into each slot of ``indices``."""
        for i in indices:
            mujoco.mj_copyData(self.slots[int(i)], self.model, self.cell.data)

    def copy(self, dst: Sequence[int], src: Sequence[int]) -> None:
        """``slots[dst[j]] <- slots[src[j]]`` for each j (dst and src must not overlap)."""
        if len(dst) != len(src):
            raise ValueError(f"copy needs as many destinations as sources, got {len(dst)} and {len(src)}")
        for d, s in zip(dst, src):
            if int(d) != int(s):
                mujoco.mj_copyData(self.slots[int(d)], self.model, self.slots[int(s)])

    def step_twists(self, indices: Sequence[int], twists: np.ndarray, dt: float) -> None:
        """Hold ``twists[j]`` (planar [A] m/s, A = 2 or 3) on slot ``indices[j]`` for ``dt`` seconds."""
        twists = np.asarray(twists, dtype=np.float64)
        if twists.ndim != 2 or twists.shape[0] != len(indices):
            raise ValueError(f"step_twists needs twists [n, A] for n = {len(indices)} slots, got {twists.shape}")
        cell = self.cell
        # Whole control periods are stepped one by one, as the cell steps an episode (each period ends with
        # a forward pass that the solver's warm start sees): the copies then match the real run bit for bit.
        period = cell.config.control_dt_s
        ticks = int(round(dt / period))
        chunks = [period] * ticks if ticks >= 1 and abs(ticks * period - dt) < 1e-9 else [dt]
        for i, v in zip(indices, twists):
            with cell.bound_to(self.slots[int(i)]):
                cell.apply_twist(*v[:3])
                for chunk in chunks:
                    cell.step(chunk)

    def ee_xy(self, indices: Sequence[int]) -> np.ndarray:
        """``[n, 2]`` tool tip (x, y) of each slot."""
        return np.array([self.slots[int(i)].site_xpos[self._site][:2] for i in indices])

    def block_xy(self, indices: Sequence[int]) -> np.ndarray:
        """``[n, 2]`` block centre (x, y) of each slot."""
        return np.array([self.slots[int(i)].xpos[self._block][:2] for i in indices])


def tool_block_contact(cell: SimCell) -> bool:
    """True when the pusher touches the block in the cell's current physics state."""
    m, d = cell.model, cell.data
    pusher, block = m.geom("pusher").id, m.geom("block").id
    for c in d.contact[: d.ncon]:
        if {int(c.geom1), int(c.geom2)} == {pusher, block}:
            return True
    return False
