"""Checks a checkpoint before memory is spent on it: size limits on the config, and the config against the
tensor shapes in the safetensors header.

A safetensors file starts with an 8-byte little-endian header length and a JSON header naming every
tensor's dtype, shape and byte range, so comparing it with what the config implies costs a few kB of
reading. The expected shapes come from the model built on the ``meta`` device (no storage, no
initialisation work), which runs only after the limits have bounded its size.
"""
from __future__ import annotations

import json
import math
import struct
from pathlib import Path
from typing import Callable, Dict, List, Tuple

import torch
from torch import nn

from ami_world_model.models.config import EncoderConfig, PredictorConfig, WorldModelConfig

# Far above ViT-g/14 (1408 wide, 40 deep, 1.0B parameters), far below what takes a Jetson down.
MAX_EMBED_DIM = 4096
MAX_DEPTH = 64
MAX_MLP_RATIO = 16.0
MAX_IMAGE_SIDE = 2048
MAX_FRAMES = 256
MAX_ACTION_OR_STATE_DIM = 256
MAX_PARAMS = 2_000_000_000
MAX_HEADER_BYTES = 100 << 20  # safetensors' own limit

_DTYPE_BYTES = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1, "U8": 1,
                "BOOL": 1}
_TORCH_DTYPES = {torch.float64: "F64", torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16",
                 torch.int64: "I64", torch.int32: "I32", torch.int16: "I16", torch.int8: "I8", torch.uint8: "U8",
                 torch.bool: "BOOL"}

Header = Dict[str, Tuple[str, List[int]]]  # tensor name -> (safetensors dtype, shape)


class CheckpointError(ValueError):
    """A checkpoint cannot be loaded; the message names the file and what is wrong."""


def read_safetensors_header(path: Path) -> Header:
    """Tensor name -> (dtype, shape) from a safetensors file's header, checked against the file size.

    Raises:
        CheckpointError: not a safetensors file, header too long or corrupt, byte ranges outside the file.
    """
    size = path.stat().st_size
    with open(path, "rb") as f:
        head = f.read(8)
        if len(head) < 8:
            raise CheckpointError(f"{path}: corrupt weights file ({size} bytes, no safetensors header)")
        (n,) = struct.unpack("<Q", head)
        if n > MAX_HEADER_BYTES or 8 + n > size:
            raise CheckpointError(f"{path}: corrupt weights file (header length {n}, file {size} bytes)")
        raw = f.read(n)
    try:
        header = json.loads(raw.decode("utf-8"))
        if not isinstance(header, dict):
            raise ValueError("the header is not a JSON object")
        header.pop("__metadata__", None)
        out: Header = {}
        for name, entry in header.items():
            dtype, shape, (lo, hi) = entry["dtype"], [int(d) for d in entry["shape"]], entry["data_offsets"]
            numel = math.prod(shape)
            if dtype not in _DTYPE_BYTES or min(shape, default=0) < 0 or not 0 <= lo <= hi <= size - 8 - n \
                    or hi - lo != numel * _DTYPE_BYTES[dtype]:
                raise ValueError(f"tensor {name!r}: {dtype} {shape} at bytes {lo}..{hi}")
            out[name] = (dtype, shape)
    except (ValueError, KeyError, TypeError, UnicodeDecodeError) as e:
        raise CheckpointError(f"{path}: corrupt weights file header ({e})") from e
    return out


def _limit(problems: List[str], what: str, value: float, limit: float) -> None:
    if value > limit:
        problems.append(f"{what} {value} > {limit}")


def _transformer_limits(problems: List[str], name: str, cfg) -> None:
    _limit(problems, f"{name}.embed_dim", cfg.embed_dim, MAX_EMBED_DIM)
    _limit(problems, f"{name}.depth", cfg.depth, MAX_DEPTH)
    _limit(problems, f"{name}.mlp_ratio", cfg.mlp_ratio, MAX_MLP_RATIO)


