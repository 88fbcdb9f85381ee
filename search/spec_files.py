"""Cohort files a user writes or edits: read (JSON; YAML where pyyaml is installed) and checked against the
JSON Schemas shipped in search/schemas/, each problem as ONE line naming the file, the JSON path of the bad
part and what is expected (issue 22):

    read_spec("a.cohort.json")                  # the parsed content, or CohortDefinitionError
    check(d, "cohort-definition", "a.json")     # 'a.json: inclusion[0].min_score: expected a number in
                                                #  -1..1 (a cosine cut-off), got str '0.3'.'

search/schemas/cohort-definition.schema.json: a cohort definition (search/cohort_definition.py);
search/schemas/cohort.schema.json: a saved query cohort (search/cohort.py, `cmr cohort export`). The schema
checks the form; what it cannot (a concept name, a filter field's value) the code checks after it.
"""
from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

from jsonschema import Draft202012Validator
from jsonschema.exceptions import relevance

try:
    import yaml
except ImportError:                  # YAML cohort files are optional (pyyaml)
    yaml = None

from .errors import CohortDefinitionError

SCHEMAS = Path(__file__).resolve().parent / "schemas"
TYPES = {"array": "a list", "object": "an object", "string": "a string", "number": "a number",
         "integer": "a whole number", "boolean": "true or false", "null": "null"}


def read_spec(path: str | Path):
    """The parsed content of a cohort file; CohortDefinitionError '<path>: <problem>' (missing, unreadable,
    not JSON / not YAML with the position)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise CohortDefinitionError(f"{path}: no such cohort file.") from None
    except (OSError, UnicodeDecodeError) as e:
        raise CohortDefinitionError(f"{path}: cannot be read ({type(e).__name__}).") from None
    return parse_spec(text, path)


def parse_spec(text: str, path: str | Path):
    """The text of a cohort file named `path` (YAML for .yaml / .yml, else JSON) parsed; the errors of
    read_spec. For a file that is not on disk (an upload in the workbench)."""
    path = Path(path)
    if path.suffix in (".yaml", ".yml"):
        return _yaml(path, text)
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise CohortDefinitionError(f"{path}: not JSON ({e.msg} at line {e.lineno}, column {e.colno}).") from None


def _yaml(path: Path, text: str):
    if yaml is None:
        raise CohortDefinitionError(f"{path}: YAML needs pyyaml (pip install pyyaml); or write the file as JSON.")
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(e, "problem", None) or " ".join(str(e).split())[:120]
        raise CohortDefinitionError(f"{path}: not YAML ({problem}{where}).") from None


@lru_cache(maxsize=None)
def validator(name: str) -> Draft202012Validator:
    """The validator of search/schemas/<name>.schema.json."""
    return Draft202012Validator(json.loads((SCHEMAS / f"{name}.schema.json").read_text()))


def problems(d, name: str) -> list:
    """Every way `d` breaks schema `name` (jsonschema ValidationErrors; [] when it conforms)."""
    return list(validator(name).iter_errors(d))


def check(d, name: str, source: str, prefix: str = "") -> None:
    """CohortDefinitionError '<source>: <path>: <problem>' for the most relevant problem of `d` against
    schema `name` (none: returns). `prefix`: the path of `d` inside the file (e.g. 'definition')."""
    errors = problems(d, name)
    if errors:
        raise CohortDefinitionError(f"{source}: {first(errors, prefix)}")


def first(errors: list, prefix: str = "") -> str:
    """The most relevant of schema errors (the one nearest the top of the file), in words."""
    return message(max(errors, key=relevance), prefix)


def message(error, prefix: str = "") -> str:
    """One schema error in words: '<path>: <problem>' (the path left out at the top of the file)."""
    path = json_path(error.absolute_path, prefix)
    at = f"{path}: " if path else ""
    schema, value, kind = error.schema, error.instance, error.validator
    expected = schema.get("description") or "what the schema allows"
    if kind == "required":
        key = error.message.split("'")[1] if "'" in error.message else error.message
        want = (schema.get("properties", {}).get(key) or {}).get("description")
        return f"{at}missing key {key!r}" + (f" ({want})." if want else ".")
    if kind == "additionalProperties":
        extra = sorted(set(value) - set(schema.get("properties", {})), key=str)
        where = f" in {expected}" if path else ""
        return f"{at}unknown key {extra[0]!r}{where}; known: {', '.join(schema.get('properties', {}))}."
    return f"{at}expected {expected}, got {_shown(value)}."


def json_path(parts, prefix: str = "") -> str:
    """['inclusion', 0, 'status'] -> 'inclusion[0].status'."""
    out = prefix
    for p in parts:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out


def _shown(value) -> str:
    """A value for a message: its JSON type and a short rendering."""
    kind = next((w for t, w in TYPES.items() if _is(value, t)), type(value).__name__)
    text = json.dumps(value, default=str) if not isinstance(value, str) else repr(value)
    return f"{kind} {text if len(text) <= 60 else text[:57] + '...'}"


def _is(value, t: str) -> bool:
    return {"array": isinstance(value, list), "object": isinstance(value, dict), "string": isinstance(value, str),
            "boolean": isinstance(value, bool), "null": value is None,
            "integer": isinstance(value, int) and not isinstance(value, bool),
            "number": isinstance(value, float)}[t]
