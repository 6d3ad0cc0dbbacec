"""rosbag2 <-> EpisodeSet: read any bag (MCAP or sqlite3) of standard messages into training episodes, and
write bags the way a real robot's ``ros2 bag record`` would (used by ``ami-wm collect``).

Only ``rosbags`` (pure Python) is used: no rclpy, no ROS install needed to train from a bag.

Synchronisation: every image is matched with the action (and state) whose timestamp is nearest to it, within
``tolerance_s``; images with no match are dropped and the episode is split there, because frame ``t`` followed
by frame ``t + 2`` would teach the model a wrong transition. Episodes also split at time gaps and at
``/episode_start`` markers when the bag has them (a real bag has none; gaps are enough).

Positions for a read-out head come from ``geometry_msgs/PoseStamped`` topics (a fiducial tracker, TF, or the
simulator's ground truth): each pose topic gives the targets ``<name>.x, <name>.y``, matched like the state, and a
frame without a pose is dropped like a frame without an action.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Iterable, List, Optional, Sequence, Tuple

import numpy as np

from ami_world_model.config import ActionSpec, ConfigError, StateSpec
from ami_world_model.data.episodes import Episode, EpisodeSet
from ami_world_model.data.frame_skip import every_step_mean_action, step_mean_action
from ami_world_model.data.image_decoding import crop_image, decode_any, parse_crop, resize_rgb
from ami_world_model.safety import InputError

IMAGE_TYPES = ("sensor_msgs/msg/Image", "sensor_msgs/msg/CompressedImage")
ACTION_TYPES = (
    "geometry_msgs/msg/TwistStamped",
    "geometry_msgs/msg/Twist",
    "trajectory_msgs/msg/JointTrajectory",
    "sensor_msgs/msg/JointState",
    "std_msgs/msg/Float64MultiArray",
)
POSE_TYPE = "geometry_msgs/msg/PoseStamped"
POSE_AXES = ("x", "y")  # pose.position members read per pose topic, in this order


class BagError(ValueError):
    """The bag cannot give what the BagSpec asks for; the message says what is there instead."""


@dataclass
class BagSpec:
    """Which topics and fields of a bag make an episode, and how to align them."""

    image_topic: str = "/camera/image_raw"  # sensor_msgs/Image (8-bit colour/mono, YUV 4:2:2, NV12) or CompressedImage
    action_topic: str = "/servo_node/delta_twist_cmds"
    # Field paths into the action message: dots for members, [i] for indices, [name] for a joint by name
    # (looked up in `name` / `joint_names`), e.g. "twist.linear.x", "points[0].velocities[elbow]", "data[1]".
    action_fields: List[str] = field(default_factory=lambda: ["twist.linear.x", "twist.linear.y"])
    action_kind: str = "twist"  # ActionSpec.kind
    action_names: List[str] = field(default_factory=list)  # default: fields without the leading "twist."
    # Frame of twist actions; None: the action messages' header.frame_id (an error if they disagree).
    action_frame_id: Optional[str] = None
    action_low: List[float] = field(default_factory=list)  # empty: data percentiles
    action_high: List[float] = field(default_factory=list)
    action_percentile: float = 1.0  # low/high from the [p, 100 - p] percentiles when not configured
    action_offset_s: float = 0.0  # added to an image's time before matching (command latency)
    state_topic: Optional[str] = None  # e.g. "/joint_states" (sensor_msgs/JointState); None: no state
    state_joints: List[str] = field(default_factory=list)  # joint names to keep; empty: all, in bag order
    state_field: str = "position"  # JointState member read for the state
    # PoseStamped topics giving position targets (metres), e.g. ["/tool_pose", "/block_pose"]; empty: none.
    pose_topics: List[str] = field(default_factory=list)
    # One name per pose topic; empty: the topic's last component without "_pose" ("/block_pose" -> "block").
    pose_names: List[str] = field(default_factory=list)
    tolerance_s: float = 0.04  # nearest match must be this close (keep below half a frame period)
    frame_skip: int = 1  # keep every k-th frame; the actions in between are averaged
    # The data-percentile action box is measured on the mean command over this many records (0: frame_skip).
    # The predictor stage reads a bag at frame_skip 1 (windows start at every frame) and sets this to its
    # model step, so the box is that of the actions the model is trained on.
    action_box_skip: int = 0
    image_size: List[int] = field(default_factory=lambda: [64, 64])  # (height, width) after INTER_AREA resize
    image_crop: str = "none"  # before the resize: none, center or "x,y,w,h" (as the node's crop parameter)
    episode_gap_s: float = 0.5  # frames further apart than this always start a new episode
    gap_factor: float = 1.5  # ... and so do frames further apart than gap_factor x the median frame period
    episode_topic: Optional[str] = "/episode_start"  # markers, used when present (any message type)
    min_episode_frames: int = 2
    use_header_stamp: bool = True  # header.stamp when the message has one (non-zero), else the receive time

    def __post_init__(self) -> None:
        if not self.action_fields:
            raise ConfigError("BagSpec.action_fields must name at least one field")
        if self.action_names and len(self.action_names) != len(self.action_fields):
            raise ConfigError("BagSpec.action_names must match action_fields one to one")
        if bool(self.action_low) != bool(self.action_high) or (
            self.action_low and len(self.action_low) != len(self.action_fields)
        ):
            raise ConfigError("BagSpec.action_low/high: both empty or both one value per action field")
        if self.frame_skip < 1 or self.tolerance_s <= 0 or len(self.image_size) != 2 or min(self.image_size) <= 0:
            raise ConfigError(f"BagSpec: need frame_skip >= 1, tolerance_s > 0, image_size (h, w) > 0: {self}")
        if self.action_box_skip < 0 or self.action_box_skip % self.frame_skip:
            raise ConfigError(f"BagSpec.action_box_skip {self.action_box_skip}: must be 0 or a multiple of "
                              f"frame_skip {self.frame_skip}")
        try:
            parse_crop(self.image_crop)
        except ValueError as exc:
            raise ConfigError(f"BagSpec.image_crop: {exc}") from None
        if self.pose_names and len(self.pose_names) != len(self.pose_topics):
            raise ConfigError(f"BagSpec.pose_names {self.pose_names} must match pose_topics {self.pose_topics} "
                              "one to one (or be empty)")
        if len(set(self.pose_topics)) != len(self.pose_topics):
            raise ConfigError(f"BagSpec.pose_topics has duplicates: {self.pose_topics}")
        names = self.pose_name_list()
        if len(set(names)) != len(names) or not all(names):
            raise ConfigError(f"BagSpec: pose names {names} (from {self.pose_topics}) must be unique and non-empty; "
                              "set pose_names")

    def names(self) -> List[str]:
        if self.action_names:
            return list(self.action_names)
        if self.action_kind == "twist":
            return [f[len("twist."):] if f.startswith("twist.") else f for f in self.action_fields]
        return list(self.action_fields)

    def pose_name_list(self) -> List[str]:
        """One name per pose topic: pose_names, or each derived with ``pose_name_from_topic``."""
        return list(self.pose_names) or [pose_name_from_topic(t) for t in self.pose_topics]

    def target_names(self) -> List[str]:
        """The columns of Episode.targets: ``<name>.x, <name>.y`` per pose topic, in topic order."""
        return [f"{n}.{a}" for n in self.pose_name_list() for a in POSE_AXES]


def pose_name_from_topic(topic: str) -> str:
    """The topic's last component without a trailing "_pose": "/block_pose" -> "block", "/tracker/tool" -> "tool"."""
    last = topic.rstrip("/").rsplit("/", 1)[-1]
    return last[: -len("_pose")] if last.endswith("_pose") else last


