"""Pass 3 of report redaction (redact.py): free-text identifiers found by a maintained de-identifier,
UCSF Philter (the `philter-lite` package: regular expressions with context, first- and family-name lists,
a list of ordinary words), plus rules of our own for what its US-centred config misses, all replaced by
TYPED placeholders:

    [NAME] [DATE] [AGE] [PHONE] [EMAIL] [URL] [ID] [ADDRESS] [PLACE]

- Philter's config (philter_delta.toml, shipped in the package) is loaded once per process, lazily, with
  each filter's hits typed by its keyword (dates.* -> DATE, mrn_id.* -> ID, addresses.hospital* /
  organizations.* / city rules -> PLACE, other addresses.* -> ADDRESS, salutations / name lists -> NAME...).
  Only the filters' *removals* are used: philter's own output (everything not on its word list masked)
  would blank most of a report.
- The part-of-speech tagger. Philter calls `nltk.pos_tag`, whose weights are an NLTK data download: the
  indexer never downloads anything, so `_install_tagger` replaces philter's `_get_pos` hook (the one place
  it tags) with `tag_tokens`, a rule tagger over philter's own tokens: CD for a token with a digit, NNP for
  a capitalised word that is not clinical vocabulary, NN otherwise. Philter reads only NNP (its name lists
  apply to proper nouns) and CD (numbers kept) from the tags. The substitution is checked: an untested
  philter-lite version or a missing hook is a RuntimeError that says what to do, never a silent download.
- Clinical words are protected (deid_vocab.py: the phantom lexicon, cardiology abbreviations, eponyms such
  as Fabry, Danon, Fontan, Lake Louise criteria): tagged NN, and cut out of any span a rule marks.
- Our rules: institutions (St Mary Hospital, Leeds General Infirmary), capitalised words after in / at /
  from / near (towns), street addresses, UK postcodes and US ZIP codes, UK and US phone numbers, e-mail
  addresses, URLs, ages over 89 (ages up to 89 are kept, so are years alone), and any capitalised word that
  is neither an English word (philter's list of about 195,000) nor clinical vocabulary (names and places
  that no list holds: Okonkwo, Harrogate).

Measured by bench/deid.py (docs/privacy.md): recall per kind and clinical words wrongly removed.
"""
from __future__ import annotations

import re
import threading
import tomllib
import warnings
from functools import lru_cache
from importlib import metadata, resources

from cmr_search.indexer.deid_vocab import CLINICAL_WORDS, EPONYM_PHRASES

KINDS = ("EMAIL", "URL", "AGE", "PLACE", "ADDRESS", "PHONE", "DATE", "ID", "NAME")   # overlap priority
TESTED_PHILTER = "0.6."
_PLACEHOLDER = re.compile(r"\[(?:%s|REDACTED)\]" % "|".join(KINDS))
_LOCK = threading.Lock()
CHUNK = 1000                  # characters of text philter sees at once
_LONG_WORD = re.compile(r"[A-Za-z]{31,}")

# philter filter keyword -> kind (first matching prefix); None: a keep ("safe") filter
_KIND_OF_KEYWORD = (
    ("safe.", None), ("nonames", None), ("dates.", "DATE"), ("contact.email", "EMAIL"), ("contact.url", "URL"),
    ("contact.", "PHONE"), ("mrn_id.", "ID"), ("age.", "AGE"), ("organizations.", "PLACE"),
    ("addresses.hospital", "PLACE"), ("addresses.city", "PLACE"), ("addresses.in_city", "PLACE"),
    ("addresses.lives_in", "PLACE"), ("addresses.county", "PLACE"), ("addresses.to_state", "PLACE"),
    ("addresses.state_indicator", "PLACE"), ("ucsf_regex.", "PLACE"), ("addresses.", "ADDRESS"),
    ("salutations.", "NAME"), ("firstnames", "NAME"), ("lastnames", "NAME"), ("regex_context.", "NAME"),
)

