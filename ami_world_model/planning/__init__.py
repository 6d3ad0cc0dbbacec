"""Planning in latent space: CEM / MPPI over action sequences, receding horizon, anytime within a deadline.

Public API (see docs/ARCHITECTURE.md):
    PlannerConfig, RecedingHorizonController, PlanResult, PlanningError,
    WorldModelState, make_world_model_dynamics, make_energy, latent_energy;
    in read-out space: PoseState, make_pose_dynamics, make_pose_energy.
"""
from ami_world_model.planning.config import PlannerConfig
from ami_world_model.planning.controller import PlanningError, PlanResult, RecedingHorizonController
from ami_world_model.planning.dynamics import PoseState, WorldModelState, make_pose_dynamics, make_world_model_dynamics
from ami_world_model.planning.energy import latent_energy, make_energy, make_pose_energy

__all__ = [
    "PlannerConfig",
    "PlanResult",
    "PlanningError",
    "PoseState",
    "RecedingHorizonController",
    "WorldModelState",
    "latent_energy",
    "make_energy",
    "make_pose_dynamics",
    "make_pose_energy",
    "make_world_model_dynamics",
]
