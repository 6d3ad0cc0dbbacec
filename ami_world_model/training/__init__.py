"""Training: JEPA pretraining of the encoder, then the action-conditioned predictor on the frozen encoder.

    ami-wm train encoder   --data data.npz|bag_dir --out runs/enc --steps 3000
    ami-wm train predictor --data data.npz|bag_dir --encoder runs/enc --out runs/wm --steps 3000
    torchrun --nproc_per_node 2 .venv/bin/ami-wm train encoder ...     # DDP (gloo on CPU, nccl on GPU)

Each run writes ``<out>.safetensors/.json`` and a resume state ``<out>.train.safetensors/.json``
(``--resume`` continues it); a seed fixes everything (weights, batches, masks).
"""
