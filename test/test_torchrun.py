"""`torchrun --nproc_per_node 2` on CPU (gloo): both training stages run, and both ranks end identical.

This file is also the worker torchrun starts: `torchrun ... test/test_torchrun.py <out_dir>` trains a few
steps of each stage through the real DDP path and writes every rank's final weights for the test to compare.
"""
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TORCHRUN = ROOT / ".venv" / "bin" / "torchrun"


def _worker(out_dir: str) -> None:
    import torch
    from safetensors.torch import save_file

    from ami_world_model.data.synthetic import make_synthetic
    from ami_world_model.models.config import EncoderConfig, JepaConfig, PredictorConfig
    from ami_world_model.training import common
    from ami_world_model.training.train_encoder import EncoderTrainConfig, train_encoder
    from ami_world_model.training.train_predictor import PredictorTrainConfig, train_predictor

    torch.set_num_threads(1)
    ctx = common.init_distributed("cpu")
    assert ctx.world_size == 2, f"expected 2 processes, got {ctx.world_size}"
    data = make_synthetic(episodes=4, length=12, seed=0)
    enc_cfg = EncoderTrainConfig(steps=4, batch_size=4, warmup_steps=1, val_every=0,
                                 encoder=EncoderConfig(depth=2), jepa=JepaConfig(depth=1))
    out = Path(out_dir)
    enc, _ = train_encoder(data, enc_cfg, out=out / "enc", ctx=ctx, show_progress=False, log=lambda s: None)
    pred_cfg = PredictorTrainConfig(steps=4, batch_size=4, warmup_steps=1, val_every=0, horizon=2,
                                    predictor=PredictorConfig(depth=1))
    wm, _ = train_predictor(data, enc, pred_cfg, out=out / "wm", ctx=ctx, show_progress=False,
                            log=lambda s: None)
    tensors = {f"wm.{k}": v.contiguous() for k, v in wm.state_dict().items()}
    save_file(tensors, str(out / f"rank{ctx.rank}.safetensors"))
    common.close_distributed(ctx)


@pytest.mark.skipif(not TORCHRUN.exists(), reason="torchrun not installed in .venv")
def test_torchrun_two_ranks_identical(tmp_path):
    import torch
    from safetensors.torch import load_file

    from ami_world_model.models.checkpoint import load_encoder, load_world_model

    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT))
    cmd = [str(TORCHRUN), "--nproc_per_node", "2", "--master_port", str(29500 + os.getpid() % 1000),
           str(Path(__file__).resolve()), str(tmp_path)]
    res = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=240)
    assert res.returncode == 0, f"torchrun failed:\n{res.stdout[-3000:]}\n{res.stderr[-3000:]}"
    r0 = load_file(str(tmp_path / "rank0.safetensors"))
    r1 = load_file(str(tmp_path / "rank1.safetensors"))
    assert r0.keys() == r1.keys() and len(r0) > 10
    for k in r0:
        assert torch.equal(r0[k], r1[k]), f"ranks differ in {k}"
    # rank 0 wrote the checkpoints once, and they hold the trained weights
    wm = load_world_model(tmp_path / "wm")
    assert all(torch.equal(v, r0[f"wm.{k}"]) for k, v in wm.state_dict().items())
    enc, meta = load_encoder(tmp_path / "enc")
    assert meta["extra"]["metrics"]["steps"] == 4
    # training moved the predictor away from its zero-initialised head
    assert r0["wm.predictor.head.weight"].abs().sum() > 0


if __name__ == "__main__":
    _worker(sys.argv[1])
