"""Vendor styles for the DICOM writer: series naming lexicon, name noise and sequence-tag habits.

Names follow phantom.md §3.4 (entries seen in public material plus plausible constructions). A study
picks one naming *family* of its vendor, so names are consistent within the study; with name noise on,
30-60 % of its series get a typo, a repeat marker, a blank or a mismatched view token (§3.5), so series
typing cannot rely on names. Sequence habits (ScanningSequence order, SequenceName, ImageType, PSIR
storage, ImagingFrequency) are fixed per vendor and per *group* of series (see `group_of`).
Nothing here may depend on the class: inputs are the vendor, the series kind/recon, acquisition values
and a random generator seeded from (seed, study_index, series number).
"""
from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

VENDORS = ("SIEMENS", "GE", "PHILIPS")

# --- naming families ------------------------------------------------------------------------------
# Keys: series kinds (phantom.imaging.series.SERIES_KINDS) plus "sax_slice" (per-slice cine SAX template;
# {n} = 1-based slice, {base} = the family's cine_sax name) and "psir_<view>" (LGE names used when the
# study stores a PSIR/magnitude pair). {ti} = the LGE inversion time rounded to 10 ms.
_SIEMENS = (
    {"cine_sax": ("cine_tfi_retro_sa_volumetry_c", "cine_tfi_retro_sax"),
     "sax_slice": ("cine_tfi_retro_sa_sl{n}",),
     "cine_2ch": ("cine_tfi_retro_2c",), "cine_3ch": ("cine_tfi_retro_3c", "cine_tfi_retro_lvot_noscout"),
     "cine_4ch": ("cine_tfi_retro_4c",), "ti_scout": ("TI_scout_mag_fl2d",),
     "lge_sax": ("de_overview_tfi_psir_sax_early_c", "tfl_psir_sax"), "lge_2ch": ("de_tfi_psir_2c",),
     "lge_3ch": ("de_tfi_psir_3c",), "lge_4ch": ("de_tfi_psir_4c", "tfl_psir_4ch"),
     "localizer": ("localizer_haste_tra", "localizer"), "t2": ("t2_tse_db_sax",),
     "flow": ("flow_aov_venc250", "flow_ao_bh")},
    {"cine_sax": ("CINE_segmented_SAX",), "sax_slice": ("CINE_segmented_SAX_b{n}",),
     "cine_2ch": ("CINE_segmented_LAX_2Ch",), "cine_3ch": ("CINE_segmented_LAX_3Ch", "CINE_segmented_LVOT"),
     "cine_4ch": ("CINE_segmented_LAX_4Ch",), "ti_scout": ("TI Scout",),
     "lge_sax": ("TFL25_T1_PSIR_SAX6",), "lge_2ch": ("TFL25_T1_PSIR_2CH",),
     "lge_3ch": ("TFL25_T1_PSIR_3CH",), "lge_4ch": ("TFL25_T1_PSIR_4CH",),
     "localizer": ("localizer",), "t2": ("T2_TSE_SAX",), "flow": ("flow_250_tp_AoV_bh",)},
    {"cine_sax": ("SAX cine_trufi_retro_invf", "cine_trufi_retro_sax"),
     "sax_slice": ("cine_trufi_retro_sax_b{n}",),
     "cine_2ch": ("cine_trufi_2ch",), "cine_3ch": ("cine_trufi_3ch",), "cine_4ch": ("cine_trufi_4ch",),
     "ti_scout": ("TI_Scout", "TI_scout_mag_fl2d"), "lge_sax": ("PSIR_SAX", "tfl_psir_sax"),
     "lge_2ch": ("PSIR_2CH",), "lge_3ch": ("PSIR_3CH",), "lge_4ch": ("PSIR_4CH",),
     "localizer": ("localizer_trufi",), "t2": ("t2_haste_db_sax",), "flow": ("flow_aov_ipat",)},
)
_GE = (
    {"cine_sax": ("SAX_FIESTA_BH", "SAX_FIESTA_BH_Asset"), "sax_slice": ("{base}",),
     "cine_2ch": ("2CH_FIESTA_BH", "LV2CH_FIESTA_BH"),
     "cine_3ch": ("3CH_FIESTA_BH", "LV3CH_FIESTA_BH", "VLAX_(LV3CH)_FIESTA_BH"),
     "cine_4ch": ("4CH_FIESTA_BH", "HLA_(4CH)_SSFP_BH"), "ti_scout": ("CINE_IR", "4CH_CineIR"),
     "lge_sax": ("SAX_IrP-FGRE_TI={ti}", "SAX_DELAY_TI={ti}_BH", "SAX_MDE_2RR_Broadband",
                 "SAX_SSHMDE_FIESTA_TI={ti}"),
     "lge_2ch": ("2CH_IrP-FGRE_TI={ti}",), "lge_3ch": ("3CH_IrP-FGRE_TI={ti}",),
     "lge_4ch": ("4CH_DE_TI_{ti}_BH", "4CH_IrP-FGRE_TI={ti}"),
     "psir_sax": ("SAX_SS_PSMDE",), "psir_2ch": ("2CH_SS_PSMDE",), "psir_3ch": ("3CH_SS_PSMDE",),
     "psir_4ch": ("4CH_SS_PSMDE",),
     "localizer": ("3-pl_Loc_Fiesta",), "t2": ("SAX_T2_DIRFSE_BH",), "flow": ("Ao_FastPC_V=250_BH",)},
    {"cine_sax": ("FIESTA CINE SAX",), "sax_slice": ("{base}",), "cine_2ch": ("2CH FIESTA CINE",),
     "cine_3ch": ("3CH FIESTA CINE", "LVOT FIESTA CINE"), "cine_4ch": ("4CH FIESTA CINE",),
     "ti_scout": ("CINE_IR",), "lge_sax": ("SAX_DELAY_TI={ti}_BH",), "lge_2ch": ("2CH_DELAY_TI={ti}",),
     "lge_3ch": ("3CH_DELAY_TI={ti}",), "lge_4ch": ("4CH_DE_TI_{ti}_BH",),
     "psir_sax": ("SAX_PSMDE_BH",), "psir_2ch": ("2CH_PSMDE_BH",), "psir_3ch": ("3CH_PSMDE_BH",),
     "psir_4ch": ("4CH_PSMDE_BH",),
     "localizer": ("3-pl_Loc_Fiesta", "3PLANE LOC"), "t2": ("SAX_T2_DIRFSE_BH",),
     "flow": ("Ao_FastPC_V=250_BH",)},
)
_PHILIPS = (
    {"cine_sax": ("sBTFE_BH_M2D", "sBTFE_SA"), "sax_slice": ("{base}",), "cine_2ch": ("sBTFE_2CH",),
     "cine_3ch": ("sBTFE_3CH", "sBTFE_LVOT"), "cine_4ch": ("sBTFE_4CH",), "ti_scout": ("LookLocker_RT",),
     "lge_sax": ("LGE_2D_Ssh_RT SAx",), "lge_2ch": ("LGE_2D_Ssh_RT 2CH",),
     "lge_3ch": ("LGE_2D_Ssh_RT 3CH",),
     "lge_4ch": ("LGE_2D_Ssh_RT 4CH",),
     "psir_sax": ("PSIR_Sax 2D Ssh_RT",), "psir_2ch": ("PSIR_SAG 2D Ssh_RT", "PSIR_LAx 2D Ssh_RT"),
     "psir_3ch": ("PSIR_LAx 2D Ssh_RT",), "psir_4ch": ("PSIR_LAx 2D Ssh_RT",),
     "localizer": ("SURVEY_BH",), "t2": ("BB_T2_TSE_SA",), "flow": ("Q-flow_Ao_BH",)},
    {"cine_sax": ("B-TFE_M2D_SA",), "sax_slice": ("B-TFE_M2D_SA_{n}", "{base}"), "cine_2ch": ("B-TFE_2CH",),
     "cine_3ch": ("B-TFE_3CH", "B-TFE_LVOT"), "cine_4ch": ("B-TFE_4CH",), "ti_scout": ("TI_scout_LL",),
     "lge_sax": ("LGE_SA",), "lge_2ch": ("LGE_2CH",), "lge_3ch": ("LGE_3CH",), "lge_4ch": ("LGE_4CH",),
     "psir_sax": ("PSIR_SA",), "psir_2ch": ("PSIR_2CH",), "psir_3ch": ("PSIR_3CH",),
     "psir_4ch": ("PSIR_4CH",),
     "localizer": ("Survey", "SURVEY_BH"), "t2": ("T2_BB_SA",), "flow": ("Q-flow_Ao",)},
)
FAMILIES = {"SIEMENS": _SIEMENS, "GE": _GE, "PHILIPS": _PHILIPS}