_CAP = r"[A-ZÀ-ÖØ-Þ][\w'’]*"                                   # a capitalised word
_PROPER = r"[A-ZÀ-ÖØ-Þ][a-zß-ÿ][\w'’]*"                         # ... with a lower-case second letter
_CHAIN = rf"{_PROPER}(?:(?:[ -](?:upon|on|under|le|en|de|of|la|del)[ -]|[ -]){_PROPER}){{0,3}}"  # Newcastle upon Tyne
_INSTITUTION = re.compile(
    rf"\b(?:(?:St\.?|Saint|The)\s+)?(?:{_CAP}(?:\s+(?:and|&)\s+|[ -])){{1,4}}(?:Hospitals?|Infirmary|"
    r"Medical\s+Cent(?:re|er)|Health\s+Cent(?:re|er)|Heart\s+(?:Cent(?:re|er)|Institute|Hospital)|"
    r"Cardiac\s+Cent(?:re|er)|Clinic|Institute|(?:NHS\s+)?(?:Foundation\s+)?Trust|Health\s+Board|Healthcare|"
    r"Health\s+System|Surgery|Medical\s+Practice|University|College|Sanatorium|Hospice)\b"
    rf"(?:\s+(?:of|for)\s+(?:the\s+)?(?:{_CAP}\s?){{1,3}})?"
    rf"|\b(?:University\s+Hospitals?|Hospital|Klinikum|Clinique|Clinica|Ospedale|Hôpital|Hopital)\s+(?:of\s+)?"
    rf"(?!(?:No|Number|Records?|Notes?|Admission|Discharge|Stay)\b){_CHAIN}")
_STREET = (r"(?:Road|Rd|Street|St|Lane|Ln|Avenue|Ave|Close|Drive|Dr|Way|Crescent|Cres|Gardens|Gdns|Terrace|"
           r"Place|Pl|Court|Ct|Grove|Boulevard|Blvd|Square|Sq|Hill|Row|Mews|Parade|Walk|View|Park|Rise|Green|"
           r"Highway|Hwy|Parkway|Pkwy|Circle|Cir|Trail|Wynd|Gate|Vale|Brae)")
_ADDRESS = re.compile(
    rf"\b(?:(?:Flat|Apt\.?|Apartment|Unit|Suite)\s+\w+,?\s+)?\d{{1,5}}[A-Za-z]?,?\s+(?:{_CAP}\s+){{1,3}}{_STREET}\b\.?"
    rf"|\bP\.?\s?O\.?\s+Box\s+\d+")
_US_STATES = ("AL|AK|AZ|AR|CA|CO|CT|DE|DC|FL|GA|HI|ID|IL|IN|IA|KS|KY|LA|ME|MD|MA|MI|MN|MS|MO|MT|NE|NV|NH|NJ|NM|NY|"
              "NC|ND|OH|OK|OR|PA|RI|SC|SD|TN|TX|UT|VT|VA|WA|WV|WI|WY")
_POSTCODE_RX = (r"\b(?:[A-Z]{1,2}\d[A-Z\d]?\s*\d[ABD-HJLNP-UW-Z]{2}|GIR\s?0AA)\b"
                rf"|\b(?:{_US_STATES})\s+\d{{5}}(?:-\d{{4}})?\b|\b(?:ZIP|zip|Zip)(?:\s*code)?:?\s*\d{{5}}(?:-\d{{4}})?\b")
_POSTCODE = re.compile(_POSTCODE_RX)
# a town: capitalised words after in / at / from / near..., after a street address or institution and a
# comma, or before a postcode
_PLACE_AFTER = re.compile(rf"(?:\b(?:[Ii]n|[Aa]t|[Ff]rom|[Nn]ear|[Oo]utside|[Aa]round|[Vv]ia|[Mm]oved\s+to|"
                          rf"[Tt]ransferred\s+to|[Tt]ravell?ed\s+to|[Rr]elocated\s+to|[Rr]eturned\s+to|"
                          rf"[Rr]esident\s+of|[Nn]ative\s+of)\s+(?:the\s+)?|\[(?:ADDRESS|PLACE)\],\s*)({_CHAIN})")
