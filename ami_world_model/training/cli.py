"""`ami-wm train encoder|predictor`: JEPA pretraining, then the action-conditioned predictor.

  ami-wm train encoder   --data episodes.npz|bag_dir --out runs/enc [--steps N --batch-size B --seed S]
  ami-wm train predictor --data ... --encoder runs/enc --out runs/wm   (writes a full world model checkpoint)

Multi-process: `torchrun --nproc_per_node 2 -m ami_world_model.training.cli encoder ...` (or the `ami-wm`
script under torchrun): DDP over gloo on CPU, nccl on GPU; --batch-size is per process.
"""
from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from pathlib import Path
from typing import List

from ami_world_model.config import ConfigError, ImageSpec
from ami_world_model.data.episodes import EpisodeSet
from ami_world_model.models.config import READOUT_KINDS, PoseDynamicsConfig


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("stage", choices=["encoder", "predictor"], help="which stage to train")
    p.add_argument("--data", required=True, type=Path, help="EpisodeSet .npz or rosbag2 directory")
    p.add_argument("--out", required=True, type=Path, help="checkpoint stem: writes <out>.safetensors/.json")
    p.add_argument("--steps", type=int, default=None, help="total optimiser steps (default: the config's)")
    p.add_argument("--batch-size", type=int, default=None, help="per process")
    p.add_argument("--lr", type=float, default=None)
    p.add_argument("--seed", type=int, default=0,
                   help="seeds every stage the command runs (predictor: the read-out fine-tune and the "
                   "pose-dynamics head too)")
    p.add_argument("--val-every", type=int, default=None, help="validate (and save resume state) every N steps")
    p.add_argument("--resume", action="store_true", help="continue from <out>.train.safetensors/.json")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads per process")
    p.add_argument("--no-progress", action="store_true", help="no tqdm bar")
    enc = p.add_argument_group("encoder stage")
    enc.add_argument("--preset", choices=["tiny", "vit_s16_224"], default="tiny", help="encoder size")
    enc.add_argument("--pool", type=int, default=None,
                     help="average-pool the patch grid pool x pool into the latent grid (default: the preset's, 2 "
                     "for tiny: 64 px -> 4x4 tokens). 1 keeps every patch: 4x the planning cost, but a 3-pixel "
                     "object is read out far sooner (benchmarks/pusht/README.md)")
    enc.add_argument("--image-size", type=int, default=None, metavar="PX",
                     help="the model's square input in pixels (default: the preset's, 64 for tiny); frames are "
                     "area-resized to it. With --patch-size at PX / 8 the patch grid, and so the compute, stays "
                     "8 x 8 while each patch sees finer detail (benchmarks/pusht/README.md, run 13)")
    enc.add_argument("--patch-size", type=int, default=None, metavar="PX",
                     help="the encoder's patch side in pixels (default: the preset's, 8 for tiny)")
    pred = p.add_argument_group("predictor stage")
    pred.add_argument("--encoder", type=Path, help="encoder checkpoint (from `train encoder`) [predictor]")
    pred.add_argument("--context-frames", type=int, default=None, help="k")
    pred.add_argument("--horizon", type=int, default=None, help="rollout steps trained")
    pred.add_argument("--predictor-width", type=int, default=None,
                      help="predictor token width (default 64; a multiple of its 4 heads)")
    pred.add_argument("--predictor-depth", type=int, default=None, help="predictor transformer blocks (default 2)")
    pred.add_argument("--readout-steps", type=int, default=None,
                      help="with pose targets (--pose-topic): encoder + read-out fine-tune steps (0: no read-out)")
    pred.add_argument("--readout-kind", choices=list(READOUT_KINDS), default=None,
                      help="read-out head: mlp (default) or spatial (a softmax over the latent tokens; learns small "
                      "objects' positions faster)")
    pred.add_argument("--readout-keep-weight", type=float, default=None,
                      help="L1 pull of the fine-tuned latents towards the JEPA encoder's (default 0.1; 0 lets the "
                      "fine-tune move them freely: small objects are learned sooner, the latent drifts further)")
    pred.add_argument("--readout-lr", type=float, default=None,
                      help="peak learning rate of the read-out fine-tune (default 5e-4; PushT's 30,000 frames at "
                      "64 px learn the block sooner at 1e-3, benchmarks/pusht/README.md)")
    pred.add_argument("--readout-batch-size", type=int, default=None,
                      help="frames per read-out fine-tune step (default 64; PushT uses 32: at 64 px the same "
                      "read-out as 64 in 6 %% less time, benchmarks/pusht/README.md)")
    pred.add_argument("--readout-weight", action="append", default=[], metavar="OBJECT=W",
                      help="the read-out energy's weight of one object, e.g. tool=0.25 (default 1 each)")
    pred.add_argument("--pose-dynamics-frame", default=None, metavar="ORIGIN,HEADING",
                      help="with pose targets: also train read-out-space dynamics (models/pose_dynamics.py) in the "
                      "frame of the rigid body these two read-out objects mark, e.g. block,block_tip")
    pred.add_argument("--pose-dynamics-steps", type=int, default=None, help="optimiser steps of that head")
    pred.add_argument("--pose-dynamics-wall", action="append", default=[], metavar="X,Y,NX,NY",
                      help="a fixed wall the body can be pushed against (repeat per wall): a point on its surface "
                      "and its normal into the workspace, in the poses' units; the head then sees where the walls "
                      "lie in the body's frame (PushT's arena: benchmarks/pusht/README.md); write "
                      "--pose-dynamics-wall=-X,... when X is negative")
    pred.add_argument("--pose-dynamics-wall-range", type=float, default=None,
                      help="how far (the poses' units) the head sees a wall; farther ones read as at that distance")
    bag = p.add_argument_group("rosbag2 input (when --data is a bag directory)")
    bag.add_argument("--image-topic", default=None)
    bag.add_argument("--action-topic", default=None)
    bag.add_argument("--action-fields", default=None, help="comma list, e.g. twist.linear.x,twist.linear.y")
    bag.add_argument("--state-topic", default=None, help="sensor_msgs/JointState topic (e.g. /joint_states)")
    bag.add_argument("--state-field", choices=["position", "velocity", "effort"], default=None,
                     help="the JointState member read as the state (default position)")
    bag.add_argument("--state-joint", action="append", default=[], help="a joint to keep, in order (repeatable; "
                     "default all, in the bag's order)")
    bag.add_argument("--tolerance-s", type=float, default=None)
    bag.add_argument("--frame-skip", type=int, default=1, help="one model step = k recorded frames (their commands "
                     "averaged); the predictor's training windows still start at every frame")
    bag.add_argument("--image-crop", default=None, help="before the resize: none, center or x,y,w,h (set the "
                     "node's image_crop to the same)")
    bag.add_argument("--action-frame-id", default=None, help="expected frame_id of the action headers "
                     "(default: recorded from them)")
    bag.add_argument("--pose-topic", action="append", default=[], help="PoseStamped topic giving position targets "
                     "<name>.x/.y (repeatable, e.g. /tool_pose)")
    bag.add_argument("--pose-name", action="append", default=[], help="name per --pose-topic, in order (default: "
                     "the topic's last component without _pose)")