# Study-level ProtocolName for vendors whose ProtocolName names the exam, not the series (GE).
GE_PROTOCOLS = ("CARDIAC FUNCTION+DE", "HEART MORPH/FUNC", "CMR VIABILITY", "CARDIAC MR/7")


def check_vendor(vendor: str) -> str:
    if vendor not in FAMILIES:
        raise ValueError(f"unknown vendor {vendor!r}; Acquisition.vendor must be one of {VENDORS}")
    return vendor


class Namer:
    """Per-study clean series names: one family of the vendor, one choice per kind (consistent)."""

    def __init__(self, vendor: str, rng: np.random.Generator, ti_ms: float, psir: bool):
        families = FAMILIES[check_vendor(vendor)]
        self.vendor = vendor
        self.family = families[int(rng.integers(len(families)))]
        # one fixed choice per key, drawn in a fixed key order so the draws never depend on the series
        self.choice = {k: v[int(rng.integers(len(v)))] for k, v in sorted(self.family.items())}
        self.ti = int(round(ti_ms / 10.0) * 10)
        self.psir = psir

    def base(self, kind: str) -> str:
        """Clean name of a series kind (LGE: the PSIR-pair name when the study stores pairs)."""
        key = kind
        if kind.startswith("lge_") and self.psir and "psir_" + kind[4:] in self.choice:
            key = "psir_" + kind[4:]
        return self.choice[key].format(ti=self.ti)

    def slice_name(self, n: int) -> str:
        """Per-slice cine SAX series name, n = 1-based slice."""
        return self.choice["sax_slice"].format(n=n, base=self.base("cine_sax"))

    def lge_name(self, kind: str, recon: str) -> str:
        """LGE name with the vendor's magnitude/PSIR pair marker (GE MAG:/PS:, Siemens _MAG/_PSIR,
        Philips the same name for both series)."""
        name = self.base(kind)
        if not self.psir:
            return name
        if self.vendor == "GE":
            return ("PS:" if recon == "psir" else "MAG:") + name
        if self.vendor == "SIEMENS":
            return name + ("_PSIR" if recon == "psir" else "_MAG")
        return name


