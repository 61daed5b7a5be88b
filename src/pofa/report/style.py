"""The report's visual conventions: the Okabe-Ito palette and matplotlib settings for publication figures.

The palette (Okabe & Ito 2008, "Color Universal Design") stays distinguishable for the common colour-vision
deficiencies; every figure also differs by marker or line style so that it reads in greyscale print.

This module does not import matplotlib; :data:`RC` is applied with ``matplotlib.rc_context`` around drawing
and saving, so pofa never changes a user's global matplotlib settings.
"""

from __future__ import annotations

from typing import Any

__all__ = ["DPI", "OKABE_ITO", "OUTCOME_STYLE", "PATTERN_COLOURS", "RC", "SVG_HASH_SALT"]

#: The eight Okabe-Ito colours.
OKABE_ITO: dict[str, str] = {
    "black": "#000000",
    "orange": "#E69F00",
    "sky blue": "#56B4E9",
    "bluish green": "#009E73",
    "yellow": "#F0E442",
    "blue": "#0072B2",
    "vermillion": "#D55E00",
    "reddish purple": "#CC79A7",
}
#: Neutral grey for "unknown" / "no failure" (not a data colour).
GREY = "#999999"

#: Colour of each first-progression pattern (and "none" for patients without progression): no two similar
#: hues side by side (vermillion / reddish purple / blue / bluish green), and a marker each as well.
PATTERN_COLOURS: dict[str, str] = {
    "strictly local": OKABE_ITO["vermillion"],
    "mixed": OKABE_ITO["reddish purple"],
    "strictly de novo": OKABE_ITO["blue"],
    "unknown": GREY,
    "none": OKABE_ITO["bluish green"],
}
#: Marker of each pattern (redundant with colour).
PATTERN_MARKERS: dict[str, str] = {
    "strictly local": "o",
    "mixed": "D",
    "strictly de novo": "^",
    "unknown": "s",
    "none": "",
}

#: (colour, marker, label) of each lesion outcome class in the lesion scatter.
OUTCOME_STYLE: dict[str, tuple[str, str, str]] = {
    "local failure": (OKABE_ITO["vermillion"], "o", "Local failure"),
    "controlled": (OKABE_ITO["bluish green"], "^", "Controlled (patient progressed elsewhere)"),
    "no progression": (OKABE_ITO["blue"], "s", "Patient without progression"),
    "unknown": (GREY, "x", "Outcome unknown (no failure lesions recorded)"),
}

#: Colour of each lesion-model method in the forest plot, with its marker and label.
METHOD_STYLE: dict[str, tuple[str, str, str]] = {
    "logistic": (OKABE_ITO["orange"], "s", "Logistic regression"),
    "gee": (OKABE_ITO["blue"], "o", "GEE (patients as clusters)"),
    "firth": (OKABE_ITO["reddish purple"], "^", "Firth logistic regression"),
}

#: Resolution of the PNG files.
DPI = 300
#: Fixed salt for the ids matplotlib writes into SVG files (reproducible SVG output).
SVG_HASH_SALT = "pofa-report"

#: matplotlib settings used while drawing and saving every report figure.
RC: dict[str, Any] = {
    "font.family": "DejaVu Sans",
    "font.size": 8.0,
    "axes.titlesize": 9.0,
    "axes.labelsize": 8.0,
    "xtick.labelsize": 7.5,
    "ytick.labelsize": 7.5,
    "legend.fontsize": 7.5,
    "legend.frameon": False,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.linewidth": 0.8,
    "lines.linewidth": 1.4,
    "axes.prop_cycle": None,  # set in figures.py (needs matplotlib's cycler)
    "savefig.dpi": DPI,
    "figure.dpi": 100,
    "svg.fonttype": "none",  # text stays text: editable in a journal's drawing program
    "svg.hashsalt": SVG_HASH_SALT,
    "path.simplify": True,
    "image.interpolation": "nearest",
}
