"""The data behind the baseline-and-failure figure (pofa.imaging.mip.MatchMip): what it holds equals the
match, it survives JSON exactly, and it draws exactly as the floating-point projection would."""

from __future__ import annotations

import io
import json
import re

import matplotlib
import numpy as np
import pytest
from match_phantoms import RIGID_DEMO, PhantomPair, make_pair

from pofa.errors import ImagingError
from pofa.imaging.matching import MatchResult, match_patient
from pofa.imaging.mip import (
    BASELINE_COLOURS,
    CLASS_COLOURS,
    MatchMip,
    coronal_mip,
    draw_match_mip,
    match_mip,
    mip_panel,
)
from pofa.imaging.volume import Volume

matplotlib.use("Agg")


@pytest.fixture(scope="module")
def pair() -> PhantomPair:
    return make_pair(RIGID_DEMO)


@pytest.fixture(scope="module")
def result(pair: PhantomPair) -> MatchResult:
    truth = RIGID_DEMO.truth_transform(pair.baseline_labels)
    return match_patient(pair.baseline_labels, pair.followup_labels, truth)


@pytest.fixture(scope="module")
def mip(pair: PhantomPair, result: MatchResult) -> MatchMip:
    return match_mip(result, pair.baseline_pet, pair.followup_pet, pair.baseline_labels, pair.followup_labels,
                     baseline_date="2020-01-02", failure_date="2020-05-06")


def test_outcomes_and_colours_are_the_match(mip: MatchMip, result: MatchResult) -> None:
    assert mip.failure.outcomes() == {r.followup_label: r.match_class.value for r in result.followup}
    expected_b = {
        b.baseline_label: ("local failure" if b.failed else "no failure") if b.in_followup_scan
        else "not in failure scan"
        for b in result.baseline
    }
    assert mip.baseline.outcomes() == expected_b
    for o in mip.failure.outlines:
        assert o.colour == CLASS_COLOURS[next(c for c in CLASS_COLOURS if c.value == o.outcome)]
    for o in mip.baseline.outlines:
        assert o.colour == BASELINE_COLOURS[o.outcome]
    counts = mip.counts()
    assert counts["failure"] == {"local": 6, "marginal": 1, "de novo": 2, "outside baseline scan": 0}
    assert sum(counts["baseline"].values()) == len(result.baseline)
    assert mip.registration == "a transform given by the caller (AffineTransform)."
    assert mip.tolerance_mm == 0.0 and mip.margin_mm == 10.0


def test_outline_masks_are_the_lesion_projections(pair: PhantomPair, mip: MatchMip) -> None:
    """Each outline's mask, placed in the image, is the coronal MIP of that lesion's voxels."""
    labels = pair.followup_labels
    for o in mip.failure.outlines:
        proj, _ = coronal_mip(labels.with_voxels((np.asarray(labels.voxels) == o.label).astype(np.uint8)))
        full = np.zeros(mip.failure.image.shape, dtype=bool)
        h, w = o.mask.shape
        full[o.top : o.top + h, o.left : o.left + w] = o.mask
        assert np.array_equal(full, proj > 0)


def test_json_round_trip_is_exact(mip: MatchMip) -> None:
    d = mip.to_json()
    text = json.dumps(d, allow_nan=False)
    back = MatchMip.from_json(json.loads(text))
    assert back.to_json() == d
    assert np.array_equal(back.baseline.image, mip.baseline.image)
    for a, b in zip(back.failure.outlines, mip.failure.outlines, strict=True):
        assert np.array_equal(a.mask, b.mask) and (a.label, a.top, a.left) == (b.label, b.top, b.left)
    assert (back.baseline_date, back.failure_date) == ("2020-01-02", "2020-05-06")
    with pytest.raises(ImagingError, match="format"):
        MatchMip.from_json({**d, "format": 0})
    with pytest.raises(ImagingError, match="incomplete"):
        MatchMip.from_json({k: v for k, v in d.items() if k != "failure"})


def test_grey_levels_draw_as_the_float_projection(pair: PhantomPair, mip: MatchMip) -> None:
    """Stored level q = min(floor(256 v / vmax), 255), drawn on -0.5..255.5, picks the colour map entry that
    imshow(v, vmin=0, vmax=vmax) picks: the same colour for every pixel."""
    cmap = matplotlib.colormaps["gray_r"]
    img, extent = coronal_mip(pair.baseline_pet)
    float_colours = cmap(matplotlib.colors.Normalize(0.0, mip.baseline.vmax)(img))
    stored_colours = cmap(matplotlib.colors.Normalize(-0.5, 255.5)(mip.baseline.image))
    assert np.array_equal(float_colours, stored_colours)
    assert mip.baseline.extent == extent
    assert mip.baseline.vmax == pytest.approx(float(np.percentile(img, 99.5)), rel=0, abs=0)
    assert mip.failure.vmax == mip.baseline.vmax  # one grey scale for both panels


def test_drawn_outlines_carry_their_lesion(mip: MatchMip) -> None:
    fig = draw_match_mip(mip, title="3")
    ax_b, ax_f = fig.axes[:2]
    assert len(ax_b.collections) == len(mip.baseline.outlines)
    assert len(ax_f.collections) == len(mip.failure.outlines)
    buf = io.BytesIO()
    fig.savefig(buf, format="svg")
    ids = re.findall(r'id="lesion:(baseline|failure):(\d+):([a-z_]+)"', buf.getvalue().decode())
    found = {(p, int(k)): v.replace("_", " ") for p, k, v in ids}
    expected = {("baseline", k): v for k, v in mip.baseline.outcomes().items()}
    expected.update({("failure", k): v for k, v in mip.failure.outcomes().items()})
    assert found == expected


def test_panel_on_another_grid_and_empty_pet() -> None:
    pet = Volume.from_spacing(np.zeros((6, 5, 7), np.float32), (2.0, 2.0, 2.0))
    labels = np.zeros((12, 10, 14), np.uint8)
    labels[4:6, 2:8, 6:10] = 3
    lab = Volume.from_spacing(labels, (1.0, 1.0, 1.0), (-0.5, -0.5, -0.5))
    panel = mip_panel(pet, lab, {3: "local"}, {3: "#D55E00"})
    assert panel.vmax == 1.0 and not panel.image.any()  # an all-zero PET still gives a scale
    (o,) = panel.outlines
    assert (o.label, o.outcome, o.colour) == (3, "local", "#D55E00")
    assert o.mask.any()


def test_oblique_pet_is_refused() -> None:
    c = 1.0 / np.sqrt(2.0)
    direction = np.array([[0.0, c, -c], [0.0, c, c], [1.0, 0.0, 0.0]])  # rows and columns 45 degrees apart
    pet = Volume.from_spacing(np.ones((5, 5, 5), np.float32), direction=direction)
    with pytest.raises(ImagingError, match="oblique"):
        mip_panel(pet)
