"""The one error type every inference backend raises for configuration problems."""
from __future__ import annotations


class BackendError(RuntimeError):
    """A backend cannot be used as configured; the message says why and what to do.

    Raised at construction ("configure time"), never at the first frame: an asked-for backend that
    is not installed, an engine file that is corrupt or was built for another model / GPU / TensorRT,
    or ONNX / engine shapes that disagree with the checkpoint's config.
    """