# ---------------------------------------------------------------------------------------------- messages
def typestore():
    """The rosbags typestore for ROS 2 Jazzy (standard message definitions; Humble's are CDR-identical)."""
    from rosbags.typesys import Stores, get_typestore

    return get_typestore(Stores.ROS2_JAZZY)


_SEGMENT = re.compile(r"^([A-Za-z_]\w*)((?:\[[^\]]+\])*)$")


def resolve_field(msg: Any, path: str) -> float:
    """The number at ``path`` in ``msg`` (see BagSpec.action_fields for the syntax)."""
    obj, root = msg, msg
    for seg in path.split("."):
        m = _SEGMENT.match(seg)
        if m is None:
            raise BagError(f"bad field path {path!r} at {seg!r}")
        parent = obj
        try:
            obj = getattr(obj, m.group(1))
        except AttributeError:
            raise BagError(f"{type(parent).__name__} has no field {m.group(1)!r} (path {path!r})") from None
        for ix in re.findall(r"\[([^\]]+)\]", m.group(2)):
            if re.fullmatch(r"-?\d+", ix):
                obj = obj[int(ix)]
                continue
            names = None
            for holder in (parent, root):
                names = getattr(holder, "name", None) or getattr(holder, "joint_names", None)
                if names:
                    break
            if not names or ix not in list(names):
                raise BagError(f"{path!r}: no joint named {ix!r} in {list(names or [])}")
            obj = obj[list(names).index(ix)]
    return float(obj)


