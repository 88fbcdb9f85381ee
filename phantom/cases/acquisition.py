"""Acquisition sampling: one `Acquisition` (nuisance, class-independent) per study (phantom.md §2.3-2.4,
§3.2). `sample_acquisition` never sees the latent or the class, only the profile, the study index,
the archive seed and the patient's age (needed for a consistent birth date). Age is drawn from one
distribution for every class (params._demographics), so the birth date carries no class either.
Re-exported by phantom.cases.params, which is where callers import it from.
"""
from __future__ import annotations

import datetime as _dt

import numpy as np

from cmr_search.phantom.cases.latent import Acquisition
from cmr_search.phantom.profiles import Profile
from cmr_search.phantom.randomness import uniform

T1_POST_3T_FACTOR = 1.10      # post-contrast T1 at 3 T relative to the latent's 1.5 T values
NORMAL_T1_MYO_POST = (440.0, 500.0)   # ms, params._normal_base range; TI is chosen from THIS
TI_SIGMA_MS = 20.0            # operator TI error (§2.2)
WRONG_TI_RATE = 0.07          # §2.2: 5-10 % of studies have a deliberately wrong TI
NAME_NOISE_RATE = 0.08        # §3.4: noisy series names in ~8 % of studies
ARTIFACT_RATES = {            # §2.4: each 0-15 % of studies, independent of the class
    "banding": 0.08, "mistrigger": 0.06, "wrap": 0.05, "motion_blur": 0.08,
    "incomplete_coverage": 0.04,
}

VENDORS = {  # profile key -> (Manufacturer, {field: models}, software versions)
    "SIEMENS": ("SIEMENS", {1.5: ("Avanto", "Aera", "Avanto_fit"), 3.0: ("Skyra", "Prisma", "Vida")},
                ("syngo MR B17", "syngo MR D13", "syngo MR E11", "syngo MR XA20")),
    "GE": ("GE MEDICAL SYSTEMS", {1.5: ("Signa HDxt", "Optima MR450w", "SIGNA Artist"),
                                  3.0: ("Signa HDxt", "Discovery MR750", "SIGNA Premier")},
           ("15\\LX\\MR Software release:15.0_M4_0910.a", "DV25.0_R02_1549.b", "MR29.1_EA_2040.a")),
    "PHILIPS": ("Philips Medical Systems", {1.5: ("Achieva", "Ingenia"), 3.0: ("Achieva", "Ingenia")},
                ("3.2.3\\3.2.3.2", "5.3.1\\5.3.1.0", "5.6.1\\5.6.1.1")),
}
INSTITUTIONS = ("SYNTH GENERAL HOSPITAL", "SYNTH HEART INSTITUTE", "SYNTH UNIVERSITY MEDICAL CENTER",
                "SYNTH COMMUNITY IMAGING", "SYNTH REGIONAL CLINIC")


def _scanner(rng) -> dict:
    """Vendor, field strength (70 % 1.5 T) and a model/software consistent with both."""
    vendor = str(rng.choice(list(VENDORS), p=[0.4, 0.35, 0.25]))
    manufacturer, models, softwares = VENDORS[vendor]
    field = 1.5 if rng.random() < 0.70 else 3.0
    return dict(vendor=vendor, manufacturer=manufacturer, field_strength=field,
                model_name=str(rng.choice(models[field])), software=str(rng.choice(softwares)),
                institution=str(rng.choice(INSTITUTIONS)),
                sax_layout="stack" if rng.random() < {"SIEMENS": 0.7, "GE": 0.3, "PHILIPS": 0.5}[vendor]
                else "per_slice",
                psir=bool(rng.random() < {"SIEMENS": 0.7, "GE": 0.5, "PHILIPS": 0.6}[vendor]))


def _matrix(rng, profile: Profile) -> dict:
    """Recon matrix from the profile; acquired matrix 75-100 % (freq) x 70-90 % of that (phase)."""
    n = int(rng.choice(profile.matrices))
    freq = int(2 * round(n * rng.uniform(0.75, 1.0) / 2))
    phase = int(2 * round(freq * rng.uniform(0.70, 0.90) / 2))
    w = np.ones(len(profile.phases))
    w[-1] = 2.0                                   # "last is commonest"
    return dict(rows=n, cols=n, acq_matrix=(freq, phase),
                pixel_spacing=uniform(rng, *profile.pixel_spacing, nd=3),
                n_phases=int(rng.choice(profile.phases, p=w / w.sum())))


