"""The ONNX contract between the exporter and the backends: tensor names, shapes and metadata.

``encoder.onnx``:   images [B,3,H,W] float32 in [0,1]               -> latents [B,N,D]
``predictor.onnx``: z [B,k,N,D], actions [B,k,A] (physical units)
                    (, states [B,k,S] when the model uses them)    -> next_latents [B,N,D]

B is dynamic in both (the planner's whole candidate batch is one call); k = ``context_frames`` is
fixed at export because the predictor's block-causal mask depends on it. Normalisation of images,
actions and states is inside the graphs. Each file carries the checkpoint's config JSON and a hash of
the weights in ``metadata_props``, so a backend can refuse an ONNX file exported from another model.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Union

import torch

from ami_world_model.config import to_dict
from ami_world_model.inference.errors import BackendError
from ami_world_model.models.config import WorldModelConfig
from ami_world_model.models.world_model import WorldModel

ENCODER_FILE, PREDICTOR_FILE = "encoder", "predictor"
ENCODER_INPUTS, ENCODER_OUTPUT = ("images",), "latents"
PREDICTOR_OUTPUT = "next_latents"
BATCH = "batch"

META_CONFIG = "ami_world_model.config"  # WorldModelConfig as JSON (the checkpoint's config)
META_ROLE = "ami_world_model.role"  # "encoder" | "predictor"
META_WEIGHTS = "ami_world_model.weights_sha256"  # hash of the state dict the graph was exported from
META_PRECISION = "ami_world_model.precision"  # "fp32" | "fp16" (fp16 inside; inputs/outputs stay fp32)
META_FORMAT = "ami_world_model.onnx_format"
ONNX_FORMAT = 1


def onnx_filename(role: str, precision: str = "fp32") -> str:
    """encoder.onnx / predictor.onnx for fp32; encoder.fp16.onnx / predictor.fp16.onnx for fp16."""
    return f"{role}.onnx" if precision == "fp32" else f"{role}.{precision}.onnx"


def predictor_inputs(config: WorldModelConfig) -> List[str]:
    return ["z", "actions"] + (["states"] if config.state.dim else [])


def expected_shapes(config: WorldModelConfig, role: str) -> Dict[str, List[Union[int, str]]]:
    """Name -> shape (``"batch"`` for the dynamic axis) of every input and output of ``role``."""
    n, d, k = config.num_latents, config.latent_dim, config.context_frames
    if role == "encoder":
        return {"images": [BATCH, 3, config.image.height, config.image.width], ENCODER_OUTPUT: [BATCH, n, d]}
    if role == "predictor":
        shapes: Dict[str, List[Union[int, str]]] = {
            "z": [BATCH, k, n, d],
            "actions": [BATCH, k, config.action.dim],
        }
        if config.state.dim:
            shapes["states"] = [BATCH, k, config.state.dim]
        shapes[PREDICTOR_OUTPUT] = [BATCH, n, d]
        return shapes
    raise ValueError(f"role must be 'encoder' or 'predictor', got {role!r}")


def weights_sha256(module: torch.nn.Module) -> str:
    """Stable hash of a module's state dict (names, dtypes, shapes, values), independent of file format."""
    h = hashlib.sha256()
    for name, t in sorted(module.state_dict().items()):
        t = t.detach().cpu().contiguous()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


def config_json(config: WorldModelConfig) -> str:
    return json.dumps(to_dict(config), sort_keys=True)


def metadata(role: str, config: WorldModelConfig, weights: str, precision: str) -> Dict[str, str]:
    return {
        META_FORMAT: str(ONNX_FORMAT),
        META_ROLE: role,
        META_CONFIG: config_json(config),
        META_WEIGHTS: weights,
        META_PRECISION: precision,
    }


def read_metadata(model: object) -> Dict[str, str]:
    """metadata_props of an ``onnx.ModelProto`` as a dict."""
    return {p.key: p.value for p in model.metadata_props}  # type: ignore[attr-defined]


