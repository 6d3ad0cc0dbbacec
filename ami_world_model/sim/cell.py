"""SimCell: the MuJoCo SCARA cell with the controller interfaces a real cell has.

Two command interfaces, as on a real ROS 2 cell:
  - ``apply_twist``: a Cartesian tool velocity in base_link, turned into joint velocities through the MuJoCo
    Jacobian (damped least squares) at the servo rate, joint speed and position limits enforced, the tool kept
    inside a virtual fence (what MoveIt Servo does);
  - ``apply_joint_trajectory``: joint positions reached at given times, interpolated linearly
    (what a JointTrajectoryController does).
Both drive velocity actuators; ``step`` advances physics by one control period.

Tasks: "reach" (bring the tool over a goal point) and "push" (push the block to a goal point). ``reset``
samples a start and a goal from a seed; ``goal`` holds the goal state, its image and positions.
"""
from __future__ import annotations

import math
import os
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, List, Optional, Sequence, Union

import numpy as np

from ami_world_model.config import ActionSpec
from ami_world_model.sim.config import SimConfig

os.environ.setdefault("MUJOCO_GL", "egl")  # headless rendering; must be set before mujoco creates a context
import mujoco  # noqa: E402

ASSET = Path(__file__).with_name("assets") / "cell.xml"
ARM_JOINTS = ("shoulder", "elbow", "lift")
TASKS = ("reach", "push")
BLOCK_HALF_M = 0.02
TOOL_RADIUS_M = 0.014


@dataclass
class CellState:
    """Everything that defines a scene: arm joint positions and the block pose (velocities zero)."""

    joints: np.ndarray  # [3] shoulder (rad), elbow (rad), lift (m)
    block: np.ndarray  # [7] x, y, z, qw, qx, qy, qz

    def copy(self) -> CellState:
        return CellState(self.joints.copy(), self.block.copy())


@dataclass
class Goal:
    """A goal: the state, what the camera sees there, and the positions success is measured on."""

    task: str
    state: CellState
    image: np.ndarray  # [H, W, 3] uint8
    ee_position: np.ndarray  # [3] m, base_link
    block_position: np.ndarray  # [3] m, base_link


@dataclass
class CellSnapshot:
    """The whole dynamic state of a cell: a copy of the physics (``MjData``: time, positions, velocities,
    actuator and contact warm-start state) plus the servo's command state. ``SimCell.restore`` puts it back
    exactly, so stepping from a snapshot repeats the same trajectory."""

    data: Any  # mujoco.MjData
    mode: str
    twist: np.ndarray  # [3]
    traj_t: Optional[np.ndarray]
    traj_q: Optional[np.ndarray]