_PLACE_AFTER_ADDRESS = re.compile(rf"(?:{_ADDRESS.pattern}|{_INSTITUTION.pattern}),\s*(?P<town>{_CHAIN})")
_PLACE_BEFORE = re.compile(rf"\b({_CHAIN}),?\s+(?=(?:{_POSTCODE_RX}))")
_PLACE_CONTEXT = re.compile(r"\b(?:in|at|from|near|outside|around|via|of|moved\s+to|transferred\s+to|"
                            r"travell?ed\s+to|relocated\s+to|returned\s+to|back\s+to|lives\s+on|resident\s+of)"
                            r"\s+(?:the\s+)?$", re.IGNORECASE)
_PARTICLE = r"(?:de|van|von|der|den|da|di|du|le|la|del|della|dos|das|bin|ibn|al|el|ter|ten)"
_NEXT_NAME = re.compile(rf"[ -](?:{_PARTICLE}[ -]){{0,2}}({_PROPER})\b")
_AFTER_NAME = re.compile(rf"\[NAME\][ -](?:{_PARTICLE}[ -]){{0,2}}({_PROPER})\b")     # Dr [NAME] Vries
_INITIAL_NAME = re.compile(rf"\b[A-Z]\.\s*(?:{_PARTICLE}[ -]){{0,2}}({_PROPER})")
_PARTICLE_BEFORE = re.compile(rf"\b{_PARTICLE}(?:[ -](?:de|der|den|la|le|los|las|van))?[ -]$", re.IGNORECASE)
_PARTICLES = re.compile(rf"[ -]?{_PARTICLE}?[ -]?", re.IGNORECASE)
_CAPS_SURNAME = re.compile(r"\b([A-Z][A-Z'’-]+),\s+$")         # "OKAFOR, Chidi": the given name decides
PHONE_PATTERN = _PHONE = re.compile(
    r"(?:(?<![\w+])\+\d{1,3}[\s.-]?(?:\(0\)\s?)?|(?<![\w.])1[\s.-](?=\(?[2-9]\d{2})|(?<![\w.])(?=\(?0)|"
    r"(?<![\w.])(?=\(?[2-9]\d{2}\)?[\s.-]\d))"
    r"(?:\(?\d{2,5}\)?[\s.-]?){2,4}\d{2,4}(?:\s*(?:ext\.?|x)\s*\d{1,5})?\b")
_EMAIL = re.compile(r"\b[\w.+-]+@[\w-]+(?:\.[\w-]+)+\b")
_URL = re.compile(r"\b(?:https?://|www\.)[^\s<>\"')\]]+")
_OLD = r"(?:9\d|1[0-2]\d)"                                     # 90-129
_AGE = re.compile(rf"\b(?:aged?|age:|ages|in\s+(?:his|her|their)\s+)\s*({_OLD})(?:s)?\b"
                  rf"|\b({_OLD})(?=\s*-?\s*(?:years?|yrs?|yo|y/o|y\.o\.|year-old|yr-old)\b)"
                  rf"|\b({_OLD})(?=\s?(?:[MF]|male|female|man|woman)\b)", re.IGNORECASE)
_WORD = re.compile(r"[^\W_]+")
_CAPWORD = re.compile(r"(?<![\w'’-])(?:Mc|Mac|O['’]|D['’]|De|Di|Le|La|Van|Von)?[A-ZÀ-ÖØ-Þ][\w'’]*[a-zß-ÿ][\w'’]*")


