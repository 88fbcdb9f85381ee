"""Training of CMR-CLIP models: the Trainer (trainer.py), study-cache data (data.py), text augmentation
(augment.py), losses (loss.py), the run behind `cmr train` and torchrun (run.py, options.py, card.py).

    torchrun --nproc_per_node 2 -m cmr_search.model.training.run --cache ... --out ...

Nothing is imported here, so `python -m cmr_search.model.training.run` runs the module once.
"""
