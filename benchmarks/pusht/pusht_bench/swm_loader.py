"""Load the parts of stable-worldmodel the benchmark uses, without the package's top-level imports.

``import stable_worldmodel`` runs its ``__init__``, which imports every submodule, among them ``policy.py``,
which imports ``torchvision`` (for ``tv_tensors`` only). The index's torchvision wheel links
``libtorch_cuda`` and fails to load with the project's pinned CPU torch. The benchmark needs only the PushT
environment (pymunk + pygame + gymnasium), the LeWM / PLDM modules and the losses (torch + einops), so it
registers the package and the sub-packages on its path as empty package modules (their ``__init__`` files
are not run) and imports just those leaf modules. Nothing here patches or copies the peer's code.
"""
from __future__ import annotations

import importlib
import importlib.util
import sys
import types
from pathlib import Path
from typing import Any, Dict

PACKAGE = "stable_worldmodel"
ENV_ID = "swm/PushT-v1"
# Sub-packages whose __init__ would pull in modules the benchmark does not need (torchvision, lancedb, ...).
_PACKAGES = ("", "envs", "envs.pusht", "wm", "wm.lewm", "wm.pldm")
_cache: Dict[str, Any] = {}


class ExtraMissing(ImportError):
    """The benchmark extra (requirements-bench.txt + stable-worldmodel) is not installed here."""


def package_dir() -> Path:
    """Where stable_worldmodel is installed (found without importing it)."""
    spec = importlib.util.find_spec(PACKAGE) if PACKAGE not in sys.modules else sys.modules[PACKAGE].__spec__
    if spec is None or not spec.submodule_search_locations:
        raise ExtraMissing(
            f"{PACKAGE} is not installed: run `make bench-pusht-setup` (benchmarks/pusht/README.md)"
        )
    return Path(list(spec.submodule_search_locations)[0])


def _register_packages() -> None:
    root = package_dir()
    for sub in _PACKAGES:
        name = PACKAGE + ("." + sub if sub else "")
        if name in sys.modules:
            continue
        mod = types.ModuleType(name)
        mod.__path__ = [str(root.joinpath(*sub.split("."))) if sub else str(root)]
        mod.__package__ = name
        sys.modules[name] = mod
        if sub:
            parent, _, leaf = name.rpartition(".")
            setattr(sys.modules[parent], leaf, mod)


def load() -> Dict[str, Any]:
    """The peer's modules: {"PushT", "LeWM", "PLDM", "lewm_module", "pldm_module", "SIGReg", "PLDMLoss"}."""
    if _cache:
        return _cache
    _register_packages()
    # spaces.py reads `swm.utils.get_in`; utils itself needs only numpy + loguru.
    sys.modules[PACKAGE].utils = importlib.import_module(f"{PACKAGE}.utils")
    sys.modules[PACKAGE].spaces = importlib.import_module(f"{PACKAGE}.spaces")
    env_mod = importlib.import_module(f"{PACKAGE}.envs.pusht.env")
    loss = importlib.import_module(f"{PACKAGE}.wm.loss")
    _cache.update(
        PushT=env_mod.PushT,
        LeWM=importlib.import_module(f"{PACKAGE}.wm.lewm.lewm").LeWM,
        PLDM=importlib.import_module(f"{PACKAGE}.wm.pldm.pldm").PLDM,
        lewm_module=importlib.import_module(f"{PACKAGE}.wm.lewm.module"),
        pldm_module=importlib.import_module(f"{PACKAGE}.wm.pldm.module"),
        SIGReg=loss.SIGReg,
        PLDMLoss=loss.PLDMLoss,
    )
    return _cache


def make_env(resolution: int) -> Any:
    """``gymnasium.make("swm/PushT-v1", resolution=...)``, registered under the package's own id."""
    import gymnasium as gym

    load()
    if ENV_ID not in gym.registry:
        gym.register(id=ENV_ID, entry_point=f"{PACKAGE}.envs.pusht.env:PushT")
    return gym.make(ENV_ID, resolution=resolution, disable_env_checker=True)
