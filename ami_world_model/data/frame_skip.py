"""Frame skip: a model step spans ``skip`` recorded control periods, and its action is their mean command.

A velocity held for ``skip`` periods moves the mean velocity times ``skip * dt``, so the mean is the one
action that explains the step. Bag conversion, training windows and the planner node's surprise all use
``step_mean_action``, so a model is fed the same action at run time as in training.
"""
from __future__ import annotations

from typing import Any, Iterable, TypeVar

import numpy as np

Actions = TypeVar("Actions")  # a numpy array or a torch tensor (anything with len, slicing and .mean(0))


def step_mean_action(actions: Actions, start: int, skip: int) -> Actions:
    """The mean command over the model step that starts at record ``start``.

    Args:
        actions: ``[T, A]`` the command sent after each record (numpy array or torch tensor).
        start: index of the step's first record, ``0 <= start < T``.
        skip: records per model step (>= 1); a step that runs past the end averages the records left.
    Returns:
        ``[A]`` the mean of ``actions[start:start + skip]``, same type and dtype as ``actions``.
    """
    if skip < 1:
        raise ValueError(f"step_mean_action: skip must be >= 1, got {skip}")
    if not 0 <= start < len(actions):
        raise IndexError(f"step_mean_action: start {start} outside {len(actions)} records")
    return actions[start:start + skip].mean(0)


def every_step_mean_action(episodes: Iterable[Any], skip: int) -> np.ndarray:
    """``[sum T, A]``: ``step_mean_action`` from every record of every episode (each ``.actions [T, A]``), the
    actions a model trained with frame skip ``skip`` sees; the action box and normalisation are measured on
    them."""
    return np.stack([step_mean_action(e.actions, t, skip) for e in episodes for t in range(len(e.actions))])
