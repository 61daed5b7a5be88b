"""The headline figures of the paper the bundled demo study imitates (Figura et al. 2021).

They feed the demo report's comparison table and the forest plot's reference marks.

Figura NB et al., Int J Radiat Oncol Biol Phys 2021;111(5):1145-1154 (abstract): 63 patients, 469 baseline
lesions. These are published numbers, not estimates: the report prints them beside the demo's own.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "CITATION",
    "PAPER_HAZARD_RATIOS",
    "PAPER_ODDS_RATIOS",
    "PAPER_PATTERNS",
    "PaperRatio",
    "is_paper_demo",
]

CITATION = "Figura NB et al. Int J Radiat Oncol Biol Phys 2021;111(5):1145-1154"

#: The simulation preset that imitates the paper (``[study] preset`` of the bundled demo).
PAPER_PRESET = "figura2021"


@dataclass(frozen=True, slots=True)
class PaperRatio:
    """A published ratio with its 95% CI, and the pofa term it belongs to.

    Attributes
    ----------
    term : str
        The risk-factor term as written in study.toml (``"diameter_cm>=5"``).
    endpoint : str
        ``""`` for a lesion-level odds ratio, ``"pfs"``/``"os"`` for a hazard ratio.
    label : str
        How the paper names it.
    estimate, ci_low, ci_high : float
        The published ratio and CI.
    p : str
        The published p-value, as printed.
    """

    term: str
    endpoint: str
    label: str
    estimate: float
    ci_low: float
    ci_high: float
    p: str


#: Lesion-level odds ratios of local failure (univariable).
PAPER_ODDS_RATIOS: tuple[PaperRatio, ...] = (
    PaperRatio("diameter_cm>=5", "", "Diameter \u2265 5 cm", 2.34, 1.55, 3.55, "< .001"),
    PaperRatio("suvmax>=10", "", "SUVmax \u2265 10", 2.08, 1.38, 3.12, "< .001"),
    PaperRatio("extranodal", "", "Extranodal", 1.49, 1.10, 2.04, ".01"),
)

#: Patient-level hazard ratios of any lesion >= 5 cm.
PAPER_HAZARD_RATIOS: tuple[PaperRatio, ...] = (
    PaperRatio("any diameter_cm>=5", "pfs", "Any lesion \u2265 5 cm, PFS", 2.41, 1.15, 5.04, ".02"),
    PaperRatio("any diameter_cm>=5", "os", "Any lesion \u2265 5 cm, OS", 3.36, 1.17, 9.96, ".02"),
)

#: Patient counts: (label, numerator, denominator, the PatternCounts fields of the demo's own numbers).
PAPER_PATTERNS: tuple[tuple[str, int, int, str, str], ...] = (
    ("Recurred (of all patients)", 36, 63, "recurred", "patients"),
    ("Local component (of recurred)", 31, 36, "local_component", "recurred"),
    ("Strictly local (of recurred)", 13, 36, "strictly_local", "recurred"),
    ("Maintained control of some baseline lesions (of recurred)", 26, 31, "maintained_control", "recurred"),
)


def is_paper_demo(extra: dict[str, object]) -> bool:
    """Whether a study's ``[study]`` metadata marks it as the simulation of the paper.

    Parameters
    ----------
    extra : dict
        ``Settings.study.extra`` as a dict.

    Returns
    -------
    bool
        ``True`` when ``simulated`` is true and ``preset`` is :data:`PAPER_PRESET`.
    """
    return extra.get("simulated") is True and extra.get("preset") == PAPER_PRESET
