"""GPU check: TensorRT engine build + cache, FP16 parity vs torch FP32, and the latency table.

Run by scripts/gpu_check.sh (which sets up the environment); can also be run directly:
    python scripts/gpu_check.py --out results/gpu_check [--models tiny,vit_s16_224] [--batch 128]

For each model size (untrained weights: latency does not depend on them, and parity is a property
of the graphs, not of training):
  1. export ONNX (FP32 and FP16 graphs) and build TensorRT FP16 engines (timed), then load them again
     from the engine cache (timed: the start-up cost a robot pays after the first run);
  2. parity of TensorRT FP16, ONNX Runtime CUDA FP32 and torch FP16 against torch FP32;
  3. latency: encoder at batch 1, predictor at the planner's batch, for torch eager FP32, torch FP16
     (autocast), ONNX Runtime CUDA (FP32), TensorRT FP16. Median of repeated calls, each timed to
     completion (torch.cuda.synchronize), i.e. what the planner node sees per call.
Writes gpu_check.md (the table) and gpu_check.json to --out. Exit code 1 when a parity check fails.
"""
from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
import traceback
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional

import torch

# Parity tolerance, relative L2 error ||out - ref|| / ||ref|| against torch FP32 (TF32 off):
# FP16 rounds each value to 2^-11 relative (~5e-4); matmuls accumulate in FP32 inside TensorRT, so the
# error grows roughly with sqrt(depth) through LayerNorm/attention/MLP blocks: a few 1e-3 for 12 layers.
# 1e-2 leaves margin for that while any real defect (wrong layout, wrong normalisation constants, a
# dropped residual, mixed-up inputs) gives errors of order 1e-1..1. The same bound is used for ONNX
# Runtime's CUDA EP "FP32", whose cuBLAS/cuDNN kernels may use TF32 (the same 10-bit mantissa as FP16).
REL_L2_TOL = 1e-2


def rel_l2(out: torch.Tensor, ref: torch.Tensor) -> float:
    return float((out.float() - ref.float()).norm() / ref.float().norm().clamp_min(1e-12))


def gpu_ms(fn: Callable[[], Any], repeats: int, warmup: int = 10) -> float:
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    return 1e3 * statistics.median(times)


def versions() -> Dict[str, Optional[str]]:
    out: Dict[str, Optional[str]] = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "gpu": torch.cuda.get_device_name(0),
    }
    for mod in ("tensorrt", "onnxruntime", "onnx"):
        try:
            out[mod] = __import__(mod).__version__
        except Exception as e:  # report, do not stop: the table marks what could not run
            out[mod] = f"unavailable ({type(e).__name__}: {e})"
    return out


def check_model(size: str, batch: int, repeats: int, work: Path) -> Dict[str, Any]:
    from ami_world_model.inference.export import cached_onnx
    from ami_world_model.inference.ort_backend import OnnxRuntimeBackend
    from ami_world_model.inference.tensorrt_backend import TensorRTBackend
    from ami_world_model.inference.torch_backend import TorchBackend
    from ami_world_model.models.config import WorldModelConfig
    from ami_world_model.models.world_model import WorldModel

    torch.manual_seed(0)
    cfg = getattr(WorldModelConfig, size)()
    model = WorldModel(cfg).eval()
    with torch.no_grad():
        # Untrained, the predictor's head is zero (output = input z): perturb every weight so the
        # predictor parity compares real computation, not a copy of the input.
        for p in model.parameters():
            p.add_(0.02 * torch.randn_like(p))
    dev = torch.device("cuda")
    res: Dict[str, Any] = {
        "model": size, "params_M": round(sum(p.numel() for p in model.parameters()) / 1e6, 2),
        "image": f"{cfg.image.height}x{cfg.image.width}", "N": cfg.num_latents, "D": cfg.latent_dim,
        "context_frames": cfg.context_frames, "predictor_batch": batch,
        "latency_ms": {}, "parity_rel_l2": {}, "notes": [],
    }
    g = torch.Generator(device="cpu").manual_seed(1)
    images = torch.rand(1, 3, cfg.image.height, cfg.image.width, generator=g).to(dev)
    z = torch.randn(batch, cfg.context_frames, cfg.num_latents, cfg.latent_dim, generator=g).to(dev)
    lo, hi = torch.tensor(cfg.action.low), torch.tensor(cfg.action.high)
    actions = (lo + (hi - lo) * torch.rand(batch, cfg.context_frames, cfg.action.dim, generator=g)).to(dev)

    t0 = time.perf_counter()
    onnx32 = cached_onnx(model, work)
    res["export_fp32_s"] = round(time.perf_counter() - t0, 2)

    backends: Dict[str, Any] = {}
    backends["torch eager FP32"] = TorchBackend(model, device="cuda")
    backends["torch FP16 (autocast)"] = TorchBackend(model, device="cuda", fp16=True)
    try:
        backends["ONNX Runtime CUDA FP32"] = OnnxRuntimeBackend(cfg, onnx32.encoder, onnx32.predictor, device="cuda")
    except Exception as e:
        res["notes"].append(f"ONNX Runtime CUDA unavailable: {e}")
    fails = []
    try:
        t0 = time.perf_counter()
        trt = TensorRTBackend(model, device="cuda", cache_dir=work, precision="fp16", max_batch=batch)
        res["tensorrt_build_s"] = round(time.perf_counter() - t0, 2)  # fp16 ONNX export + build (or cache hit)
        trt.close()
        t0 = time.perf_counter()
        trt = TensorRTBackend(model, device="cuda", cache_dir=work, precision="fp16", max_batch=batch)
        res["tensorrt_cached_load_s"] = round(time.perf_counter() - t0, 2)
        res["engines"] = {k: str(v) for k, v in trt.engine_paths.items()}
        backends["TensorRT FP16"] = trt
    except Exception as e:  # keep measuring the other backends; the check still fails
        res["notes"].append(f"TensorRT FP16 failed: {type(e).__name__}: {e}")
        fails.append("TensorRT FP16 could not be built/loaded")
        traceback.print_exc()

    with torch.no_grad():
        # The reference is true FP32: torch lets cuDNN convolutions use TF32 by default.
        tf32 = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
        torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
        ref_z = backends["torch eager FP32"].encode(images)
        ref_next = backends["torch eager FP32"].next(z, actions)
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = tf32
        for name, b in backends.items():
            if name == "torch eager FP32":
                continue
            res["parity_rel_l2"][name] = {
                "encoder": rel_l2(b.encode(images), ref_z),
                "predictor": rel_l2(b.next(z, actions), ref_next),
            }
        for name, b in backends.items():
            enc = gpu_ms(lambda b=b: b.encode(images), repeats)
            pred = gpu_ms(lambda b=b: b.next(z, actions), repeats)
            res["latency_ms"][name] = {"encoder_b1": round(enc, 3), f"predictor_b{batch}": round(pred, 3)}
    for b in backends.values():
        b.close()

    for name, errs in res["parity_rel_l2"].items():
        for part, err in errs.items():
            if not err < REL_L2_TOL:
                fails.append(f"{name} {part}: rel L2 {err:.2e} >= {REL_L2_TOL:.0e}")
    res["parity_failures"] = fails
    return res