# ---- philter, loaded once --------------------------------------------------------------------------
def _install_tagger(philter_module) -> None:
    """Point philter's tagging hook at `tag_tokens` (NLTK's tagger is a data download; nothing is
    downloaded here). Refuses, with what to do, when philter's internals are not the ones checked."""
    version = metadata.version("philter-lite")
    hooks = all(callable(getattr(philter_module, n, None)) for n in ("_get_pos", "_get_clean", "detect_phi"))
    if not hooks:
        raise RuntimeError(f"philter-lite {version} no longer tags through philter._get_pos/_get_clean: "
                           f"indexer/deid_philter.py supplies the part-of-speech tags there (NLTK's tagger is a "
                           f"download the indexer never makes). Install philter-lite {TESTED_PHILTER}x or "
                           f"update _install_tagger.")
    if not version.startswith(TESTED_PHILTER):
        warnings.warn(f"philter-lite {version} is untested (tested: {TESTED_PHILTER}x); run bench/deid.py",
                      stacklevel=2)
    philter_module._get_pos = tag_tokens


def _kind_of(keyword: str | None) -> str | None:
    return next((kind for prefix, kind in _KIND_OF_KEYWORD if (keyword or "").startswith(prefix)), None)


@lru_cache(maxsize=1)
def philter():
    """(philter module, typed filters, English words, English words that are no name), once per process
    (about 3 s: its word lists)."""
    import philter_lite
    import philter_lite.philter as module
    from philter_lite.filters import filter_db

    _install_tagger(module)
    config = resources.files("philter_lite") / "configs" / "philter_delta.toml"
    with config.open("rb") as fh:
        spec = tomllib.load(fh)["filters"]
    filters = []
    for entry in spec:
        kind = _kind_of(entry.get("keyword"))
        filters.append(philter_lite.filter_from_dict({**entry, "phi_type": kind or "OTHER"}))
    english = frozenset(filter_db.set_db["nonames"])
    common = english - frozenset(filter_db.set_db["firstnames"]) - frozenset(filter_db.set_db["lastnames"])
    return module, filters, english, common


# ---- the tagger ------------------------------------------------------------------------------------
def _protected_ranges(text: str) -> list[tuple[int, int]]:
    return [m.span() for m in _PLACEHOLDER.finditer(text)] + [m.span() for m in EPONYM_PHRASES.finditer(text)]


def _inside(start: int, stop: int, ranges) -> bool:
    return any(a <= start and stop <= b for a, b in ranges)


def protected(word: str) -> bool:
    """A word no rule removes: clinical vocabulary, or an abbreviation (all capitals, up to 4 letters)."""
    return word.lower() in CLINICAL_WORDS or (word.isupper() and len(word) <= 4 and word.isalpha())


def tag_tokens(text: str) -> list[tuple[str, str]]:
    """Philter's tokens of `text` with rule tags: CD (has a digit), NNP (capitalised, not protected,
    not inside a placeholder or a clinical eponym phrase), NN otherwise."""
    module, ranges, out, pos = philter()[0], _protected_ranges(text), [], 0
    for tok in module._get_clean(text):
        start, pos = pos, pos + len(tok)
        if any(c.isdigit() for c in tok):
            out.append((tok, "CD"))
        elif tok[:1].isupper() and not protected(tok) and not _inside(start, pos, ranges):
            out.append((tok, "NNP"))
        else:
            out.append((tok, "NN"))
    return out


# ---- spans -----------------------------------------------------------------------------------------
def _pieces(text: str, start: int, stop: int, kind: str, ranges, split: bool = True) -> list[tuple[int, int, str]]:
    """A marked span trimmed to letters and digits at both ends; with split, also cut at protected words
    (clinical words, placeholders, eponyms), which stay."""
    words = list(_WORD.finditer(text, start, stop))
    if not split:
        return [(words[0].start(), words[-1].end(), kind)] if words else []
    out, cur = [], None
    for m in words:
        if protected(m.group()) or _inside(m.start(), m.end(), ranges):
            if cur:
                out.append(cur)
            cur = None
        else:
            cur = (cur[0] if cur else m.start(), m.end(), kind)
    return out + ([cur] if cur else [])


