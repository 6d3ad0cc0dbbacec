"""Inference: ONNX export and the torch / onnxruntime / tensorrt backends behind one interface.

Import from the submodules (``inference.backends.make_backend``, ``inference.export.export_onnx``);
this package imports nothing heavy so ``ami-wm --help`` stays fast.
"""
