"""Snapshots and the batch of physics copies: the copies follow exactly the cell's own dynamics."""
import numpy as np
import pytest

from ami_world_model.sim.batch import CellBatch, tool_block_contact


def _drive(cell, twists, ticks_each=3):
    for v in twists:
        cell.apply_twist(*v)
        for _ in range(ticks_each):
            cell.step()
    return cell.ee_position()[:2].copy(), cell.block_position()[:2].copy()


def test_snapshot_restore_repeats_the_trajectory(cell):
    cell.reset(seed=3, task="push")
    _drive(cell, [[0.05, 0.02]])  # moving: velocities and commands are part of the state
    snap = cell.snapshot()
    twists = [[0.1, -0.03], [-0.02, 0.08], [0.07, 0.07]]
    first = _drive(cell, twists)
    cell.restore(snap)
    second = _drive(cell, twists)
    np.testing.assert_array_equal(first[0], second[0])
    np.testing.assert_array_equal(first[1], second[1])


def test_batch_slots_follow_the_cell_and_leave_it_untouched(cell):
    cell.reset(seed=5, task="push")
    _drive(cell, [[0.03, 0.0]])
    before_ee, t_before = cell.ee_position().copy(), cell.time
    twists = np.array([[0.1, 0.0], [0.0, -0.1], [-0.05, 0.05]])
    batch = CellBatch(cell, 3)
    batch.load_from_cell([0, 1, 2])
    batch.step_twists([0, 1, 2], twists, dt=0.3)
    batch.step_twists([0, 1, 2], twists[::-1], dt=0.3)
    np.testing.assert_array_equal(cell.ee_position(), before_ee)  # the cell itself did not move
    assert cell.time == t_before
    snap = cell.snapshot()
    for j in range(3):  # each slot equals the cell driven the same way, bit for bit
        cell.restore(snap)
        ee, block = _drive(cell, [twists[j], twists[::-1][j]])
        np.testing.assert_array_equal(batch.ee_xy([j])[0], ee)
        np.testing.assert_array_equal(batch.block_xy([j])[0], block)
    assert len({tuple(np.round(x, 6)) for x in batch.ee_xy([0, 1, 2])}) == 3  # different actions, places


def test_batch_copy_and_bad_input(cell):
    batch = CellBatch(cell, 2)
    batch.load_from_cell([0])
    batch.step_twists([0], np.array([[0.1, 0.1]]), 0.2)
    batch.copy([1], [0])
    np.testing.assert_array_equal(batch.ee_xy([0]), batch.ee_xy([1]))
    with pytest.raises(ValueError):
        batch.step_twists([0, 1], np.zeros((3, 2)), 0.1)
    with pytest.raises(ValueError):
        batch.copy([0], [0, 1])
    with pytest.raises(ValueError):
        CellBatch(cell, 0)


def test_tool_block_contact_when_pushing(cell):
    cell.reset(seed=11, task="push")
    assert not tool_block_contact(cell)  # starts clear of the block
    block0 = cell.block_position()[:2].copy()
    touched = False
    for _ in range(40):  # drive straight at the block
        d = cell.block_position()[:2] - cell.ee_position()[:2]
        v = 0.1 * d / np.linalg.norm(d)
        cell.apply_twist(*v)
        cell.step()
        touched |= tool_block_contact(cell)
    assert touched and np.linalg.norm(cell.block_position()[:2] - block0) > 0.01