# --- name noise (phantom.md §3.4/§3.5) --------------------------------------------------------------
NOISE_OPS = ("typo", "repeat", "num2", "test", "star", "blank", "mismatch")
NOISE_P = (0.22, 0.14, 0.12, 0.08, 0.12, 0.12, 0.20)
# View tokens by view; the case style of the replaced token is kept where the target has it.
VIEW_TOKENS = {"SAX": ("SAX", "sax", "Sax", "SAx", "SA", "sa"),
               "2CH": ("2CH", "2ch", "2Ch", "2c", "VLA"),
               "3CH": ("3CH", "3ch", "3Ch", "3c", "LVOT", "lvot"),
               "4CH": ("4CH", "4ch", "4Ch", "4c", "HLA")}
_TOKEN_RE = re.compile(r"(?<![A-Za-z0-9])(" + "|".join(
    sorted({t for ts in VIEW_TOKENS.values() for t in ts}, key=len, reverse=True)) + r")(?![A-Za-z])")


def pick_noisy(rng: np.random.Generator, n_series: int) -> set[int]:
    """Indices (0..n_series-1) of the series whose names get noise: 30-60 % of them."""
    lo, hi = max(1, int(np.ceil(0.3 * n_series))), max(1, int(np.floor(0.6 * n_series)))
    k = min(n_series, int(np.clip(round(rng.uniform(0.30, 0.60) * n_series), lo, hi)))
    return {int(i) for i in rng.permutation(n_series)[:k]}