def load_data(args: argparse.Namespace, image: ImageSpec, every_frame: bool = False) -> EpisodeSet:
    """An EpisodeSet from a .npz file, or from a rosbag2 directory via data.bags (imported only then).

    ``every_frame``: read a bag at frame skip 1 (the training windows then apply ``--frame-skip`` and start at
    every recorded frame, k times the windows of reading every k-th frame) with the action box measured on
    the ``--frame-skip`` step's mean command.
    """
    path: Path = args.data
    if path.is_dir():
        from ami_world_model.data.bags import BagSpec, load_episodes  # lazy: rosbags only for bag input

        skip = {"frame_skip": 1, "action_box_skip": args.frame_skip} if every_frame else {"frame_skip": args.frame_skip}
        kw = {"image_size": [image.height, image.width], **skip,
              "pose_topics": list(args.pose_topic), "pose_names": list(args.pose_name)}
        if args.state_joint:
            kw["state_joints"] = list(args.state_joint)
        for name in ("image_topic", "action_topic", "state_topic", "state_field", "tolerance_s", "image_crop",
                     "action_frame_id"):
            if getattr(args, name) is not None:
                kw[name] = getattr(args, name)
        if args.action_fields:
            kw["action_fields"] = [f.strip() for f in args.action_fields.split(",") if f.strip()]
        return load_episodes(path, BagSpec(**kw))
    if path.suffix == ".npz" and path.exists():
        return EpisodeSet.load(path)
    raise FileNotFoundError(f"--data {path}: expected an EpisodeSet .npz file or a rosbag2 directory")


