"""Errors of the model package. Each message says how to fix the problem."""
from __future__ import annotations


class ModelError(Exception):
    """Base class for errors raised by `model`."""


class UnknownModelError(ModelError, KeyError):
    def __init__(self, name: str, known: list[str]):
        super().__init__(f"unknown model config {name!r}; known: {', '.join(known)}. "
                         f"Add model/configs/{name}.json or pass a checkpoint folder.")

    def __str__(self) -> str:          # KeyError would repr() the message
        return self.args[0]


class ConfigError(ModelError, ValueError):
    """A config file or dict has a missing, extra or invalid field."""


class CheckpointError(ModelError):
    """A checkpoint file or folder cannot be read."""


class CheckpointMismatchError(CheckpointError):
    """State dict keys or shapes do not match the model."""

    def __init__(self, what: str, missing: list[str], unexpected: list[str],
                 shapes: list[str] | None = None, hint: str = ""):
        shapes = shapes or []
        parts = [f"{what}: state dict does not match the model "
                 f"({len(missing)} missing, {len(unexpected)} unexpected, {len(shapes)} wrong shape)."]
        if missing:
            parts.append("first missing: " + ", ".join(missing[:5]))
        if unexpected:
            parts.append("first unexpected: " + ", ".join(unexpected[:5]))
        if shapes:
            parts.append("first wrong shapes: " + "; ".join(shapes[:5]))
        parts.append(hint or "Check that the config (model name, num_frames, embed dims) is the one the "
                             "checkpoint was trained with.")
        super().__init__(" ".join(parts))
        self.missing, self.unexpected, self.shapes = missing, unexpected, shapes


class TokenizerMissingError(ModelError):
    def __init__(self, name: str):
        super().__init__(
            f"model {name!r} has no tokenizer: its text tower is built from config only (no download). "
            "Pass a local tokenizer folder, e.g. create_model(..., tokenizer='/path/to/Bio_ClinicalBERT') "
            "or set text.tokenizer in the config; a folder with vocab.txt + tokenizer_config.json works.")


class DataError(ModelError):
    """The study cache is missing, empty or lacks what the task needs."""


class RunUsageError(ModelError):
    """A training or evaluation run was asked for with arguments that cannot work (a bad value, a run in
    progress without --resume, --resume with changed arguments): the command exits 2 (bad usage)."""


class InputShapeError(ModelError, ValueError):
    """Model input with the wrong shape or too many frames."""