def noisy_name(name: str, rng: np.random.Generator, series_number: int) -> str:
    """A corrupted version of `name` that always differs from it."""
    op = NOISE_OPS[int(rng.choice(len(NOISE_OPS), p=NOISE_P))]
    if op == "typo" and len(name) >= 4:
        out = _typo(name, rng)
    elif op == "repeat":
        out = name + ("_REPEAT" if rng.random() < 0.7 else " repeat")
    elif op == "num2":
        out = name + ("_#2" if rng.random() < 0.7 else "_2")
    elif op == "test":
        out = ("test_" + name) if rng.random() < 0.5 else (name + " test")
    elif op == "blank":
        out = "" if rng.random() < 0.4 else f"Series {series_number}"
    elif op == "mismatch":
        out = _mismatch(name, rng)
    else:
        out = "*" + name
    return out if out != name else "*" + name


def _typo(name: str, rng: np.random.Generator) -> str:
    """Swap, drop or double one character (retried a few times so the result differs)."""
    for _ in range(4):
        i = int(rng.integers(0, len(name) - 1))
        how = int(rng.integers(3))
        if how == 0:
            out = name[:i] + name[i + 1] + name[i] + name[i + 2:]
        elif how == 1:
            out = name[:i] + name[i + 1:]
        else:
            out = name[:i] + name[i] + name[i:]
        if out != name:
            return out
    return name + "_"


def _mismatch(name: str, rng: np.random.Generator) -> str:
    """Replace the view token by another view's (or append a wrong one when there is none)."""
    m = _TOKEN_RE.search(name)
    own = next((v for v, ts in VIEW_TOKENS.items() if m and m.group(1) in ts), None)
    views = [v for v in VIEW_TOKENS if v != own]
    wrong = views[int(rng.integers(len(views)))]
    if m is None:
        return name + "_" + wrong
    tok = m.group(1)
    cands = [t for t in VIEW_TOKENS[wrong] if t.isupper() == tok.isupper()] or list(VIEW_TOKENS[wrong])
    return name[:m.start(1)] + cands[int(rng.integers(len(cands)))] + name[m.end(1):]


# --- sequence habits -------------------------------------------------------------------------------
def group_of(kind: str, recon: str = "magnitude") -> str:
    """Tag group of a series: cine | lge | psir | ti_scout | localizer | t2 | flow."""
    if kind.startswith("cine_"):
        return "cine"
    if kind.startswith("lge_"):
        return "psir" if recon == "psir" else "lge"
    return kind


@dataclass(frozen=True)
class VendorStyle:
    """How one vendor fills the sequence and image tags."""
    ir_order: tuple[str, str]          # ScanningSequence of IR series (order differs by vendor)
    image_type: dict                   # group -> ImageType values
    seq_name: dict                     # group -> SequenceName ({k}: a per-study segment count)
    psir_storage: tuple[str, ...]      # PSIR pixel storage options: signed | offset2048 | offset4096
    freq_mhz: dict                     # field strength -> nominal ImagingFrequency (MHz)
    options_sep_ir_first: bool         # ScanOptions "IR\CG" (True) or "CG\IR"
    protocol_is_series: bool           # ProtocolName = series name (else a study-level protocol)


