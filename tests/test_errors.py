"""Typed errors: the library says what is wrong; advice names options, spelled as flags only by the CLI."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from pofa.cli import app
from pofa.cli.output import error_message, flag
from pofa.errors import ImagingError, PofaError, SettingsError
from pofa.io.toml import TomlFileError, TomlProblem, read_toml
from pofa.vocabulary import FailureClass, MatchClass, PatientPattern


def test_advice_names_parameters_in_the_library_and_flags_in_the_cli() -> None:
    exc = ImagingError("Height is missing (PatientSize (0010,1020)); SUL needs it",
                       advice="give {height_m} or use {normalisation} bw")
    assert str(exc) == ("Height is missing (PatientSize (0010,1020)); SUL needs it; give height_m or use "
                        "normalisation bw")
    assert "--" not in str(exc)
    assert error_message(exc) == ("Height is missing (PatientSize (0010,1020)); SUL needs it; "
                                  "give --height-m or use --suv bw")
    assert exc.options == ("height_m", "normalisation")
    assert exc.message.startswith("Height is missing")


def test_errors_without_advice_and_odd_advice() -> None:
    assert str(PofaError("plain")) == "plain" and PofaError("plain").options == ()
    odd = PofaError("bad", advice="a brace { in a file name")  # not a template: shown as it is
    assert str(odd) == "bad; a brace { in a file name"
    assert error_message(ValueError("x")) == "x"
    assert flag("weight_kg") == "--weight-kg" and flag("series_uid") == "--pet-series / --ct-series"


def test_cli_shows_the_flag(tmp_path) -> None:
    from pofa.data import bundled_study

    (tmp_path / "o").mkdir()
    (tmp_path / "o" / "mine.txt").write_text("x", encoding="utf-8")
    res = CliRunner().invoke(app, ["analyze", str(bundled_study("example")), "--out", str(tmp_path / "o")],
                             env={"COLUMNS": "250"})
    assert res.exit_code == 2
    assert "is not empty; choose another --out, or add --force" in " ".join(res.output.split())


def test_one_toml_reader(tmp_path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[cohort\n", encoding="utf-8")
    with pytest.raises(TomlFileError) as info:
        read_toml(bad)
    assert info.value.reason is TomlProblem.INVALID and isinstance(info.value, SettingsError)
    with pytest.raises(TomlFileError) as missing:
        read_toml(tmp_path / "none.toml")
    assert missing.value.reason is TomlProblem.MISSING
    (tmp_path / "latin1.toml").write_bytes(b'a = "\xe9"\n')
    with pytest.raises(TomlFileError, match="UTF-8"):
        read_toml(tmp_path / "latin1.toml")
    good = tmp_path / "good.toml"
    good.write_text('[cohort]\nn_patients = 5\n', encoding="utf-8")
    assert read_toml(good) == {"cohort": {"n_patients": 5}}


def test_vocabulary_values_are_the_strings_users_see() -> None:
    import json

    assert PatientPattern.STRICTLY_DE_NOVO == "strictly de novo"
    assert f"{PatientPattern.MIXED}" == "mixed"
    assert json.dumps([FailureClass.DE_NOVO, MatchClass.OUTSIDE]) == '["de novo", "outside baseline scan"]'
    assert [m.value for m in MatchClass][:3] == [m.value for m in FailureClass]
