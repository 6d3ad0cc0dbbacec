"""Checkpoints: ``<name>.safetensors`` (weights) + ``<name>.json`` (config, kind, format_version, extra).

Loading never unpickles: the JSON rebuilds the model, safetensors fills it, and every disagreement
(unknown version or kind, bad config, missing / unexpected tensors, shape or dtype mismatch, a corrupt
file) raises CheckpointError naming it. Before the model is built, the config's sizes are bounded and
compared with the tensor shapes in the safetensors header (checkpoint_check.py), so a config that does
not fit its weights costs no memory. Two kinds share the format: "world_model" (encoder + predictor,
what the planner loads) and "encoder" (a JEPA-pretrained encoder, the input of predictor training).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Dict, Optional, Tuple, Union

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from ami_world_model.config import ConfigError, ImageSpec, from_dict, json_ready, to_dict
from ami_world_model.models.checkpoint_check import (
    CheckpointError,
    check_encoder_limits,
    check_header,
    check_world_model_limits,
    expected_state,
    read_safetensors_header,
)
from ami_world_model.models.config import EncoderConfig, WorldModelConfig
from ami_world_model.models.encoder import Encoder
from ami_world_model.models.world_model import WorldModel

FORMAT_VERSION = 1
PathLike = Union[str, Path]


__all__ = ["CheckpointError", "checkpoint_paths", "load_encoder", "load_world_model", "read_meta", "save_encoder",
           "save_world_model"]


def checkpoint_paths(path: PathLike) -> Tuple[Path, Path]:
    """``runs/wm`` or ``runs/wm.json`` or ``runs/wm.safetensors`` -> (weights path, json path)."""
    p = Path(path)
    if p.suffix in (".json", ".safetensors"):
        p = p.with_suffix("")
    return p.with_name(p.name + ".safetensors"), p.with_name(p.name + ".json")


def _save(module: nn.Module, path: PathLike, meta: Dict[str, Any]) -> Path:
    weights, meta_path = checkpoint_paths(path)
    weights.parent.mkdir(parents=True, exist_ok=True)
    # contiguous clones: safetensors refuses shared or strided storage
    tensors = {k: v.detach().cpu().contiguous().clone() for k, v in module.state_dict().items()}
    save_file(tensors, str(weights), metadata={"format_version": str(FORMAT_VERSION), "kind": meta["kind"]})
    meta_path.write_text(json.dumps(json_ready(meta), indent=2, sort_keys=True) + "\n")
    return weights.with_suffix("")


def read_meta(path: PathLike) -> Dict[str, Any]:
    """The checkpoint's JSON, with format_version checked."""
    _, meta_path = checkpoint_paths(path)
    if not meta_path.exists():
        raise CheckpointError(f"{meta_path}: checkpoint config not found")
    try:
        meta = json.loads(meta_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise CheckpointError(f"{meta_path}: corrupt checkpoint config ({e})") from e
    if not isinstance(meta, dict):
        raise CheckpointError(f"{meta_path}: checkpoint config must be a JSON object")
    version = meta.get("format_version")
    if version != FORMAT_VERSION:
        raise CheckpointError(
            f"{meta_path}: unknown checkpoint format_version {version!r} (this code reads {FORMAT_VERSION})"
        )
    return meta


def _check_weights(path: PathLike, build) -> None:
    """Compare the safetensors header with the tensors ``build()`` would make (on the meta device)."""
    weights, _ = checkpoint_paths(path)
    if not weights.exists():
        raise CheckpointError(f"{weights}: checkpoint weights not found")
    try:
        header = read_safetensors_header(weights)
    except OSError as e:
        raise CheckpointError(f"{weights}: cannot read the weights file ({e})") from e
    check_header(header, expected_state(build), weights)


def _fill(module: nn.Module, path: PathLike) -> None:
    """Load the safetensors weights into ``module``. Call ``_check_weights`` first: it has matched every
    tensor's name, shape and dtype in the file's header against the config (``check_header``)."""
    weights, _ = checkpoint_paths(path)
    try:
        tensors = load_file(str(weights))
    except (SafetensorError, OSError, ValueError, RuntimeError) as e:
        raise CheckpointError(f"{weights}: corrupt weights file ({e})") from e
    module.load_state_dict(tensors, strict=True)


def _kind(meta: Dict[str, Any], want: str, path: PathLike) -> None:
    if meta.get("kind") != want:
        raise CheckpointError(
            f"{checkpoint_paths(path)[1]}: checkpoint kind is {meta.get('kind')!r}, expected {want!r}"
        )


def save_world_model(model: WorldModel, path: PathLike, extra: Optional[Dict[str, Any]] = None) -> Path:
    """Write ``<path>.safetensors`` + ``<path>.json``; returns the path stem. ``extra``: JSON-able notes."""
    meta = {"format_version": FORMAT_VERSION, "kind": "world_model", "config": to_dict(model.config),
            "extra": extra or {}}
    return _save(model, path, meta)


def load_world_model(path: PathLike, map_location: Union[str, torch.device] = "cpu") -> WorldModel:
    """Rebuild a WorldModel from its checkpoint (eval mode). Raises CheckpointError on any mismatch."""
    meta = read_meta(path)
    _kind(meta, "world_model", path)
    try:
        cfg = from_dict(WorldModelConfig, meta["config"], "config")
    except (ConfigError, KeyError, TypeError) as e:
        raise CheckpointError(f"{checkpoint_paths(path)[1]}: bad world model config: {e}") from e
    check_world_model_limits(cfg, str(checkpoint_paths(path)[1]))
    _check_weights(path, lambda: WorldModel(cfg))
    model = WorldModel(cfg)
    _fill(model, path)
    return model.to(map_location).eval()


def save_encoder(encoder: Encoder, path: PathLike, extra: Optional[Dict[str, Any]] = None) -> Path:
    """Write a JEPA-pretrained encoder checkpoint (kind "encoder")."""
    meta = {"format_version": FORMAT_VERSION, "kind": "encoder", "image": to_dict(encoder.image),
            "encoder": to_dict(encoder.cfg), "extra": extra or {}}
    return _save(encoder, path, meta)


def load_encoder(path: PathLike) -> Tuple[Encoder, Dict[str, Any]]:
    """Rebuild an encoder checkpoint; also accepts a world model checkpoint (its encoder). -> (encoder, meta)."""
    meta = read_meta(path)
    if meta.get("kind") == "world_model":
        return load_world_model(path).encoder, meta
    _kind(meta, "encoder", path)
    try:
        image = from_dict(ImageSpec, meta["image"], "image")
        cfg = from_dict(EncoderConfig, meta["encoder"], "encoder")
        check_encoder_limits(cfg, image, str(checkpoint_paths(path)[1]))
        _check_weights(path, lambda: Encoder(cfg, image))
        enc = Encoder(cfg, image)
    except (ConfigError, KeyError, TypeError) as e:
        raise CheckpointError(f"{checkpoint_paths(path)[1]}: bad encoder config: {e}") from e
    _fill(enc, path)
    return enc.eval(), meta
