"""The DICOMweb client's settings, references, manifest rows and manifest checks (no server needed)."""

from __future__ import annotations

import csv
import logging
from pathlib import Path

import pytest
import requests

from pofa.pacs.client import as_pacs_error, connect, open_session
from pofa.pacs.errors import PacsAuthError, PacsConfigError, PacsUnavailableError, SeriesNotFoundError
from pofa.pacs.fetch import default_cache_dir
from pofa.pacs.find import FoundSeries, manifest_rows, manifest_text
from pofa.pacs.reference import SeriesRef, is_reference

URL = "https://pacs.example.org/dicom-web"


@pytest.fixture(autouse=True)
def _no_credentials(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ("POFA_DICOMWEB_TOKEN", "POFA_DICOMWEB_USER", "POFA_DICOMWEB_PASSWORD"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NETRC", str(tmp_path / "no-netrc"))


def test_a_reference_reads_back_and_is_canonical() -> None:
    ref = SeriesRef.parse(" dicomweb:HTTPS://PACS.example.org/dicom-web/?series=1.2.3.4&study=1.2.3 ")
    assert str(ref) == f"dicomweb:{URL}?study=1.2.3&series=1.2.3.4"
    assert SeriesRef.parse(str(ref)) == ref and len(ref.key) == 64
    assert is_reference("DICOMweb:x") and not is_reference("dicom/pet") and not is_reference(None)


@pytest.mark.parametrize(("text", "message"), [
    ("dicomweb:https://u:secret@pacs.example.org/dicom-web?study=1.2&series=1.3", "holds credentials"),
    ("dicomweb:https://pacs.example.org/dicom-web?study=1.2", "no series"),
    ("dicomweb:https://pacs.example.org/dicom-web?study=1.2&series=1.3&x=1", "only study= and series="),
    ("dicomweb:https://pacs.example.org/dicom-web?study=1.2&series=1.02", "not a DICOM UID"),
    ("dicomweb:ftp://pacs.example.org/x?study=1.2&series=1.3", "must start with https://"),
    ("dicomweb:https://pacs.example.org/dicom-web", r"needs \?study="),
])
def test_bad_references_are_refused_without_showing_a_password(text: str, message: str) -> None:
    with pytest.raises(PacsConfigError, match=message) as err:
        SeriesRef.parse(text)
    assert "secret" not in str(err.value)


def test_credentials_come_from_the_environment_then_netrc_never_the_url(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    assert open_session(URL).auth is None
    netrc = tmp_path / "netrc"
    netrc.write_text("machine pacs.example.org login nuser password npass\n", encoding="utf-8")
    netrc.chmod(0o600)
    monkeypatch.setenv("NETRC", str(netrc))
    assert open_session(URL).auth == requests.auth.HTTPBasicAuth("nuser", "npass")
    monkeypatch.setenv("POFA_DICOMWEB_USER", "euser")
    monkeypatch.setenv("POFA_DICOMWEB_PASSWORD", "epass")
    assert open_session(URL).auth == requests.auth.HTTPBasicAuth("euser", "epass")
    monkeypatch.setenv("POFA_DICOMWEB_TOKEN", "tok-123")
    auth = open_session(URL).auth
    prepared = requests.Request("GET", URL, auth=auth).prepare()
    assert prepared.headers["Authorization"] == "Bearer tok-123"
    assert "tok-123" not in repr(auth)
    with pytest.raises(PacsConfigError, match="holds credentials"):
        connect("https://a:b@pacs.example.org/dicom-web")


def test_a_user_without_a_password_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POFA_DICOMWEB_USER", "euser")
    with pytest.raises(PacsConfigError, match="POFA_DICOMWEB_PASSWORD is not"):
        connect(URL)


def test_turning_tls_verification_off_warns_loudly(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING), pytest.warns(UserWarning, match="VERIFICATION IS OFF"):
        session = open_session(URL, verify_tls=False)
    assert session.verify is False and "VERIFICATION IS OFF" in caplog.text
    assert open_session(URL).verify is True


def test_the_session_retries_with_back_off() -> None:
    retry = open_session(URL, retries=3, backoff=0.25).get_adapter(URL).max_retries
    assert retry.total == 3 and retry.backoff_factor == 0.25
    assert set(retry.status_forcelist) == {429, 500, 502, 503, 504}


def test_http_failures_become_typed_errors_naming_what() -> None:
    def http(status: int) -> requests.HTTPError:
        r = requests.Response()
        r.status_code, r.reason = status, "x"
        return requests.HTTPError(response=r)

    what = "series 1.3 of study 1.2"
    assert isinstance(as_pacs_error(http(404), url=URL, what=what), SeriesNotFoundError)
    assert isinstance(as_pacs_error(http(401), url=URL, what=what), PacsAuthError)
    err = as_pacs_error(http(500), url=URL, what=what)
    assert isinstance(err, PacsUnavailableError) and str(err).startswith(f"{what} on {URL}: ")
    assert "in time" in str(as_pacs_error(requests.Timeout(), url=URL, what=what))
    assert "cannot connect" in str(as_pacs_error(requests.ConnectionError(), url=URL, what=what))


def test_default_cache_follows_xdg(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert default_cache_dir() == tmp_path / "pofa" / "dicomweb"
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/ignored")
    assert default_cache_dir() == Path.home() / ".cache" / "pofa" / "dicomweb"


def _s(pid: str, study: str, series: str, modality: str, date: str = "2020-01-02", frame: str = "",
       number: int | None = None) -> FoundSeries:
    return FoundSeries(pid, study, series, modality, date, number, None, frame)


def test_rows_pair_each_pet_with_its_studys_ct() -> None:
    found = [_s("B", "1.1", "1.1.1", "PT"), _s("B", "1.1", "1.1.2", "CT"),
             _s("A", "1.2", "1.2.1", "PT", "2021-05-06"), _s("A", "1.2", "1.2.2", "CT", "2021-05-06"),
             _s("A", "1.3", "1.3.1", "CT")]  # a CT-only study: left out
    res = manifest_rows(URL, found)
    assert [r["patient_id"] for r in res.rows] == ["A", "B"]
    assert res.rows[0]["pet"] == f"dicomweb:{URL}?study=1.2&series=1.2.1"
    assert res.rows[0]["ct"] == f"dicomweb:{URL}?study=1.2&series=1.2.2"
    assert res.rows[0]["scan_date"] == "2021-05-06" and res.rows[0]["role"] == ""
    assert res.notes == ("1 CT series in studies without a PET series were left out",)
    assert (res.studies, res.pet_series, res.ct_series) == (3, 2, 3)
    header = next(csv.reader([manifest_text(res.rows).splitlines()[0]]))
    assert header == ["patient_id", "role", "scan_date", "pet", "ct", "mask", "organs", "threshold",
                      "transform"]


def test_several_cts_pair_by_frame_of_reference_or_are_left_to_the_reader() -> None:
    found = [_s("A", "1.2", "1.2.1", "PT", frame="9.1"), _s("A", "1.2", "1.2.2", "CT", frame="9.2"),
             _s("A", "1.2", "1.2.3", "CT", frame="9.1")]
    assert manifest_rows(URL, found).rows[0]["ct"].endswith("series=1.2.3")
    found[2] = _s("A", "1.2", "1.2.3", "CT", frame="9.3")
    res = manifest_rows(URL, found)
    assert res.rows[0]["ct"] == "" and res.notes[0].startswith("row 2: its study has 2 CT series")
    assert "A" not in res.notes[0].split(":")[1]


def test_a_formula_patient_id_is_neutralised_and_noted() -> None:
    res = manifest_rows(URL, [_s("=HYPERLINK(1)", "1.2", "1.2.1", "PT")])
    assert res.rows[0]["patient_id"] == "'=HYPERLINK(1)" and "formula" in res.notes[0]


def test_the_manifest_reader_checks_references(tmp_path: Path) -> None:
    from pofa.batch.manifest import read_manifest

    good = f"dicomweb:{URL}?study=1.2&series=1.3"
    (tmp_path / "manifest.csv").write_text(
        "patient_id,role,scan_date,pet,ct,organs,threshold\n"
        f"P1,baseline,2020-01-02,{good},{good[:-1]}4,,suv4\n"
        f"P2,baseline,2020-01-02,dicomweb:{URL}?study=1.2,,,suv4\n"
        f"P3,baseline,2020-01-02,{good},,{good},suv4\n", encoding="utf-8")
    (tmp_path / "patients.csv").write_text(
        "patient_id,index_date,last_followup_date,progression_date,death_date\n"
        + "".join(f"P{i},2020-01-10,2021-01-01,,\n" for i in (1, 2, 3)), encoding="utf-8")
    m = read_manifest(tmp_path / "manifest.csv")
    bad = {(f.row, f.column) for f in m.report.errors if f.code == "bad-reference"}
    assert bad == {(3, "pet"), (4, "organs")}
    scan = next(s for s in m.scans if s.patient_id == "P1")
    assert scan.pet == good and scan.ct == f"{good[:-1]}4"
