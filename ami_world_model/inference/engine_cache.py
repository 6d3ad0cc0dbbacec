"""On-disk cache of TensorRT engines, keyed so a stale, corrupt or foreign engine is never run.

An engine is only valid for the exact ONNX graph, TensorRT version, GPU model, precision and
optimisation profile it was built with. Each cached file carries its key in a small header in front of
the serialized engine, plus a sha256 of the engine bytes:

    MAGIC | u64 little-endian header length | header JSON (key, payload sha256 and size) | engine bytes

``read_engine`` checks all of it and raises ``EngineFileError`` naming what is wrong; the TensorRT
backend then rebuilds (default) or refuses. Pure Python (no tensorrt import), so it is tested on CPU.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import struct
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Sequence, Tuple, Union

from ami_world_model.inference.errors import BackendError

MAGIC = b"AMI-WM-TRT-ENGINE\n"
FORMAT_VERSION = 1
_LEN = struct.Struct("<Q")
_MAX_HEADER = 1 << 20  # a longer "header" means this is not our file
DEFAULT_MAX_ENGINE_BYTES = 8 << 30  # without a model to size it by (the backend passes max_engine_bytes)


class EngineFileError(BackendError):
    """A cached engine file cannot be used: missing, foreign, corrupt, or built for another key."""


# One optimisation-profile entry: (input name, min shape, opt shape, max shape).
ProfileEntry = Tuple[str, Tuple[int, ...], Tuple[int, ...], Tuple[int, ...]]


@dataclass(frozen=True)
class EngineKey:
    """Everything an engine depends on. Two engines are interchangeable iff their keys are equal."""

    onnx_sha256: str
    tensorrt_version: str
    gpu_name: str
    precision: str  # "fp16" or "fp32"
    profile: Tuple[ProfileEntry, ...] = ()

    def to_dict(self) -> Dict[str, Any]:
        d = dataclasses.asdict(self)
        d["profile"] = [[name, list(lo), list(opt), list(hi)] for name, lo, opt, hi in self.profile]
        return d

    @classmethod
    def from_dict(cls, d: Dict[str, Any]) -> EngineKey:
        prof = tuple((str(n), tuple(lo), tuple(opt), tuple(hi)) for n, lo, opt, hi in d["profile"])
        return cls(str(d["onnx_sha256"]), str(d["tensorrt_version"]), str(d["gpu_name"]), str(d["precision"]), prof)

    def digest(self) -> str:
        """Short stable id of the key, used in the file name."""
        blob = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":")).encode()
        return hashlib.sha256(blob).hexdigest()[:16]

    def differences(self, other: EngineKey) -> List[str]:
        """Human-readable list of the fields in which ``other`` differs from this key."""
        out = []
        for f in dataclasses.fields(self):
            a, b = getattr(self, f.name), getattr(other, f.name)
            if a != b:
                out.append(f"{f.name}: file has {b!r}, expected {a!r}")
        return out


def make_profile(inputs: Dict[str, Sequence[int]], max_batch: int, opt_batch: int) -> Tuple[ProfileEntry, ...]:
    """Profile covering batch 1..max_batch (opt at ``opt_batch``) for inputs whose dim 0 is the batch."""
    if not 1 <= opt_batch <= max_batch:
        raise ValueError(f"need 1 <= opt_batch ({opt_batch}) <= max_batch ({max_batch})")
    prof = []
    for name in sorted(inputs):
        rest = tuple(int(x) for x in inputs[name][1:])
        prof.append((name, (1, *rest), (opt_batch, *rest), (max_batch, *rest)))
    return tuple(prof)


def sha256_file(path: Union[str, Path]) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def engine_path(cache_dir: Union[str, Path], stem: str, key: EngineKey) -> Path:
    """Where the engine for ``key`` lives: a new key gets a new file, so a rebuild never clobbers
    an engine another process (another GPU model, another precision) still uses."""
    return Path(cache_dir) / f"{stem}.{key.precision}.{key.digest()}.engine"


def write_engine(path: Union[str, Path], engine: bytes, key: EngineKey) -> Path:
    """Write header + engine atomically (temp file + rename): a crash never leaves half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    header = json.dumps(
        {
            "format_version": FORMAT_VERSION,
            "key": key.to_dict(),
            "payload_sha256": hashlib.sha256(engine).hexdigest(),
            "payload_bytes": len(engine),
        },
        sort_keys=True,
    ).encode()
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(MAGIC + _LEN.pack(len(header)) + header)
            f.write(engine)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def read_engine(path: Union[str, Path], key: EngineKey, max_bytes: int = DEFAULT_MAX_ENGINE_BYTES) -> bytes:
    """The engine bytes in ``path`` if its header matches ``key`` and the bytes are intact.

    The header is read and checked first (key, and the engine size against the file and ``max_bytes``);
    the engine bytes are read only when all of it holds, so a foreign or oversized file costs no memory.

    Raises:
        EngineFileError: missing file, not one of ours (foreign), truncated/corrupt, too large, or another key.
    """
    path = Path(path)
    if not path.is_file():
        raise EngineFileError(f"engine file {path} does not exist")
    size = path.stat().st_size
    with open(path, "rb") as f:
        if f.read(len(MAGIC)) != MAGIC:
            raise EngineFileError(
                f"engine file {path} is not an ami_world_model engine (no header; a raw or foreign file)"
            )
        raw_len = f.read(_LEN.size)
        if len(raw_len) < _LEN.size:
            raise EngineFileError(f"engine file {path} is truncated (no header length)")
        (hlen,) = _LEN.unpack(raw_len)
        off = len(MAGIC) + _LEN.size
        if hlen > _MAX_HEADER or size < off + hlen:
            raise EngineFileError(f"engine file {path} is corrupt (header length {hlen})")
        try:
            header = json.loads(f.read(hlen).decode())
            file_key = EngineKey.from_dict(header["key"])
            want_sha, want_len = str(header["payload_sha256"]), int(header["payload_bytes"])
            version = int(header["format_version"])
        except (ValueError, KeyError, TypeError, UnicodeDecodeError) as e:
            raise EngineFileError(f"engine file {path} has a corrupt header ({e})") from e
        if version != FORMAT_VERSION:
            raise EngineFileError(f"engine file {path} has header format {version}, expected {FORMAT_VERSION}")
        diffs = key.differences(file_key)
        if diffs:
            raise EngineFileError(f"engine file {path} was built for another configuration: " + "; ".join(diffs))
        if size - off - hlen != want_len:
            raise EngineFileError(
                f"engine file {path} is corrupt: {size - off - hlen} engine bytes, header says {want_len}"
            )
        if want_len > max_bytes:
            raise EngineFileError(
                f"engine file {path} holds a {want_len}-byte engine, more than the {max_bytes} bytes allowed for "
                "this model; refusing to load it"
            )
        payload = f.read()
    if len(payload) != want_len or hashlib.sha256(payload).hexdigest() != want_sha:
        raise EngineFileError(
            f"engine file {path} is corrupt: {len(payload)} engine bytes, header says {want_len} "
            "(or their sha256 differs)"
        )
    return payload


def max_engine_bytes(num_params: int) -> int:
    """Upper bound of a sane engine for a graph with ``num_params`` weights: FP32 weights several times over
    (TensorRT keeps tactic-specific copies) plus a fixed allowance for kernels and metadata."""
    return 8 * 4 * int(num_params) + (256 << 20)