def _overrides(args: argparse.Namespace, names: List[str]) -> dict:
    return {n: getattr(args, n) for n in names if getattr(args, n, None) is not None}


def _readout_config(base, args: argparse.Namespace):
    weights = {}
    for item in args.readout_weight:
        obj, sep, value = item.partition("=")
        try:
            weights[obj.strip()] = float(value)
        except ValueError:
            sep = ""
        if not sep or not obj.strip():
            raise SystemExit(f"--readout-weight {item!r}: expected OBJECT=WEIGHT, e.g. tool=0.25")
    kw = {"weights": weights} if weights else {}
    kw["seed"] = args.seed  # one --seed for every stage: a second seed is a second fine-tune
    if args.readout_steps is not None:
        kw["steps"] = args.readout_steps
    if args.readout_kind is not None:
        kw["kind"] = args.readout_kind
    if args.readout_keep_weight is not None:
        if args.readout_keep_weight < 0:
            raise SystemExit(f"--readout-keep-weight {args.readout_keep_weight}: must be >= 0")
        kw["keep_weight"] = args.readout_keep_weight
    if args.readout_lr is not None:
        if not args.readout_lr > 0:
            raise SystemExit(f"--readout-lr {args.readout_lr}: must be > 0")
        kw["lr"] = args.readout_lr
    if args.readout_batch_size is not None:
        if args.readout_batch_size < 1:
            raise SystemExit(f"--readout-batch-size {args.readout_batch_size}: must be >= 1")
        kw["batch_size"] = args.readout_batch_size
    return replace(base, **kw)


def _pose_dynamics_config(cfg, args: argparse.Namespace):
    """``cfg.pose_dynamics`` with --pose-dynamics-frame / --pose-dynamics-steps and --seed; SystemExit on bad
    values."""
    kw = {"seed": args.seed}
    if args.pose_dynamics_frame is not None:
        frame = [o.strip() for o in args.pose_dynamics_frame.split(",") if o.strip()]
        if len(frame) != 2 or frame[0] == frame[1]:
            raise SystemExit(f"--pose-dynamics-frame {args.pose_dynamics_frame!r}: expected two different read-out "
                             "objects ORIGIN,HEADING, e.g. block,block_tip")
        kw["frame"] = frame
    if args.pose_dynamics_steps is not None:
        if args.pose_dynamics_steps < 1:
            raise SystemExit(f"--pose-dynamics-steps {args.pose_dynamics_steps}: must be >= 1")
        kw["steps"] = args.pose_dynamics_steps
    if args.pose_dynamics_wall:
        kw["walls"] = [_wall(text) for text in args.pose_dynamics_wall]
    if args.pose_dynamics_wall_range is not None:
        kw["wall_range"] = args.pose_dynamics_wall_range
    out = replace(cfg.pose_dynamics, **kw)
    try:  # the head's config checks walls and range: said now, before any data is read
        PoseDynamicsConfig(walls=out.walls, wall_range=out.wall_range)
    except ConfigError as e:
        raise SystemExit(f"--pose-dynamics-wall / --pose-dynamics-wall-range: {e}") from None
    return out