def _proper(piece: str, common: frozenset[str]) -> bool:
    """A piece holds a word that may be a name or a place: not an ordinary English word (or also a name)."""
    return any(w.lower() not in common for w in _WORD.findall(piece) if not w.isdigit())


def _philter_spans(text: str, hits, ranges, common) -> list[tuple[int, int, str]]:
    """Philter's hits, cut at protected words; an age only over 89; a date only with a plausible year; a
    place or address piece only with a word that is not plain English (its hospital and "at 3 T" rules
    over-reach; our rules find the institutions and addresses)."""
    spans = []
    for hit in hits:
        if hit.phi_type == "AGE":
            spans += [(hit.start + m.start(), hit.start + m.end(), "AGE") for m in re.finditer(r"\d+", hit.word)
                      if 89 < int(m.group()) < 130]
        elif hit.phi_type in KINDS:
            if hit.phi_type == "DATE" and any(not 1900 <= int(y) <= 2099 for y in re.findall(r"(?<!\d)\d{4}(?!\d)", hit.word)):
                continue
            for piece in _pieces(text, hit.start, hit.stop, hit.phi_type, ranges):
                if piece[2] not in ("PLACE", "ADDRESS") or _proper(text[piece[0]:piece[1]], common):
                    spans.append(piece)
    return spans


def _rule_spans(text: str, english: frozenset[str], ranges) -> list[tuple[int, int, str]]:
    """Our rules: whole spans for e-mails, URLs, phones, addresses, postcodes, institutions; towns in a
    place context and capitalised words no word list knows, cut at protected words."""
    spans = [p for kind, rx in (("EMAIL", _EMAIL), ("URL", _URL), ("PHONE", _PHONE), ("ADDRESS", _ADDRESS),
                                ("ADDRESS", _POSTCODE), ("PLACE", _INSTITUTION))
             for m in rx.finditer(text) for p in _pieces(text, *m.span(), kind, ranges, split=False)]
    spans += [(m.start(g), m.end(g), "AGE") for m in _AGE.finditer(text) for g in (1, 2, 3) if m.group(g)]
    addresses = [(a, b) for a, b, kind in spans if kind == "ADDRESS"]      # a town never overlaps one
    spans += [p for rx in (_PLACE_AFTER, _PLACE_BEFORE, _PLACE_AFTER_ADDRESS) for m in rx.finditer(text)
              for p in _pieces(text, *m.span(m.lastindex if rx is not _PLACE_AFTER_ADDRESS else "town"),
                               "PLACE", ranges) if not any(a < p[1] and p[0] < b for a, b in addresses)]
    spans += [p for rx in (_INITIAL_NAME, _AFTER_NAME) for m in rx.finditer(text)
              for p in _pieces(text, *m.span(1), "NAME", ranges)]
    for m in _CAPWORD.finditer(text):               # a capitalised word no word list knows: a proper noun
        word = re.sub(r"['’]s$", "", m.group()).rstrip("'’")
        if word.lower() not in english and not protected(word) and not _inside(m.start(), m.end(), ranges):
            spans.append((m.start(), m.start() + len(word), "NAME"))
    return spans


def _placed(text: str, spans: list[tuple[int, int, str]]) -> list[tuple[int, int, str]]:
    """NAME spans in a place context (after in / at / from..., or right after a PLACE and a comma) become
    PLACE; an all-capital family name before ", Given" joins the given name."""
    out = []
    for start, stop, kind in spans:
        if kind == "NAME":
            before = text[max(0, start - 40):start]
            chain = re.sub(r"(?:(?:[A-Z][\w'’.-]*|\[PLACE\])\s+)+$", "", before)   # other words of the name
            if _PLACE_CONTEXT.search(chain) or (out and out[-1][2] == "PLACE"
                                                 and re.fullmatch(r",?\s*", text[out[-1][1]:start])):
                kind = "PLACE"
            caps = _CAPS_SURNAME.search(before)
            if caps and caps.group(1).lower() not in CLINICAL_WORDS:
                out.append((start - len(before) + caps.start(1), start - len(before) + caps.end(1), "NAME"))
        out.append((start, stop, kind))
    return sorted(out)


