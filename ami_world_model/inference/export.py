"""ONNX export of the world model's encoder and predictor (the library; `ami-wm export` is export_cli.py).

Exports use the TorchScript-based ``torch.onnx`` exporter (``dynamo=False``): it needs nothing beyond
torch and handles the dynamic batch axis of these plain transformer graphs. Every file is checked with
``onnx.checker`` and carries the checkpoint config + weights hash in ``metadata_props`` (see onnx_io).

``precision="fp16"`` exports an FP16 graph with FP32 inputs/outputs (casts at the edges). TensorRT 11
builds strongly typed networks only (the FP16 builder flag is gone), so the graph itself must be FP16;
the same file works with TensorRT 10 in strongly typed mode.
"""
from __future__ import annotations

import copy
import hashlib
import logging
import shutil
import tempfile
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Tuple, Union

import torch
from torch import Tensor, nn

from ami_world_model.inference import onnx_io
from ami_world_model.models.world_model import WorldModel

log = logging.getLogger(__name__)

MIN_OPSET = 17  # LayerNormalization is a single op from 17 on (TensorRT fuses it)
DEFAULT_OPSET = 17
PRECISIONS = ("fp32", "fp16")


@dataclass
class ExportedModels:
    """Paths of one export (ONNX files, and TensorRT engines when built)."""

    encoder: Path
    predictor: Path
    precision: str = "fp32"
    engines: Dict[str, Path] = field(default_factory=dict)


class _Encode(nn.Module):
    def __init__(self, wm: WorldModel) -> None:
        super().__init__()
        self.wm = wm

    def forward(self, images: Tensor) -> Tensor:
        return self.wm.encode(images)


class _Next(nn.Module):
    def __init__(self, wm: WorldModel) -> None:
        super().__init__()
        self.wm = wm

    def forward(self, z: Tensor, actions: Tensor) -> Tensor:
        return self.wm.next(z, actions)


class _NextWithStates(_Next):
    def forward(self, z: Tensor, actions: Tensor, states: Tensor) -> Tensor:  # type: ignore[override]
        return self.wm.next(z, actions, states)


class _Fp16(nn.Module):
    """Runs ``inner`` in FP16 while the graph's inputs and outputs stay FP32 (the backend contract)."""

    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner.half()

    def forward(self, *xs: Tensor) -> Tensor:
        return self.inner(*[x.half() for x in xs]).float()


def _example_inputs(config, role: str, batch: int = 2) -> Tuple[Tensor, ...]:
    shapes = onnx_io.expected_shapes(config, role)
    out = onnx_io.ENCODER_OUTPUT if role == "encoder" else onnx_io.PREDICTOR_OUTPUT
    gen = torch.Generator().manual_seed(0)
    xs = []
    for name, shape in shapes.items():
        if name == out:
            continue
        xs.append(torch.rand([batch if d == onnx_io.BATCH else int(d) for d in shape], generator=gen))
    return tuple(xs)


def _export_one(module: nn.Module, config, role: str, path: Path, opset: int, meta: Dict[str, str]) -> None:
    import onnx

    shapes = onnx_io.expected_shapes(config, role)
    names = list(shapes)
    inputs, output = names[:-1], names[-1]
    with warnings.catch_warnings():
        # The TorchScript exporter is deprecated in favour of the dynamo one, which needs onnxscript;
        # both give the same graph for these modules. Tracer warnings about shape asserts are expected.
        warnings.simplefilter("ignore")
        torch.onnx.export(
            module,
            _example_inputs(config, role),
            str(path),
            dynamo=False,
            opset_version=opset,
            input_names=inputs,
            output_names=[output],
            dynamic_axes={n: {0: onnx_io.BATCH} for n in names},
            do_constant_folding=True,
        )
    model = onnx.load(str(path))
    _fix_output_dims(model, shapes[output], output)
    for k, v in meta.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = k, v
    model.producer_name = "ami_world_model"
    onnx.checker.check_model(model, full_check=True)
    onnx_io.check_onnx(model, config, role, str(path))
    onnx.save(model, str(path))


def _fix_output_dims(model, shape, name: str) -> None:
    """Write the known static output dims into the graph.

    The tracer names output dims after the ops that made them (``Transposelatents_dim_1``) because a
    reshape uses the dynamic batch size; the sizes are fixed by the config, and stating them lets
    TensorRT and ONNX Runtime plan memory statically (and lets backends check them).
    """
    (out,) = [o for o in model.graph.output if o.name == name]
    dims = out.type.tensor_type.shape.dim
    for dim, want in zip(dims, shape):
        if want == onnx_io.BATCH:
            dim.dim_param = onnx_io.BATCH
        else:
            dim.dim_value = int(want)


def export_onnx(
    model: WorldModel,
    out_dir: Union[str, Path],
    opset: int = DEFAULT_OPSET,
    precision: str = "fp32",
) -> ExportedModels:
    """Export ``model`` to ``out_dir``/{encoder,predictor}[.fp16].onnx and return the paths.

    Raises:
        ValueError: opset below 17 or unknown precision.
    """
    if opset < MIN_OPSET:
        raise ValueError(f"opset {opset} is too old; use {MIN_OPSET} or newer")
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    config = model.config
    weights = onnx_io.weights_sha256(model)
    # Export a CPU FP32 copy in eval mode: the caller's model (maybe on CUDA, maybe training) is untouched.
    wm = copy.deepcopy(model).to("cpu", torch.float32).eval()
    enc: nn.Module = _Encode(wm)
    nxt: nn.Module = _NextWithStates(wm) if config.state.dim else _Next(wm)
    if precision == "fp16":
        enc, nxt = _Fp16(enc), _Fp16(nxt)
    paths = {}
    with torch.no_grad():
        for role, module in (("encoder", enc), ("predictor", nxt)):
            path = out_dir / onnx_io.onnx_filename(role, precision)
            _export_one(module, config, role, path, opset, onnx_io.metadata(role, config, weights, precision))
            paths[role] = path
    log.info("exported %s and %s (%s, opset %d)", paths["encoder"], paths["predictor"], precision, opset)
    return ExportedModels(paths["encoder"], paths["predictor"], precision)


def cached_onnx(
    model: WorldModel, cache_dir: Union[str, Path], precision: str = "fp32", opset: int = DEFAULT_OPSET
) -> ExportedModels:
    """``export_onnx`` into ``cache_dir``/onnx/<key>/, reusing an earlier export of the same model.

    The key hashes the weights, config, opset, precision and torch version, so any change re-exports.
    The export goes to a temporary folder renamed into place, so readers never see half a folder.
    """
    weights = onnx_io.weights_sha256(model)
    key_src = "|".join(
        [weights, onnx_io.config_json(model.config), str(opset), precision, torch.__version__,
         str(onnx_io.ONNX_FORMAT)]
    )
    key = hashlib.sha256(key_src.encode()).hexdigest()[:16]
    root = Path(cache_dir) / "onnx"
    final = root / key
    paths = ExportedModels(
        final / onnx_io.onnx_filename("encoder", precision),
        final / onnx_io.onnx_filename("predictor", precision),
        precision,
    )
    if paths.encoder.is_file() and paths.predictor.is_file():
        return paths
    root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=root, prefix=f".{key}."))
    try:
        export_onnx(model, tmp, opset=opset, precision=precision)
        try:
            tmp.rename(final)
        except OSError:
            if not (paths.encoder.is_file() and paths.predictor.is_file()):  # not a concurrent winner
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return paths