def _stamp(msg: Any, bag_time_ns: int, use_header: bool) -> float:
    header = getattr(msg, "header", None)
    if use_header and header is not None:
        t = header.stamp.sec + header.stamp.nanosec * 1e-9
        if t > 0:
            return float(t)
    return bag_time_ns * 1e-9


def action_frame(msgs: Sequence[Any], configured: Optional[str]) -> str:
    """The frame the actions are in: their headers' frame_id, checked against ``configured`` when given.

    Headerless actions (Twist, Float64MultiArray) and empty frame_ids carry no frame: then ``configured``
    (or "" when None) is used. Different non-empty frames in one bag are an error.
    """
    frames = {h.frame_id for h in (getattr(m, "header", None) for m in msgs) if h is not None and h.frame_id}
    if len(frames) > 1:
        raise BagError(f"action messages are in several frames {sorted(frames)}; record one frame per bag")
    found = frames.pop() if frames else None
    if configured is not None and found is not None and configured != found:
        raise BagError(f"BagSpec.action_frame_id is {configured!r} but the action headers say {found!r}")
    return found if found is not None else (configured or "")


# ---------------------------------------------------------------------------------------------- reading
def _read_topics(path: Path, topics: Dict[str, Optional[str]], spec: BagSpec) -> Dict[str, List[Tuple[float, Any]]]:
    """{topic: [(time_s, decoded message), ...]} for the wanted topics; errors name what the bag has."""
    from rosbags.rosbag2 import Reader

    store = typestore()
    out: Dict[str, List[Tuple[float, Any]]] = {t: [] for t in topics if t}
    with Reader(path) as reader:
        available = {c.topic: c.msgtype for c in reader.connections}
        for topic, allowed in topics.items():
            if topic is None:
                continue
            if topic not in available:
                if topic == spec.episode_topic:
                    out.pop(topic)  # markers are optional: a real robot's bag has none
                    continue
                raise BagError(f"{path}: no topic {topic!r}; the bag has {sorted(available)}")
            if allowed and available[topic] not in allowed:
                raise BagError(f"{path}: {topic} is {available[topic]}, expected one of {list(allowed)}")
        conns = [c for c in reader.connections if c.topic in out]
        for conn, t_ns, raw in reader.messages(connections=conns):
            if conn.topic == spec.episode_topic:
                out[conn.topic].append((t_ns * 1e-9, None))  # only the time matters; any type works
                continue
            msg = store.deserialize_cdr(raw, conn.msgtype)
            out[conn.topic].append((_stamp(msg, t_ns, spec.use_header_stamp), msg))
    for v in out.values():
        v.sort(key=lambda x: x[0])
    return out


def _nearest(times: np.ndarray, t: float, tol: float) -> int:
    """Index of the time nearest to t within tol, or -1."""
    if times.size == 0:
        return -1
    i = int(np.searchsorted(times, t))
    best, best_d = -1, tol
    for j in (i - 1, i):
        if 0 <= j < times.size and abs(times[j] - t) <= best_d:
            best, best_d = j, abs(times[j] - t)
    return best


def _state_vector(msg: Any, spec: BagSpec, names: List[str]) -> Optional[np.ndarray]:
    values = list(getattr(msg, spec.state_field))
    index = {n: i for i, n in enumerate(msg.name)}
    if any(n not in index or index[n] >= len(values) for n in names):
        return None  # a JointState for another group of joints: not ours
    return np.array([values[index[n]] for n in names], dtype=np.float32)


# One matched frame: (time s, image message, action [A], state [S] or None, targets [P] or None).
_Frame = Tuple[float, Any, np.ndarray, Optional[np.ndarray], Optional[np.ndarray]]


def _pose_series(path: Path, msgs: List[Tuple[float, Any]], topic: str) -> Tuple[np.ndarray, np.ndarray]:
    """A pose topic's (times [N], positions [N, 2]) as float32 metres; an error when it has no messages."""
    if not msgs:
        raise BagError(f"{path}: no messages on pose topic {topic} ({POSE_TYPE})")
    times = np.array([t for t, _ in msgs])
    xy = np.array([[getattr(m.pose.position, a) for a in POSE_AXES] for _, m in msgs], dtype=np.float32)
    return times, xy