def check_encoder_limits(cfg: EncoderConfig, image, where: str) -> None:
    """CheckpointError when the encoder config asks for sizes beyond the limits (before anything is built)."""
    problems: List[str] = []
    _transformer_limits(problems, "encoder", cfg)
    _limit(problems, "image.height", image.height, MAX_IMAGE_SIDE)
    _limit(problems, "image.width", image.width, MAX_IMAGE_SIDE)
    _raise(problems, where)


def check_world_model_limits(cfg: WorldModelConfig, where: str) -> None:
    """CheckpointError when the world model config asks for sizes beyond the limits."""
    problems: List[str] = []
    _transformer_limits(problems, "encoder", cfg.encoder)
    predictor: PredictorConfig = cfg.predictor
    _transformer_limits(problems, "predictor", predictor)
    _limit(problems, "predictor.max_frames", predictor.max_frames, MAX_FRAMES)
    _limit(problems, "image.height", cfg.image.height, MAX_IMAGE_SIDE)
    _limit(problems, "image.width", cfg.image.width, MAX_IMAGE_SIDE)
    _limit(problems, "action.dim", cfg.action.dim, MAX_ACTION_OR_STATE_DIM)
    _limit(problems, "state.dim", cfg.state.dim, MAX_ACTION_OR_STATE_DIM)
    _limit(problems, "readout.dim", cfg.readout.dim, MAX_ACTION_OR_STATE_DIM)
    _limit(problems, "readout.hidden", cfg.readout.hidden, MAX_EMBED_DIM)
    _limit(problems, "pose_dynamics.hidden", cfg.pose_dynamics.hidden, MAX_EMBED_DIM)
    _limit(problems, "pose_dynamics.depth", cfg.pose_dynamics.depth, MAX_DEPTH)
    _limit(problems, "pose_dynamics.substeps", cfg.pose_dynamics.substeps, MAX_FRAMES)
    _limit(problems, "len(pose_dynamics.walls)", len(cfg.pose_dynamics.walls), MAX_ACTION_OR_STATE_DIM)
    _raise(problems, where)


def _raise(problems: List[str], where: str) -> None:
    if problems:
        raise CheckpointError(f"{where}: config beyond this package's size limits: " + "; ".join(problems)
                              + " (a corrupt or hostile config; nothing was allocated)")


def expected_state(build: Callable[[], nn.Module]) -> Dict[str, Tuple[str, List[int]]]:
    """Name -> (dtype, shape) of the persistent tensors ``build()`` would have, built on the meta device."""
    with torch.device("meta"):
        module = build()
    return {k: (_TORCH_DTYPES.get(v.dtype, str(v.dtype)), list(v.shape)) for k, v in module.state_dict().items()}


def check_header(header: Header, expected: Dict[str, Tuple[str, List[int]]], weights: Path) -> None:
    """CheckpointError naming every tensor the weights file and the config disagree on, and the parameter
    count when it is beyond ``MAX_PARAMS``."""
    missing = sorted(set(expected) - set(header))
    extra = sorted(set(header) - set(expected))
    if missing or extra:
        raise CheckpointError(
            f"{weights}: weights do not match the config: missing tensors {missing[:8]}"
            f"{' ...' if len(missing) > 8 else ''}, unexpected tensors {extra[:8]}{' ...' if len(extra) > 8 else ''}"
        )
    problems = []
    for name, (dtype, shape) in expected.items():
        got_dtype, got_shape = header[name]
        if got_shape != shape:
            problems.append(f"tensor {name!r} has shape {got_shape} but the config needs {shape}")
        elif got_dtype != dtype:
            problems.append(f"tensor {name!r} has dtype {got_dtype}, expected {dtype}")
    if problems:
        more = f" (and {len(problems) - 4} more)" if len(problems) > 4 else ""
        raise CheckpointError(f"{weights}: " + "; ".join(problems[:4]) + more)
    params = sum(math.prod(s) for _, s in expected.values())
    if params > MAX_PARAMS:
        raise CheckpointError(f"{weights}: {params} parameters > the limit {MAX_PARAMS}")