_S_M, _P = ("ORIGINAL", "PRIMARY", "M"), ("ORIGINAL", "PRIMARY")
STYLES = {
    "SIEMENS": VendorStyle(
        ("GR", "IR"),
        {"cine": _S_M + ("RETRO", "DIS2D"), "lge": _S_M + ("DIS2D",),
         "psir": ("DERIVED", "PRIMARY", "PSIR", "DIS2D"), "ti_scout": _S_M + ("DIS2D",),
         "localizer": _S_M + ("NORM", "DIS2D"), "t2": _S_M + ("NORM", "DIS2D"),
         "flow": _S_M + ("RETRO", "DIS2D")},
        {"cine": "*tfi2d1_{k}", "lge": "*tfl2d1r", "psir": "*tfl2d1r", "ti_scout": "*tfl2d1_{k}",
         "localizer": "*h2d1_{k}", "t2": "*tse2d1_{k}", "flow": "*fl2d1r3_v250in"},
        ("offset4096",), {1.5: 63.68, 3.0: 123.25}, True, True),
    "GE": VendorStyle(
        ("IR", "GR"),
        {"cine": _P + ("OTHER",), "lge": _P + ("OTHER",), "psir": ("DERIVED", "SECONDARY", "OTHER"),
         "ti_scout": _P + ("OTHER",), "localizer": _P + ("LOCALIZER",), "t2": _P + ("OTHER",),
         "flow": _P + ("OTHER",)},
        {"cine": "fiestac", "lge": "irfgre", "psir": "psmde", "ti_scout": "cineir",
         "localizer": "fiesta", "t2": "dirfse", "flow": "fastpc"},
        ("signed", "offset2048"), {1.5: 63.87, 3.0: 127.74}, False, False),
    "PHILIPS": VendorStyle(
        ("IR", "GR"),
        {"cine": _P + ("M_FFE", "M", "FFE"), "lge": _P + ("M_IR", "M", "IR"),
         "psir": _P + ("R_IR", "R", "IR"),
         "ti_scout": _P + ("M_FFE", "M", "FFE"), "localizer": _P + ("M_FFE", "M", "FFE"),
         "t2": _P + ("M_SE", "M", "SE"), "flow": _P + ("M_PCA", "M", "PCA")},
        {"cine": "BTFE", "lge": "IR_TFE", "psir": "IR_TFE", "ti_scout": "TFE_LL", "localizer": "BTFE",
         "t2": "TSE", "flow": "FFE_PC"},
        ("offset2048", "signed"), {1.5: 63.89, 3.0: 127.77}, False, True),
}

# Per group: (ScanningSequence base, SequenceVariant, gated) -- IR groups take the vendor's ir_order.
SEQUENCE = {
    "cine": (("GR",), ("SK", "SS"), True), "lge": (None, ("SK", "SP", "MP"), True),
    "psir": (None, ("SK", "SP", "MP"), True), "ti_scout": (None, ("SK", "SP", "MP"), True),
    "localizer": (("GR",), ("SK", "SS"), False), "t2": (("SE",), ("SK", "SP"), True),
    "flow": (("GR",), ("SP",), True),
}
# Per group: TR ms, TE ms, flip deg ranges (cine TR/TE/flip come from the Acquisition), PixelBandwidth.
SEQ_RANGES = {
    "lge": ((6.0, 9.0), (2.0, 4.0), (20.0, 30.0), (130.0, 250.0)),
    "psir": ((6.0, 9.0), (2.0, 4.0), (20.0, 30.0), (130.0, 250.0)),
    "ti_scout": ((2.4, 3.2), (1.0, 1.4), (8.0, 15.0), (900.0, 1100.0)),
    "localizer": ((2.8, 3.6), (1.2, 1.6), (40.0, 60.0), (900.0, 1200.0)),
    "t2": ((1400.0, 2200.0), (55.0, 85.0), (180.0, 180.0), (300.0, 500.0)),
    "flow": ((4.0, 6.0), (2.4, 3.2), (15.0, 25.0), (400.0, 600.0)),
    "cine": (None, None, None, (900.0, 1200.0)),
}
IR_GROUPS = ("lge", "psir", "ti_scout")