def load_episodes(path: str | Path, spec: Optional[BagSpec] = None) -> EpisodeSet:
    """Read a rosbag2 directory (mcap or sqlite3) into an EpisodeSet, synchronised as ``spec`` says."""
    spec = spec or BagSpec()
    path = Path(path)
    if not path.exists():
        raise BagError(f"{path}: no such bag")
    topics: Dict[str, Optional[Tuple[str, ...]]] = {spec.image_topic: IMAGE_TYPES, spec.action_topic: ACTION_TYPES}
    if spec.state_topic:
        topics[spec.state_topic] = ("sensor_msgs/msg/JointState",)
    for pose_topic in spec.pose_topics:
        topics[pose_topic] = (POSE_TYPE,)
    if spec.episode_topic:
        topics[spec.episode_topic] = None
    data = _read_topics(path, topics, spec)
    images = data[spec.image_topic]
    if len(images) < 2:
        raise BagError(f"{path}: {len(images)} image(s) on {spec.image_topic}; need at least 2")
    img_t = np.array([t for t, _ in images])
    period = float(np.median(np.diff(img_t)[np.diff(img_t) > 0])) if len(images) > 1 else 0.0
    if not period > 0:
        raise BagError(f"{path}: image timestamps do not advance")
    act_t = np.array([t for t, _ in data[spec.action_topic]])
    act_v = np.array([[resolve_field(m, f) for f in spec.action_fields] for _, m in data[spec.action_topic]],
                     dtype=np.float32).reshape(-1, len(spec.action_fields))
    state_names: List[str] = []
    st_t = np.zeros(0)
    st_v: List[Optional[np.ndarray]] = []
    if spec.state_topic:
        msgs = data[spec.state_topic]
        if not msgs:
            raise BagError(f"{path}: no messages on {spec.state_topic}")
        state_names = list(spec.state_joints) or list(msgs[0][1].name)
        st_t = np.array([t for t, _ in msgs])
        st_v = [_state_vector(m, spec, state_names) for _, m in msgs]
    poses = [_pose_series(path, data[topic], topic) for topic in spec.pose_topics]  # [(times [N], xy [N, 2])]
    markers = np.array([t for t, _ in data.get(spec.episode_topic or "", [])])

    # Match every frame; None where something is missing.
    frames: List[Optional[_Frame]] = []
    for (t, msg) in images:
        ia = _nearest(act_t, t + spec.action_offset_s, spec.tolerance_s)
        st = None
        if spec.state_topic:
            js = _nearest(st_t, t, spec.tolerance_s)
            st = st_v[js] if js >= 0 else None
        hits = [_nearest(pt, t, spec.tolerance_s) for pt, _ in poses]
        if ia < 0 or (spec.state_topic and st is None) or any(h < 0 for h in hits):
            frames.append(None)
            continue
        targets = np.concatenate([xy[h] for (_, xy), h in zip(poses, hits)]) if poses else None  # [P]
        frames.append((t, msg, act_v[ia], st, targets))

    # Split into runs of consecutive matched frames without gaps or markers between them.
    runs: List[List[_Frame]] = []
    current: List[_Frame] = []
    max_step = min(spec.episode_gap_s, spec.gap_factor * period)
    for f in frames:
        if f is None:
            if current:
                runs.append(current)
            current = []
            continue
        if current:
            prev_t = current[-1][0]
            marker = markers.size > 0 and bool(np.any((markers > prev_t + 1e-6) & (markers <= f[0] + 1e-6)))
            if f[0] - prev_t > max_step or marker:
                runs.append(current)
                current = []
        current.append(f)
    if current:
        runs.append(current)

    episodes = [ep for ep in (_make_episode(r, spec) for r in runs) if ep is not None]
    if not episodes:
        raise BagError(
            f"{path}: no episode of >= {spec.min_episode_frames} frames: {len(images)} images, "
            f"{act_t.size} actions on {spec.action_topic}; check the topics and tolerance_s ({spec.tolerance_s})"
        )
    all_actions = np.concatenate([e.actions for e in episodes])
    box_skip = spec.action_box_skip // spec.frame_skip if spec.action_box_skip else 1  # in kept frames
    box_actions = all_actions if box_skip <= 1 else every_step_mean_action(episodes, box_skip)
    frame_id = action_frame([m for _, m in data[spec.action_topic]], spec.action_frame_id)
    action_spec = _action_spec(all_actions, box_actions, spec, period * spec.frame_skip, frame_id)
    state_spec = StateSpec()
    if spec.state_topic:
        all_states = np.concatenate([e.states for e in episodes if e.states is not None])
        state_spec = StateSpec(
            names=state_names,
            mean=[float(x) for x in all_states.mean(0)],
            std=[float(max(x, 1e-6)) for x in all_states.std(0)],
        )
    source = {
        "bag": str(path),
        "image_topic": spec.image_topic,
        "action_topic": spec.action_topic,
        "images_in_bag": len(images),
        "frames_dropped": int(sum(f is None for f in frames)),
        "frame_period_s": period,
        "frame_skip": spec.frame_skip,
        "action_frame_id": frame_id,
        "image_crop": spec.image_crop,
        "pose_topics": list(spec.pose_topics),
    }
    return EpisodeSet(episodes=episodes, action_spec=action_spec, state_spec=state_spec, source=source,
                      target_names=spec.target_names())


