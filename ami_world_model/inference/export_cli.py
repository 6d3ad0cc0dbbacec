"""`ami-wm export <checkpoint>`: ONNX files (and, with --tensorrt, TensorRT engines) for a checkpoint.

The command only; the export itself is ``inference.export`` (a library the backends use too).
"""
from __future__ import annotations

import argparse
import logging
from pathlib import Path

from ami_world_model.inference.backends import default_max_batch
from ami_world_model.inference.errors import BackendError
from ami_world_model.inference.export import DEFAULT_OPSET, MIN_OPSET, export_onnx
from ami_world_model.inference.tensorrt_backend import TensorRTBackend
from ami_world_model.models.checkpoint import CheckpointError, checkpoint_paths, load_world_model


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("checkpoint", type=Path, help="world-model checkpoint (.safetensors + .json)")
    p.add_argument("--out-dir", type=Path, default=None,
                   help="where to write the ONNX files (default: <checkpoint dir>/<name>_onnx)")
    p.add_argument("--opset", type=int, default=DEFAULT_OPSET, help=f"ONNX opset (>= {MIN_OPSET})")
    p.add_argument("--fp16-onnx", action="store_true",
                   help="also write encoder.fp16.onnx / predictor.fp16.onnx (FP16 inside, FP32 I/O)")
    p.add_argument("--tensorrt", action="store_true",
                   help="also build TensorRT engines into <out-dir>/engines (needs an NVIDIA GPU + tensorrt)")
    prec = p.add_mutually_exclusive_group()
    prec.add_argument("--fp16", dest="precision", action="store_const", const="fp16",
                      help="TensorRT engines in FP16 (default)")
    prec.add_argument("--fp32", dest="precision", action="store_const", const="fp32",
                      help="TensorRT engines in FP32")
    p.set_defaults(precision="fp16")
    p.add_argument("--max-batch", type=int, default=None,
                   help="largest predictor batch the engine accepts (default: the planner's num_samples)")


def main(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        model = load_world_model(args.checkpoint)
    except (CheckpointError, OSError) as e:
        print(f"ami-wm export: cannot load {args.checkpoint}: {e}")
        return 2
    stem = checkpoint_paths(args.checkpoint)[0].with_suffix("")
    out_dir = args.out_dir or stem.parent / f"{stem.name}_onnx"
    try:
        result = export_onnx(model, out_dir, opset=args.opset)
        print(f"encoder:   {result.encoder}\npredictor: {result.predictor}")
        if args.fp16_onnx or (args.tensorrt and args.precision == "fp16"):
            half = export_onnx(model, out_dir, opset=args.opset, precision="fp16")
            print(f"encoder (fp16):   {half.encoder}\npredictor (fp16): {half.predictor}")
        if args.tensorrt:
            backend = TensorRTBackend(
                model, device="cuda", cache_dir=out_dir / "engines", precision=args.precision,
                max_batch=args.max_batch or default_max_batch(), onnx_dir=out_dir, opset=args.opset,
            )
            for role, path in backend.engine_paths.items():
                print(f"{role} engine ({args.precision}): {path}")
            backend.close()
    except (BackendError, ValueError) as e:
        print(f"ami-wm export: {e}")
        return 2
    return 0
