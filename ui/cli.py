"""The `cmr` command line: one verb per sub-command, each a module with `main(argv) -> int`.

Exit codes (architecture.md §8): 0 success, 2 bad usage, 1 failure with a one-line reason.
"""
from __future__ import annotations

import importlib
import sys

# verb -> (module, one-line help). A module is imported only when its verb is used.
COMMANDS = {
    "synth": ("cmr_search.ui.synth_cmd", "generate a synthetic CMR archive (DICOM + reports + ground truth)"),
    "prepare": ("cmr_search.ui.prepare_cmd", "scan a DICOM archive and its reports into a study cache"),
    "index": ("cmr_search.ui.index_cmd", "embed an archive's studies and reports into the search index; push it to a server"),
    "search": ("cmr_search.ui.search_cmd", "find studies by a text query (image, report or hybrid)"),
    "similar": ("cmr_search.ui.similar_cmd", "find studies (or reports) similar to a study"),
    "duplicates": ("cmr_search.ui.duplicates_cmd", "near-duplicate study pairs (repeat studies, double imports) by exact kNN"),
    "label": ("cmr_search.ui.label_cmd", "zero-shot labels for every study, written to the index"),
    "cohort": ("cmr_search.ui.cohort_cmd", "export a query as a cohort (CSV/Parquet + spec); re-run one; run / compare criteria cohorts"),
    "audit": ("cmr_search.ui.audit_cmd", "print or export the audit trail (every search, cohort run and export)"),
    "demo": ("cmr_search.ui.demo_cmd", "synthetic archive -> index -> three example queries (what `make demo` runs)"),
    "segment": ("cmr_search.ui.segment_cmd", "segment a cine SAX study/series/NIfTI: masks (NIfTI or DICOM SEG) + measurements"),
    "train": ("cmr_search.ui.train_cmd", "train a CMR-CLIP model on a study cache (torchrun for several processes)"),
    "eval": ("cmr_search.ui.eval_cmd", "retrieval, zero-shot, few-shot and linear-probe metrics of a checkpoint"),
    "ui": ("cmr_search.ui.ui_cmd", "start the cohort workbench (Streamlit app) on localhost"),
}

DISTRIBUTION = "cmr-search"      # pyproject.toml [project] name: where `cmr --version` reads the version

USAGE = "usage: cmr <command> [options]\n       cmr --version\n\ncommands:\n" + "\n".join(
    f"  {name:<10} {help_}" for name, (_, help_) in COMMANDS.items())


def fail(verb: str, msg: str, code: int = 1) -> int:
    """Print `cmr VERB: msg` on stderr and return the exit code (1 failure, 2 bad usage)."""
    print(f"cmr {verb}: {msg}", file=sys.stderr)
    return code


def version() -> str:
    """The installed distribution's version (importlib.metadata), e.g. '0.1.0'."""
    from importlib.metadata import PackageNotFoundError, version as dist_version
    try:
        return dist_version(DISTRIBUTION)
    except PackageNotFoundError:
        return "unknown (not installed: pip install -e .)"


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(USAGE)
        return 0 if argv else 2
    if argv[0] in ("--version", "-V"):
        print(f"cmr {version()}")
        return 0
    verb, rest = argv[0], argv[1:]
    if verb not in COMMANDS:
        print(f"cmr: unknown command {verb!r}\n\n{USAGE}", file=sys.stderr)
        return 2
    module = importlib.import_module(COMMANDS[verb][0])
    try:
        return int(module.main(rest) or 0)
    except KeyboardInterrupt:
        print("cmr: interrupted", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