class SimCell:
    """The simulated cell. Not thread-safe: one owner steps it."""

    def __init__(self, config: Optional[SimConfig] = None) -> None:
        self.config = config or SimConfig()
        self.model = mujoco.MjModel.from_xml_path(str(ASSET))
        self.data = mujoco.MjData(self.model)
        # The offscreen buffer must hold the image; the asset sets 64x64, bigger images grow it.
        glob = self.model.vis.global_
        glob.offwidth = max(glob.offwidth, self.config.image_width)
        glob.offheight = max(glob.offheight, self.config.image_height)
        self._renderer: Optional[mujoco.Renderer] = None
        self._jids = [self.model.joint(n).id for n in ARM_JOINTS]
        self._qadr = np.array([self.model.jnt_qposadr[j] for j in self._jids])
        self._dadr = np.array([self.model.jnt_dofadr[j] for j in self._jids])
        self._limits = np.array([self.model.jnt_range[j] for j in self._jids])  # [3, 2]
        block_joint = self.model.joint("block_free").id
        self._block_qadr = int(self.model.jnt_qposadr[block_joint])
        self._block_dadr = int(self.model.jnt_dofadr[block_joint])
        self._site = self.model.site("ee").id
        self._block_body = self.model.body("block").id
        # Link lengths straight from the model so IK and MJCF never disagree.
        self.l1 = float(self.model.body("link2").pos[0])
        self.l2 = float(self.model.body("tool").pos[0])
        self._nominal = {
            "geom_rgba": self.model.geom_rgba.copy(),
            "light_diffuse": self.model.light_diffuse.copy(),
            "headlight_ambient": self.model.vis.headlight.ambient.copy(),
            "headlight_diffuse": self.model.vis.headlight.diffuse.copy(),
            "cam_pos": self.model.cam_pos.copy(),
            "cam_quat": self.model.cam_quat.copy(),
        }
        self._mode = "twist"  # which interface commanded last
        self._twist = np.zeros(3)
        self._traj_t: Optional[np.ndarray] = None  # [P+1] absolute sim times (first = when received)
        self._traj_q: Optional[np.ndarray] = None  # [P+1, 3]
        self.task = "reach"
        self.goal: Optional[Goal] = None
        self.rng = np.random.default_rng(0)
        self.reset(seed=0)

    # ------------------------------------------------------------------ reading
    @property
    def joint_names(self) -> List[str]:
        return list(ARM_JOINTS)

    @property
    def time(self) -> float:
        """Simulation time, seconds since the last reset."""
        return float(self.data.time)

    def action_spec(self) -> ActionSpec:
        return self.config.action_spec()

    def joint_positions(self) -> np.ndarray:
        return self.data.qpos[self._qadr].copy()

    def joint_velocities(self) -> np.ndarray:
        return self.data.qvel[self._dadr].copy()

    def joint_limits(self) -> np.ndarray:
        """[3, 2] hard (MJCF) limits of shoulder, elbow (rad) and lift (m)."""
        return self._limits.copy()

    def ee_position(self) -> np.ndarray:
        """Tool tip (pusher centre) in base_link, metres."""
        return self.data.site_xpos[self._site].copy()

    def block_position(self) -> np.ndarray:
        return self.data.xpos[self._block_body].copy()

    def get_state(self) -> CellState:
        return CellState(self.joint_positions(), self.data.qpos[self._block_qadr:self._block_qadr + 7].copy())

    def render(self) -> np.ndarray:
        """The overhead camera image, [H, W, 3] uint8 RGB."""
        if self._renderer is None:
            self._renderer = mujoco.Renderer(self.model, self.config.image_height, self.config.image_width)
        self._renderer.update_scene(self.data, camera=self.config.camera)
        return self._renderer.render().copy()

    def camera_intrinsics(self) -> np.ndarray:
        """3x3 pinhole K of the camera at the configured image size (for CameraInfo)."""
        h, w = self.config.image_height, self.config.image_width
        fovy = math.radians(float(self.model.cam_fovy[self.model.camera(self.config.camera).id]))
        f = 0.5 * h / math.tan(fovy / 2)
        return np.array([[f, 0, w / 2], [0, f, h / 2], [0, 0, 1]], dtype=np.float64)

    # ------------------------------------------------------------------ writing state
    def set_state(self, state: CellState) -> None:
        """Put the scene in ``state`` at rest; commands are cleared."""
        joints = np.asarray(state.joints, dtype=np.float64)
        block = np.asarray(state.block, dtype=np.float64)
        if joints.shape != (3,) or block.shape != (7,) or not (np.isfinite(joints).all() and np.isfinite(block).all()):
            raise ValueError(f"CellState needs finite joints [3] and block [7], got {joints.shape}, {block.shape}")
        self.data.qpos[self._qadr] = joints
        self.data.qpos[self._block_qadr:self._block_qadr + 7] = block
        self.data.qvel[:] = 0.0
        self.data.ctrl[:] = 0.0
        self.stop()
        mujoco.mj_forward(self.model, self.data)

    def snapshot(self) -> CellSnapshot:
        """Everything needed to come back to this instant (physics and commands), see ``restore``."""
        data = mujoco.MjData(self.model)
        mujoco.mj_copyData(data, self.model, self.data)
        return CellSnapshot(data, self._mode, self._twist.copy(),
                            None if self._traj_t is None else self._traj_t.copy(),
                            None if self._traj_q is None else self._traj_q.copy())

    def restore(self, snap: CellSnapshot) -> None:
        """Return to a ``snapshot`` of this cell (the goal and appearance are not part of it)."""
        mujoco.mj_copyData(self.data, self.model, snap.data)
        self._mode, self._twist = snap.mode, snap.twist.copy()
        self._traj_t = None if snap.traj_t is None else snap.traj_t.copy()
        self._traj_q = None if snap.traj_q is None else snap.traj_q.copy()

    @contextmanager
    def bound_to(self, data: Any) -> Iterator[SimCell]:
        """Read and step another ``MjData`` of this cell's model with this cell's servo loop, then come back.

        This is how copies of the physics (candidate futures for a planner) are stepped with exactly the
        dynamics the cell has; the cell's own physics and command state are untouched afterwards."""
        saved = (self.data, self._mode, self._twist.copy(), self._traj_t, self._traj_q)
        self.data = data
        try:
            yield self
        finally:
            self.data, self._mode, self._twist, self._traj_t, self._traj_q = saved

    def ik(self, x: float, y: float, lift: Optional[float] = None) -> Optional[np.ndarray]:
        """Joint positions putting the tool at (x, y) (elbow-right branch, the only one the limits allow).

        Returns None when (x, y) is out of reach or the solution breaks a joint limit.
        """
        c2 = (x * x + y * y - self.l1**2 - self.l2**2) / (2 * self.l1 * self.l2)
        if not -1.0 <= c2 <= 1.0:
            return None
        q2 = -math.acos(c2)
        q1 = math.atan2(y, x) - math.atan2(self.l2 * math.sin(q2), self.l1 + self.l2 * math.cos(q2))
        q = np.array([q1, q2, self.config.tool_height_m if lift is None else lift])
        if np.any(q < self._limits[:, 0]) or np.any(q > self._limits[:, 1]):
            return None
        return q

    # ------------------------------------------------------------------ episodes
    def reset(self, seed: Optional[int] = None, task: str = "reach") -> np.ndarray:
        """Sample a start and a goal for ``task`` from ``seed``; returns the first image.

        The same seed gives the same start and goal with or without randomisation (appearance has its
        own random stream).
        """
        if task not in TASKS:
            raise ValueError(f"task must be one of {TASKS}, got {task!r}")
        self.task = task
        self.rng = np.random.default_rng(seed)
        mujoco.mj_resetData(self.model, self.data)
        self._apply_appearance(np.random.default_rng([0 if seed is None else int(seed), 7919]))
        start, goal_state = self._sample_start_and_goal(task, self.rng)
        self.goal = self._make_goal(task, goal_state)
        self.set_state(start)
        return self.render()

    def sample_goal(self, task: Optional[str] = None, rng: Optional[np.random.Generator] = None) -> Goal:
        """A new goal from the current scene (reach: a tool point away from the block; push: the block moved
        ``push_distance_m`` in a random direction, the tool just behind it). Sets ``self.goal``."""
        task = task or self.task
        if task not in TASKS:
            raise ValueError(f"task must be one of {TASKS}, got {task!r}")
        rng = rng if rng is not None else self.rng
        block = self.get_state().block
        for _ in range(200):
            if task == "reach":
                state = self._reach_goal_state(block, rng)
            else:
                state = self._push_goal_state(block, rng)[0]
            if state is not None:
                self.goal = self._make_goal(task, state)
                return self.goal
        raise RuntimeError("could not sample a goal from the current scene (block at the workspace edge?)")

    def distance_to_goal(self, goal: Optional[Goal] = None) -> float:
        """Planar distance the task is judged on: tool to goal (reach), block to goal (push)."""
        goal = goal or self.goal
        if goal is None:
            raise ValueError("no goal: call reset() or sample_goal() first")
        if goal.task == "reach":
            return float(np.linalg.norm(self.ee_position()[:2] - goal.ee_position[:2]))
        return float(np.linalg.norm(self.block_position()[:2] - goal.block_position[:2]))

    def success(self, goal: Optional[Goal] = None) -> bool:
        goal = goal or self.goal
        tol = self.config.reach_tolerance_m if (goal and goal.task == "reach") else self.config.push_tolerance_m
        return self.distance_to_goal(goal) <= tol

    # ------------------------------------------------------------------ commands
    def apply_twist(self, vx: float, vy: float, vz: float = 0.0) -> None:
        """Command a tool velocity in base_link (m/s), held until the next command (Servo-like).

        Each component is clamped to ``max_linear_speed_mps``. There is no wrist, so angular velocity is not
        an input. Non-finite input stops the arm.
        """
        v = np.array([vx, vy, vz], dtype=np.float64)
        if not np.isfinite(v).all():
            v = np.zeros(3)  # bad input -> safe state
        lim = self.config.max_linear_speed_mps
        self._twist = np.clip(v, -lim, lim)
        self._mode = "twist"

    def apply_joint_trajectory(
        self,
        positions: Union[Sequence[float], Sequence[Sequence[float]]],
        time_from_start: Union[float, Sequence[float]],
    ) -> None:
        """Follow joint positions [P, 3] (or one point [3]) reached at ``time_from_start`` [P] s (JTC-like).

        Positions are clamped to the joint limits; the path is linear from the current position.
        """
        q = np.atleast_2d(np.asarray(positions, dtype=np.float64))
        t = np.atleast_1d(np.asarray(time_from_start, dtype=np.float64))
        if q.shape[1] != 3 or t.shape != (q.shape[0],):
            raise ValueError(f"joint trajectory needs positions [P,3] and times [P], got {q.shape}, {t.shape}")
        if not (np.isfinite(q).all() and np.isfinite(t).all()) or np.any(np.diff(np.concatenate([[0.0], t])) < 0):
            raise ValueError("joint trajectory: non-finite values or times not increasing")
        margin = np.asarray(self.config.joint_limit_margin)
        q = np.clip(q, self._limits[:, 0] + margin, self._limits[:, 1] - margin)
        now = self.time
        self._traj_t = np.concatenate([[now], now + np.maximum(t, 1e-6)])
        self._traj_q = np.vstack([self.joint_positions(), q])
        self._mode = "trajectory"

    def stop(self) -> None:
        """Zero twist, drop any trajectory: the arm holds where it is."""
        self._twist = np.zeros(3)
        self._traj_t = self._traj_q = None
        self._mode = "twist"

    def step(self, dt: Optional[float] = None) -> None:
        """Advance physics by ``dt`` (default: one control period), running the servo loop inside."""
        dt = self.config.control_dt_s if dt is None else dt
        servo_dt = self.config.servo_dt_s
        n_servo = max(1, int(round(dt / servo_dt)))
        n_sub = max(1, int(round(servo_dt / self.model.opt.timestep)))
        for _ in range(n_servo):
            qdot = self._servo_twist() if self._mode == "twist" else self._servo_trajectory(servo_dt)
            self.data.ctrl[:3] = self._limit_joint_velocity(qdot, servo_dt)
            mujoco.mj_step(self.model, self.data, nstep=n_sub)
        # mj_step leaves positions (xpos, site_xpos) from before its last integration: refresh them so reads
        # and renders show the state at the new time.
        mujoco.mj_forward(self.model, self.data)

    def close(self) -> None:
        if self._renderer is not None:
            self._renderer.close()
            self._renderer = None

    # ------------------------------------------------------------------ servo internals
    def jacobian(self) -> np.ndarray:
        """[3, 3] linear Jacobian of the tool tip w.r.t. shoulder, elbow, lift."""
        jacp = np.zeros((3, self.model.nv))
        mujoco.mj_jacSite(self.model, self.data, jacp, None, self._site)
        return jacp[:, self._dadr]

    def _servo_twist(self) -> np.ndarray:
        v = self._twist.copy()
        ee = self.ee_position()
        # Virtual fence: never move further out of the workspace box (only the outward component is cut).
        x0, x1, y0, y1 = self.config.workspace
        dt = self.config.servo_dt_s
        for axis, lo, hi in ((0, x0, x1), (1, y0, y1)):
            nxt = ee[axis] + v[axis] * dt
            if nxt < lo and v[axis] < 0:
                v[axis] = min(0.0, (lo - ee[axis]) / dt) if ee[axis] > lo else 0.0
            elif nxt > hi and v[axis] > 0:
                v[axis] = max(0.0, (hi - ee[axis]) / dt) if ee[axis] < hi else 0.0
        if not v[2]:
            # Planar commands hold the tool height: correct lift drift (e.g. after a contact) gently.
            v[2] = np.clip((self.config.tool_height_m - self.joint_positions()[2]) / 0.2, -0.02, 0.02)
        j = self.jacobian()
        lam2 = self.config.damping**2
        # Damped least squares: qdot = J^T (J J^T + lambda^2 I)^-1 v, finite near singularities.
        return j.T @ np.linalg.solve(j @ j.T + lam2 * np.eye(3), v)

    def _servo_trajectory(self, dt: float) -> np.ndarray:
        assert self._traj_t is not None and self._traj_q is not None
        t = min(self.time + dt, self._traj_t[-1])
        ref = np.array([np.interp(t, self._traj_t, self._traj_q[:, i]) for i in range(3)])
        return (ref - self.joint_positions()) / dt

    def _limit_joint_velocity(self, qdot: np.ndarray, dt: float) -> np.ndarray:
        """Scale to the joint speed limits (keeps the direction, as Servo does), then stop at position limits."""
        vmax = np.asarray(self.config.max_joint_speed)
        scale = np.max(np.abs(qdot) / vmax)
        if scale > 1.0:
            qdot = qdot / scale
        q = self.joint_positions()
        margin = np.asarray(self.config.joint_limit_margin)
        lo, hi = self._limits[:, 0] + margin, self._limits[:, 1] - margin
        # Never step past a (margin-shrunk) limit; moving back inside is always allowed.
        qdot = np.where(q + qdot * dt > hi, np.minimum(qdot, np.maximum(0.0, (hi - q) / dt)), qdot)
        qdot = np.where(q + qdot * dt < lo, np.maximum(qdot, np.minimum(0.0, (lo - q) / dt)), qdot)
        return qdot

    # ------------------------------------------------------------------ sampling internals
    def _uniform_xy(self, rng: np.random.Generator, shrink: float = 0.0) -> np.ndarray:
        x0, x1, y0, y1 = self.config.sample_area
        return np.array([rng.uniform(x0 + shrink, x1 - shrink), rng.uniform(y0 + shrink, y1 - shrink)])

    def _in_area(self, xy: np.ndarray, shrink: float = 0.0) -> bool:
        x0, x1, y0, y1 = self.config.sample_area
        return x0 + shrink <= xy[0] <= x1 - shrink and y0 + shrink <= xy[1] <= y1 - shrink

    def _block_pose(self, xy: np.ndarray, yaw: float) -> np.ndarray:
        return np.array([xy[0], xy[1], BLOCK_HALF_M, math.cos(yaw / 2), 0.0, 0.0, math.sin(yaw / 2)])

    def _tool_clear_of_block(self, tool_xy: np.ndarray, block_xy: np.ndarray) -> bool:
        # Circumscribed block radius + tool radius + a little: never start interpenetrating.
        return float(np.linalg.norm(tool_xy - block_xy)) >= BLOCK_HALF_M * math.sqrt(2) + TOOL_RADIUS_M + 0.015

    def _reach_goal_state(self, block: np.ndarray, rng: np.random.Generator) -> Optional[CellState]:
        xy = self._uniform_xy(rng)
        q = self.ik(*xy)
        if q is None or not self._tool_clear_of_block(xy, block[:2]):
            return None
        return CellState(q, block.copy())

    def _push_goal_state(self, block: np.ndarray, rng: np.random.Generator):
        """Goal for a push: block moved along a random direction; tool resting just behind it."""
        direction = rng.uniform(-math.pi, math.pi)
        u = np.array([math.cos(direction), math.sin(direction)])
        goal_xy = block[:2] + rng.uniform(*self.config.push_distance_m) * u
        tool_xy = goal_xy - u * (BLOCK_HALF_M + TOOL_RADIUS_M + 0.01)
        q = self.ik(*tool_xy)
        if not self._in_area(goal_xy, shrink=BLOCK_HALF_M) or q is None:
            return None, u
        goal_block = block.copy()
        goal_block[:2] = goal_xy
        return CellState(q, goal_block), u

    def _sample_start_and_goal(self, task: str, rng: np.random.Generator):
        for _ in range(500):
            block_xy = self._uniform_xy(rng, shrink=BLOCK_HALF_M)
            block = self._block_pose(block_xy, rng.uniform(-math.pi / 4, math.pi / 4))
            if task == "reach":
                goal = self._reach_goal_state(block, rng)
                tool_xy = self._uniform_xy(rng)
            else:
                goal, u = self._push_goal_state(block, rng)
                # Start the tool behind the block w.r.t. the push direction (within +-60 deg), 6-10 cm away:
                # pushing is then a few steps of approach and a straight push, learnable from play data.
                ang = math.atan2(u[1], u[0]) + math.pi + rng.uniform(-math.pi / 3, math.pi / 3)
                tool_xy = block_xy + rng.uniform(0.06, 0.10) * np.array([math.cos(ang), math.sin(ang)])
            q = self.ik(*tool_xy)
            if goal is None or q is None or not self._tool_clear_of_block(tool_xy, block_xy):
                continue
            if not self._in_area(tool_xy):
                continue
            return CellState(q, block), goal
        raise RuntimeError("could not sample a start (sample_area too small for the arm?)")

    def _make_goal(self, task: str, state: CellState) -> Goal:
        # Save the whole dynamic state (velocities, commands too): sampling a goal mid-episode changes nothing.
        d = self.data
        saved = (d.time, d.qpos.copy(), d.qvel.copy(), d.ctrl.copy(), d.act.copy(), self._mode, self._twist.copy(),
                 self._traj_t, self._traj_q)
        self.set_state(state)
        goal = Goal(task, state.copy(), self.render(), self.ee_position(), self.block_position())
        d.time, d.qpos[:], d.qvel[:], d.ctrl[:], d.act[:] = saved[:5]
        self._mode, self._twist, self._traj_t, self._traj_q = saved[5:]
        mujoco.mj_forward(self.model, d)
        return goal

    def _apply_appearance(self, rng: np.random.Generator) -> None:
        """Restore the nominal look, then (if configured) randomise lights, colours and camera pose."""
        m, nom = self.model, self._nominal
        m.geom_rgba[:] = nom["geom_rgba"]
        m.light_diffuse[:] = nom["light_diffuse"]
        m.vis.headlight.ambient[:] = nom["headlight_ambient"]
        m.vis.headlight.diffuse[:] = nom["headlight_diffuse"]
        m.cam_pos[:] = nom["cam_pos"]
        m.cam_quat[:] = nom["cam_quat"]
        if not self.config.randomize:
            return
        r = self.config.randomization
        s = rng.uniform(1 - r.light_scale, 1 + r.light_scale)
        m.light_diffuse[:] = np.clip(nom["light_diffuse"] * s, 0, 1)
        s_amb = rng.uniform(1 - r.light_scale, 1 + r.light_scale)
        m.vis.headlight.ambient[:] = np.clip(nom["headlight_ambient"] * s_amb, 0, 1)
        jitter = rng.uniform(-r.color_jitter, r.color_jitter, size=(m.ngeom, 3))
        m.geom_rgba[:, :3] = np.clip(nom["geom_rgba"][:, :3] + jitter, 0, 1)
        cam = m.camera(self.config.camera).id
        m.cam_pos[cam] = nom["cam_pos"][cam] + rng.uniform(-r.camera_pos_m, r.camera_pos_m, size=3)
        axis = rng.normal(size=3)
        axis /= np.linalg.norm(axis)
        angle = rng.uniform(-r.camera_rot_rad, r.camera_rot_rad)
        dq = np.zeros(4)
        mujoco.mju_axisAngle2Quat(dq, axis, angle)
        q = np.zeros(4)
        mujoco.mju_mulQuat(q, dq, nom["cam_quat"][cam])
        m.cam_quat[cam] = q


