"""Evaluation of CMR-CLIP checkpoints: metric functions (metrics.py, on scikit-learn), few-shot and
linear-probe classifiers (probes.py), the whole evaluation of a dataset (evaluate.py), its report
(report.py) and the run behind `cmr eval` (run.py)."""