def graph_shapes(model: object) -> Dict[str, List[Union[int, str]]]:
    """Name -> shape of the graph's inputs and outputs (symbolic dims as their names, unknown as '?')."""
    out: Dict[str, List[Union[int, str]]] = {}
    graph = model.graph  # type: ignore[attr-defined]
    for vi in list(graph.input) + list(graph.output):
        dims: List[Union[int, str]] = []
        for dim in vi.type.tensor_type.shape.dim:
            dims.append(dim.dim_value if dim.HasField("dim_value") else (dim.dim_param or "?"))
        out[vi.name] = dims
    return out


def check_shapes(
    actual: Dict[str, Sequence[Union[int, str]]],
    config: WorldModelConfig,
    role: str,
    where: str,
) -> None:
    """Raise BackendError naming every input/output whose shape disagrees with the checkpoint config.

    ``actual`` maps tensor names to shapes; dynamic dims may be strings or -1 (TensorRT's notation).
    """
    want = expected_shapes(config, role)
    problems = []
    missing = sorted(set(want) - set(actual))
    extra = sorted(set(actual) - set(want))
    if missing or extra:
        problems.append(f"tensors {sorted(actual)} != expected {sorted(want)}")
    for name in sorted(set(want) & set(actual)):
        w, a = list(want[name]), list(actual[name])
        if len(w) != len(a):
            problems.append(f"'{name}' has rank {len(a)} {a}, checkpoint expects {w}")
            continue
        for i, (wd, ad) in enumerate(zip(w, a)):
            if wd == BATCH:
                continue  # dynamic batch: anything goes (TensorRT reports -1, ONNX a name)
            if ad != wd:
                problems.append(f"'{name}' dim {i} is {ad}, checkpoint expects {wd} (shape {w})")
    if problems:
        raise BackendError(
            f"{where} does not match the checkpoint config ({role}): " + "; ".join(problems)
            + ". Re-export it from this checkpoint (`ami-wm export <checkpoint>`)."
        )


def check_onnx(
    model: object, config: WorldModelConfig, role: str, where: str, weights: Optional[str] = None
) -> None:
    """Check an ONNX ModelProto against the checkpoint: role, shapes, and (when given) the weights hash."""
    meta = read_metadata(model)
    if meta.get(META_ROLE, role) != role:
        raise BackendError(f"{where} is a {meta[META_ROLE]} graph, expected the {role}")
    check_shapes(graph_shapes(model), config, role, where)
    if weights is not None and META_WEIGHTS in meta and meta[META_WEIGHTS] != weights:
        raise BackendError(
            f"{where} was exported from other weights than this checkpoint "
            f"({meta[META_WEIGHTS][:12]}... != {weights[:12]}...); re-export it from this checkpoint"
        )


def max_onnx_bytes(config: WorldModelConfig, role: str) -> int:
    """Upper bound of a sane ``role`` graph for ``config``: its FP32 weights twice over plus 64 MiB for the
    graph itself. The weights are counted on a meta-device model (no storage)."""
    with torch.device("meta"):
        model = WorldModel(config)
    part = model.encoder if role == "encoder" else model.predictor
    return 2 * 4 * sum(p.numel() for p in part.parameters()) + (64 << 20)


def check_onnx_file(path: Path, config: WorldModelConfig, role: str, weights: Optional[str] = None) -> None:
    """Check an ONNX file against the checkpoint before a runtime gets it: the file size against
    ``max_onnx_bytes``, then (reading the graph without external data) role, shapes and weights hash.

    Raises:
        BackendError: missing, oversized, unreadable, or made for another model.
    """
    import onnx

    path = Path(path)
    if not path.is_file():
        raise BackendError(f"{role} ONNX file {path} does not exist")
    size, limit = path.stat().st_size, max_onnx_bytes(config, role)
    if size > limit:
        raise BackendError(f"{path} is {size} bytes, more than the {limit} a {role} of this checkpoint can need; "
                           "refusing to load it (re-export it: `ami-wm export <checkpoint>`)")
    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as e:  # protobuf raises its own DecodeError for a corrupt file
        raise BackendError(f"{path}: not a readable ONNX file ({e})") from e
    check_onnx(model, config, role, str(path), weights)