def _make_episode(run: List[_Frame], spec: BagSpec) -> Optional[Episode]:
    k = spec.frame_skip
    keep = list(range(0, len(run), k))
    if len(keep) < spec.min_episode_frames:
        return None
    # The action held from kept frame i to the next kept frame is the mean of the commands in between.
    commands = np.stack([r[2] for r in run])  # [T, A]
    actions = np.stack([step_mean_action(commands, i, k) for i in keep])
    images = np.stack([_frame_image(run[i], spec) for i in keep])  # [T, H, W, 3] uint8
    states = np.stack([run[i][3] for i in keep]).astype(np.float32) if spec.state_topic else None
    # A kept frame's target is the pose matched to that frame (not averaged over the skipped ones).
    targets = np.stack([run[i][4] for i in keep]).astype(np.float32) if spec.pose_topics else None  # [T, P]
    times = np.array([run[i][0] for i in keep], dtype=np.float64)
    return Episode(images=images, actions=actions.astype(np.float32), states=states, timestamps=times,
                   targets=targets)


def _frame_image(frame: _Frame, spec: BagSpec) -> np.ndarray:
    """A bag image -> [H, W, 3] uint8 at spec.image_size, cropped and decoded as the node does."""
    h, w = int(spec.image_size[0]), int(spec.image_size[1])
    try:
        rgb = decode_any(frame[1])
        return resize_rgb(crop_image(rgb, parse_crop(spec.image_crop), h, w), h, w)
    except InputError as exc:
        raise BagError(f"{spec.image_topic} at t={frame[0]:.3f} s: {exc}") from None


def _action_spec(actions: np.ndarray, box_actions: np.ndarray, spec: BagSpec, dt_s: float, frame_id: str
                 ) -> ActionSpec:
    """The recorded actions' spec; a data-derived box comes from ``box_actions`` (the model step's commands)."""
    if spec.action_low:
        low, high = list(map(float, spec.action_low)), list(map(float, spec.action_high))
    else:
        p = spec.action_percentile
        low = [float(x) for x in np.percentile(box_actions, p, axis=0)]
        high = [float(x) for x in np.percentile(box_actions, 100 - p, axis=0)]
        high = [h if h > lo else lo + 1e-3 for lo, h in zip(low, high)]  # a constant action still has a range
    return ActionSpec(
        kind=spec.action_kind,
        names=spec.names(),
        low=low,
        high=high,
        mean=[float(x) for x in actions.mean(0)],
        std=[float(max(x, 1e-6)) for x in actions.std(0)],
        frame_id=frame_id,
        dt_s=float(dt_s),
    )