def _coverage(rng, profile: Profile) -> dict:
    """Slices, views and distractor series within the profile's ranges."""
    lge_lax = tuple(v for v in profile.lge_lax if v != "3CH" or rng.random() < 0.5)
    p_distr = {"localizer": 0.9, "ti_scout": 0.8, "t2": 0.4, "flow": 0.4}
    return dict(
        slice_thickness=float(rng.choice([6.0, 6.5, 7.0, 7.5, 8.0])),
        slice_gap=0.0 if rng.random() < 0.2 else uniform(rng, 1.0, 4.0, nd=1),
        n_sax=int(rng.integers(profile.n_sax[0], profile.n_sax[1] + 1)),
        n_lge_sax=int(rng.integers(profile.n_lge_sax[0], profile.n_lge_sax[1] + 1)),
        cine_lax=tuple(profile.cine_lax), lge_lax=lge_lax,
        distractors=tuple(k for k in profile.distractors if rng.random() < p_distr.get(k, 0.5)))


def _image_quality(rng) -> dict:
    """Orientation, noise, bias, breathing, artifacts: §2.4 nuisance factors."""
    outlier = rng.random() < 0.05
    return dict(
        azimuth_deg=uniform(rng, 35, 60, nd=2), elevation_deg=uniform(rng, 15, 40, nd=2),
        inplane_rot_deg=uniform(rng, -15, 15, nd=2),
        snr_cine=uniform(rng, 25, 80, nd=2), snr_lge=uniform(rng, 10, 35, nd=2),
        bias_ratio=uniform(rng, 1.2, 2.0, nd=2),
        misregistration_mm=uniform(rng, 8, 12, nd=2) if outlier else uniform(rng, 0, 6, nd=2),
        artifacts=tuple(a for a, p in ARTIFACT_RATES.items() if rng.random() < p))


def _sequence(rng, field: float) -> dict:
    """Cine TR/TE/flip by field strength; TI from a NORMAL heart's T1 (never the patient's)."""
    t1_ref = rng.uniform(*NORMAL_T1_MYO_POST) * (T1_POST_3T_FACTOR if field == 3.0 else 1.0)
    ti = t1_ref * np.log(2) + rng.normal(0.0, TI_SIGMA_MS)
    wrong = bool(rng.random() < WRONG_TI_RATE)
    if wrong:
        ti += float(rng.choice([-1, 1])) * rng.uniform(60, 120)
    flip = (50, 70) if field == 1.5 else (35, 45)
    return dict(ti_ms=round(float(np.clip(ti, 150, 450)), 1), wrong_ti=wrong,
                tr_ms=uniform(rng, 2.8, 3.5, nd=2), te_ms=uniform(rng, 1.2, 1.6, nd=2),
                flip_deg=float(rng.integers(*flip)))


def _identity(rng, study_index: int, seed: int, age: int) -> dict:
    """Date/time, accession, IDs and a birth date consistent with `age` at the study date."""
    day0 = _dt.date(2008, 1, 1)
    ndays = (_dt.date(2024, 12, 31) - day0).days
    date = day0 + _dt.timedelta(days=int(rng.integers(0, ndays + 1)))
    secs = int(rng.integers(7 * 3600, 19 * 3600))
    n_acc = int(rng.integers(8, 11))
    accession = str(rng.integers(1, 10)) + "".join(str(x) for x in rng.integers(0, 10, n_acc - 1))
    since_birthday = int(rng.integers(0, 365))
    birth = _shift_years(date, -age) - _dt.timedelta(days=since_birthday)
    return dict(study_date=date.strftime("%Y%m%d"),
                study_time=f"{secs // 3600:02d}{secs // 60 % 60:02d}{secs % 60:02d}",
                accession=accession, patient_id=f"SYN{seed % 100000:05d}{study_index:07d}",
                patient_name=f"SYNTH^P{study_index:06d}", birth_date=birth.strftime("%Y%m%d"))


def _shift_years(d: _dt.date, years: int) -> _dt.date:
    try:
        return d.replace(year=d.year + years)
    except ValueError:                            # 29 February
        return d.replace(year=d.year + years, day=28)


def sample_acquisition(rng, profile: Profile, study_index: int, seed: int, *, age: int) -> Acquisition:
    """One study's acquisition. Takes no class or latent input by design; `age` (class-independent
    in params) only fixes the birth date."""
    if not 0 <= int(age) <= 120:
        raise ValueError(f"age {age!r} out of range 0..120; pass the latent's age in years")
    scanner = _scanner(rng)
    fields = {**scanner, **_matrix(rng, profile), **_coverage(rng, profile), **_image_quality(rng),
              **_sequence(rng, scanner["field_strength"]),
              "name_noise": bool(rng.random() < NAME_NOISE_RATE),
              **_identity(rng, study_index, seed, int(age))}
    return Acquisition(**fields)