def table(all_res: List[Dict[str, Any]], info: Dict[str, Any]) -> str:
    lines = [
        "# GPU check: inference backends",
        "",
        f"{info['date']} UTC · GPU {info['versions']['gpu']} · torch {info['versions']['torch']} "
        f"(CUDA {info['versions']['cuda']}) · TensorRT {info['versions']['tensorrt']} · "
        f"ONNX Runtime {info['versions']['onnxruntime']}",
        "",
        "Median wall time per call to completion (ms), untrained weights (latency does not depend on them).",
        f"Parity: relative L2 error vs torch FP32 (TF32 off); tolerance {REL_L2_TOL:.0e} (see gpu_check.py).",
        "",
    ]
    for r in all_res:
        if "error" in r:
            lines += [f"## {r['model']}: FAILED", "", "```", r["error"], "```", ""]
            continue
        pk = f"predictor_b{r['predictor_batch']}"
        lines += [
            f"## {r['model']} ({r['params_M']} M params, {r['image']}, N={r['N']}, D={r['D']}, "
            f"k={r['context_frames']})",
            "",
            f"| backend | encoder, batch 1 (ms) | predictor, batch {r['predictor_batch']} (ms) | "
            "predictor batches/s | parity encoder | parity predictor |",
            "|---|---|---|---|---|---|",
        ]
        for name, lat in r["latency_ms"].items():
            par = r["parity_rel_l2"].get(name)
            pe, pp = (f"{par['encoder']:.1e}", f"{par['predictor']:.1e}") if par else ("reference", "reference")
            lines.append(f"| {name} | {lat['encoder_b1']:.3f} | {lat[pk]:.3f} | {1e3 / lat[pk]:.0f} | {pe} | {pp} |")
        lines += [
            "",
            f"TensorRT FP16 engines: first build {r.get('tensorrt_build_s', '-')} s (incl. FP16 ONNX export), "
            f"load from cache {r.get('tensorrt_cached_load_s', '-')} s. Parity: "
            + ("PASS" if not r["parity_failures"] else "FAIL: " + "; ".join(r["parity_failures"])),
        ]
        lines += [f"Note: {n}" for n in r["notes"]] + [""]
    return "\n".join(lines) + "\n"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, default=Path("results") / "gpu_check")
    p.add_argument("--models", default="tiny,vit_s16_224", help="WorldModelConfig factories, comma separated")
    p.add_argument("--batch", type=int, default=None, help="predictor batch (default: PlannerConfig.num_samples)")
    p.add_argument("--repeats", type=int, default=100)
    args = p.parse_args()
    if not torch.cuda.is_available():
        print("gpu_check: torch sees no CUDA device (is this the CUDA build of torch? is a GPU visible?)")
        return 2
    from ami_world_model.inference.backends import default_max_batch

    batch = args.batch or default_max_batch()
    args.out.mkdir(parents=True, exist_ok=True)
    work = args.out / "cache"
    info = {"date": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime()), "versions": versions()}
    print(json.dumps(info, indent=2), flush=True)
    all_res = []
    for size in [s.strip() for s in args.models.split(",") if s.strip()]:
        t0 = time.perf_counter()
        try:
            r = check_model(size, batch, args.repeats, work)
        except Exception:
            r = {"model": size, "error": traceback.format_exc()}
        r["wall_s"] = round(time.perf_counter() - t0, 1)
        print(json.dumps(r, indent=2), flush=True)
        all_res.append(r)
        # written after every model, so a time limit hit on a later (bigger) one keeps these results
        md = table(all_res, info)
        (args.out / "gpu_check.md").write_text(md)
        (args.out / "gpu_check.json").write_text(json.dumps({**info, "results": all_res}, indent=2) + "\n")
    print(md)
    bad = [r for r in all_res if "error" in r or r.get("parity_failures")]
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