# ---------------------------------------------------------------------------------------------- writing
class BagWriter:
    """Writes standard messages to a new rosbag2 (``storage`` "mcap" or "sqlite3"), sim time stamps in seconds.

    Every message's header stamp and its bag receive time are the same sim time, as when recording a
    simulator that publishes /clock.
    """

    def __init__(self, path: str | Path, storage: str = "mcap") -> None:
        from rosbags.rosbag2 import StoragePlugin, Writer

        plugins = {"mcap": StoragePlugin.MCAP, "sqlite3": StoragePlugin.SQLITE3}
        if storage not in plugins:
            raise ValueError(f"storage must be one of {sorted(plugins)}, got {storage!r}")
        self.path = Path(path)
        if self.path.exists():
            raise FileExistsError(f"{self.path} exists; rosbag2 writes a new directory")
        self.store = typestore()
        self._writer = Writer(self.path, version=9, storage_plugin=plugins[storage])
        self._writer.open()
        self._conns: Dict[str, Any] = {}
        self.counts: Dict[str, int] = {}
        t = self.store.types
        self._Time, self._Header = t["builtin_interfaces/msg/Time"], t["std_msgs/msg/Header"]

    def __enter__(self) -> BagWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    def header(self, t: float, frame_id: str) -> Any:
        ns = int(round(t * 1e9))
        return self._Header(stamp=self._Time(sec=ns // 1_000_000_000, nanosec=ns % 1_000_000_000), frame_id=frame_id)

    def write(self, topic: str, msg: Any, t: float) -> None:
        """Serialise ``msg`` (a typestore message) onto ``topic`` at receive time ``t`` seconds."""
        if topic not in self._conns:
            self._conns[topic] = self._writer.add_connection(topic, msg.__msgtype__, typestore=self.store)
        self._writer.write(self._conns[topic], int(round(t * 1e9)), self.store.serialize_cdr(msg, msg.__msgtype__))
        self.counts[topic] = self.counts.get(topic, 0) + 1

    def image(self, topic: str, t: float, rgb: np.ndarray, frame_id: str = "camera_optical_frame") -> None:
        h, w, _ = rgb.shape
        msg = self.store.types["sensor_msgs/msg/Image"](
            header=self.header(t, frame_id), height=h, width=w, encoding="rgb8", is_bigendian=0, step=w * 3,
            data=np.ascontiguousarray(rgb, dtype=np.uint8).reshape(-1),
        )
        self.write(topic, msg, t)

    def camera_info(self, topic: str, t: float, k: np.ndarray, hw: Sequence[int],
                    frame_id: str = "camera_optical_frame") -> None:
        ty = self.store.types
        k = np.asarray(k, dtype=np.float64).reshape(3, 3)
        p = np.hstack([k, np.zeros((3, 1))])
        msg = ty["sensor_msgs/msg/CameraInfo"](
            header=self.header(t, frame_id), height=int(hw[0]), width=int(hw[1]), distortion_model="plumb_bob",
            d=np.zeros(5), k=k.reshape(-1), r=np.eye(3).reshape(-1), p=p.reshape(-1), binning_x=0, binning_y=0,
            roi=ty["sensor_msgs/msg/RegionOfInterest"](x_offset=0, y_offset=0, height=0, width=0, do_rectify=False),
        )
        self.write(topic, msg, t)

    def joint_state(self, topic: str, t: float, names: Iterable[str], position: Sequence[float],
                    velocity: Sequence[float] = ()) -> None:
        msg = self.store.types["sensor_msgs/msg/JointState"](
            header=self.header(t, ""), name=list(names), position=np.asarray(position, dtype=np.float64),
            velocity=np.asarray(velocity, dtype=np.float64), effort=np.zeros(0),
        )
        self.write(topic, msg, t)

    def twist_stamped(self, topic: str, t: float, linear: Sequence[float], angular: Sequence[float] = (0, 0, 0),
                      frame_id: str = "base_link") -> None:
        ty = self.store.types
        v3 = ty["geometry_msgs/msg/Vector3"]
        twist = ty["geometry_msgs/msg/Twist"](linear=v3(*map(float, linear)), angular=v3(*map(float, angular)))
        self.write(topic, ty["geometry_msgs/msg/TwistStamped"](header=self.header(t, frame_id), twist=twist), t)

    def pose_stamped(self, topic: str, t: float, xyz: Sequence[float], quat_wxyz: Sequence[float] = (1, 0, 0, 0),
                     frame_id: str = "base_link") -> None:
        """A geometry_msgs/PoseStamped: position ``xyz`` (metres) and orientation ``quat_wxyz`` in ``frame_id``."""
        if len(xyz) != 3 or len(quat_wxyz) != 4:
            raise ValueError(f"pose_stamped needs xyz [3] and quat_wxyz [4], got {len(xyz)} and {len(quat_wxyz)}")
        ty = self.store.types
        w, x, y, z = map(float, quat_wxyz)
        pose = ty["geometry_msgs/msg/Pose"](position=ty["geometry_msgs/msg/Point"](*map(float, xyz)),
                                            orientation=ty["geometry_msgs/msg/Quaternion"](x=x, y=y, z=z, w=w))
        self.write(topic, ty["geometry_msgs/msg/PoseStamped"](header=self.header(t, frame_id), pose=pose), t)

    def string(self, topic: str, t: float, text: str) -> None:
        self.write(topic, self.store.types["std_msgs/msg/String"](data=text), t)