def _wall(text: str) -> List[float]:
    try:
        wall = [float(x) for x in text.split(",")]
    except ValueError:
        wall = []
    if len(wall) != 4:
        raise SystemExit(f"--pose-dynamics-wall {text!r}: expected four numbers X,Y,NX,NY")
    return wall


def main(args: argparse.Namespace) -> int:
    import torch

    from ami_world_model.models.config import WorldModelConfig
    from ami_world_model.training import common

    if args.threads:
        torch.set_num_threads(args.threads)
    ctx = common.init_distributed(args.device)
    try:
        common_kw = _overrides(args, ["steps", "batch_size", "lr", "val_every"])
        common_kw["seed"] = args.seed
        if args.stage == "encoder":
            from ami_world_model.training.train_encoder import EncoderTrainConfig, train_encoder

            preset = getattr(WorldModelConfig, args.preset)()
            try:  # a bad --pool / --image-size / --patch-size is a usage error, said before any data is read
                given = {k: v for k, v in (("pool", args.pool), ("image_size", args.image_size),
                                           ("patch_size", args.patch_size)) if v is not None}
                encoder_cfg = replace(preset.encoder, **{k: v for k, v in given.items() if k != "image_size"})
                image = preset.image if args.image_size is None else replace(
                    preset.image, height=args.image_size, width=args.image_size)
                encoder_cfg.latent_grid(image)
            except ConfigError as e:
                flags = " / ".join(f"--{k.replace('_', '-')} {v}" for k, v in given.items())
                raise SystemExit(f"{flags}: {e}") from None
            cfg = replace(EncoderTrainConfig(image=image, encoder=encoder_cfg), **common_kw)
            data = load_data(args, cfg.image)
            _, metrics = train_encoder(data, cfg, out=args.out, resume=args.resume, ctx=ctx,
                                       show_progress=not args.no_progress)
        else:
            from ami_world_model.models.checkpoint import load_encoder
            from ami_world_model.training.train_predictor import PredictorTrainConfig, train_predictor

            if args.encoder is None:
                print("ami-wm train predictor: --encoder <checkpoint> is required", file=sys.stderr)
                return 2
            pose_dynamics = _pose_dynamics_config(PredictorTrainConfig(), args)  # usage errors before any loading
            encoder, _ = load_encoder(args.encoder)
            cfg = replace(PredictorTrainConfig(), **common_kw, **_overrides(args, ["context_frames", "horizon"]))
            size = {name: value for name, value in (("embed_dim", args.predictor_width),
                                                    ("depth", args.predictor_depth)) if value is not None}
            try:  # a bad size is a usage error, said before any data is read
                cfg = replace(cfg, predictor=replace(cfg.predictor, **size))
            except ConfigError as e:
                raise SystemExit(f"--predictor-width / --predictor-depth: {e}") from None
            cfg = replace(cfg, readout=_readout_config(cfg.readout, args),
                          pose_dynamics=pose_dynamics)
            if args.frame_skip < 1:
                raise SystemExit(f"--frame-skip {args.frame_skip}: must be >= 1")
            data = load_data(args, encoder.image, every_frame=True)
            cfg = replace(cfg, frame_skip=args.frame_skip)
            _, metrics = train_predictor(data, encoder, cfg, out=args.out, resume=args.resume, ctx=ctx,
                                         show_progress=not args.no_progress)
        if ctx.is_main:
            summary = {k: v for k, v in metrics.items() if k != "history"}
            print(json.dumps(summary, sort_keys=True))
    finally:
        common.close_distributed(ctx)
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="ami_world_model.training.cli")
    add_arguments(parser)
    sys.exit(main(parser.parse_args()))