def _extended(text: str, spans: list[tuple[int, int, str]]) -> list[tuple[int, int, str]]:
    """A NAME span takes a capitalised word right after it unless that word is protected (Nadia Le,
    Gutierrez-Virtanen) and the name particles before it (de Vries, van der Merwe, da Silva)."""
    out, ranges = [], _protected_ranges(text)
    for start, stop, kind in spans:
        if kind == "NAME":
            m = _NEXT_NAME.match(text, stop)
            if m and not protected(m.group(1)) and not _inside(*m.span(1), ranges):
                stop = m.end(1)
            m = _PARTICLE_BEFORE.search(text, 0, start)
            start = m.start() if m else start
        out.append((start, stop, kind))
    return out


def _merge(text: str, spans: list[tuple[int, int, str]]) -> list[tuple[int, int, str]]:
    """Overlapping spans -> one (kind by KINDS priority); same-kind spans one space (or a name particle:
    de, van, bin...) apart -> one."""
    rank = {k: i for i, k in enumerate(KINDS)}
    out: list[list] = []
    for start, stop, kind in sorted(spans):
        if out and (start < out[-1][1] or (kind == out[-1][2] and (
                re.fullmatch(r"[ \t]?", text[out[-1][1]:start])
                or (kind == "NAME" and _PARTICLES.fullmatch(text[out[-1][1]:start]))))):
            last = out[-1]
            last[1] = max(last[1], stop)
            last[2] = min(last[2], kind, key=rank.__getitem__)
        else:
            out.append([start, stop, kind])
    return [tuple(s) for s in out]


def _chunks(text: str, size: int = CHUNK):
    """(offset, piece) of text cut at line or sentence ends (else at a space) into pieces of about `size`."""
    start = 0
    while start < len(text):
        stop = min(len(text), start + size)
        if stop < len(text):
            cut = max(text.rfind("\n", start, stop), text.rfind(". ", start, stop))
            cut = cut if cut > start + size // 2 else text.rfind(" ", start, stop)
            stop = cut + 1 if cut > start else stop
        yield start, text[start:stop]
        start = stop


def find_identifiers(text: str) -> list[tuple[int, int, str]]:
    """(start, stop, kind) of every free-text identifier in `text`, sorted, not overlapping. Long text goes
    in pieces of about CHUNK characters (philter's context rules grow with the square of a text's hits)."""
    return [(a + offset, b + offset, kind) for offset, piece in _chunks(text or "")
            for a, b, kind in _find(piece)]


def _find(text: str) -> list[tuple[int, int, str]]:
    if not text.strip():
        return []
    module, filters, english, common = philter()
    seen = _LONG_WORD.sub(lambda m: "*" * len(m.group()), text)   # no name is that long; some of philter's
    with _LOCK:                                                  # patterns backtrack badly on long words
        _, _, tracker = module.detect_phi(seen, patterns=filters, phi_type_list=list(KINDS))
    ranges = _protected_ranges(text)
    spans = _philter_spans(text, tracker.phi, ranges, common) + _rule_spans(text, english, ranges)
    return _merge(text, _extended(text, _placed(text, _merge(text, spans))))


def redact_free_text(text: str) -> str:
    """`text` with every identifier `find_identifiers` finds replaced by its typed placeholder."""
    out, last = [], 0
    for start, stop, kind in find_identifiers(text):
        out += [text[last:start], f"[{kind}]"]
        last = stop
    return "".join(out + [text[last:]])