@dataclass
class Rollout:
    images: np.ndarray  # [T+1, H, W, 3] uint8 (None entries never: rendering is on when requested)
    ee_positions: np.ndarray  # [T+1, 3]
    block_positions: np.ndarray  # [T+1, 3]
    joint_positions: np.ndarray  # [T+1, 3]


def rollout(
    cell: SimCell, start: CellState, actions: Sequence[Sequence[float]], render: bool = True
) -> Rollout:
    """Put ``cell`` in ``start`` and apply planar twist ``actions`` [T, 2] (or [T, 3]), one per control period.

    Returns what was seen and where things were before the first and after every action.
    """
    acts = np.asarray(actions, dtype=np.float64).reshape(len(actions), -1)
    cell.set_state(start)
    images, ee, block, joints = [], [], [], []

    def record() -> None:
        if render:
            images.append(cell.render())
        ee.append(cell.ee_position())
        block.append(cell.block_position())
        joints.append(cell.joint_positions())

    record()
    for a in acts:
        cell.apply_twist(*a[:3])
        cell.step()
        record()
    h, w = cell.config.image_height, cell.config.image_width
    return Rollout(
        images=np.stack(images) if render else np.zeros((0, h, w, 3), np.uint8),
        ee_positions=np.stack(ee),
        block_positions=np.stack(block),
        joint_positions=np.stack(joints),
    )
