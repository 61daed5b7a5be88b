"""Build REDCap records exports and data dictionaries the way REDCap writes them, from a study's CSV rows.

Used by tests/test_redcap.py: raw or labels values, variable names or field labels as headers, classic or
longitudinal projects (patients' follow-up fields on a form of their own event), repeating lesions and
failures instruments, a checkbox field.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path

from pofa.redcap.dictionary import DICTIONARY_COLUMNS, default_dictionary_rows, default_mapping
from pofa.schema import TABLES, TableName

DEMO = Path(__file__).resolve().parents[1] / "src" / "pofa" / "data" / "demo"

#: Demo patient covariates as REDCap fields: (field, type, choices, validation).
COVARIATES = (
    ("age", "text", "", "integer", "Age (years)"),
    ("sex", "radio", "1, M | 2, F", "", "Sex"),
    ("ldh_elevated", "yesno", "", "", "LDH elevated"),
    ("ecog", "dropdown", "0, 0 | 1, 1 | 2, 2 | 3, 3 | 4, 4", "", "ECOG performance status"),
    ("prior_lines", "checkbox", "1, ASCT | 2, Radiotherapy", "", "Prior treatment"),
)
CHECKBOX_CHOICES = (("1", "ASCT"), ("2", "Radiotherapy"))
FOLLOW_UP_FIELDS = ("last_followup_date", "death_date")
EVENTS = {"patients": ("baseline_arm_1", "Baseline (Arm 1: Arm 1)"),
          "follow_up": ("follow_up_arm_1", "Follow-up (Arm 1: Arm 1)"),
          "lesions": ("baseline_arm_1", "Baseline (Arm 1: Arm 1)"),
          "failures": ("progression_arm_1", "Progression (Arm 1: Arm 1)")}


def read_rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def prior_lines(i: int) -> tuple[str, str]:
    """The checkbox's values (yes/no per choice) of the i-th patient: deterministic."""
    return ("yes" if i % 2 == 0 else "no", "yes" if i % 3 == 0 else "no")


def equivalent_folder(out: Path) -> Path:
    """The demo study as a CSV folder with the checkbox's columns added (what the import must give)."""
    out.mkdir(parents=True, exist_ok=True)
    patients = read_rows(DEMO / "patients.csv")
    cols = list(patients[0]) + ["prior_lines___1", "prior_lines___2"]
    with open(out / "patients.csv", "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(cols)
        for i, p in enumerate(patients):
            w.writerow([p[c] for c in cols[:-2]] + list(prior_lines(i)))
    for name in ("lesions.csv", "failures.csv"):
        (out / name).write_bytes((DEMO / name).read_bytes())
    return out


@dataclass(frozen=True)
class Project:
    """How the REDCap project is laid out."""

    longitudinal: bool = False


def dictionary_rows(project: Project) -> list[dict[str, str]]:
    rows = default_dictionary_rows()
    out: list[dict[str, str]] = []
    for r in rows:
        if project.longitudinal and r["Variable / Field Name"] in FOLLOW_UP_FIELDS:
            r = dict(r, **{"Form Name": "follow_up"})
        out.append(r)
    cov = []
    for name, ftype, choices, validation, label in COVARIATES:
        row = dict.fromkeys(DICTIONARY_COLUMNS, "")
        row.update({"Variable / Field Name": name, "Form Name": "patients", "Field Type": ftype,
                    "Field Label": label, "Choices, Calculations, OR Slider Labels": choices,
                    "Text Validation Type OR Show Slider Number": validation})
        cov.append(row)
    # Keep each form's fields together (REDCap requires it): covariates after the patients form's fields.
    last_patients = max(i for i, r in enumerate(out) if r["Form Name"] == "patients")
    out = out[:last_patients + 1] + cov + out[last_patients + 1:]
    if project.longitudinal:  # the follow_up form after the patients form
        fu = [r for r in out if r["Form Name"] == "follow_up"]
        rest = [r for r in out if r["Form Name"] != "follow_up"]
        at = max(i for i, r in enumerate(rest) if r["Form Name"] == "patients") + 1
        out = rest[:at] + fu + rest[at:]
    return out


def dictionary_text(project: Project) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(DICTIONARY_COLUMNS), quoting=csv.QUOTE_ALL, lineterminator="\n")
    w.writeheader()
    w.writerows(dictionary_rows(project))
    return buf.getvalue()


def _columns(project: Project) -> list[tuple[str, str, str]]:
    """(raw header, labels header, form) of every export column, in REDCap's order."""
    d = dictionary_rows(project)
    cols = [("record_id", "Patient ID", "")]
    if project.longitudinal:
        cols.append(("redcap_event_name", "Event Name", ""))
    cols += [("redcap_repeat_instrument", "Repeat Instrument", ""),
             ("redcap_repeat_instance", "Repeat Instance", "")]
    forms = list(dict.fromkeys(r["Form Name"] for r in d))
    for form in forms:
        for r in d:
            if r["Form Name"] != form or r["Variable / Field Name"] == "record_id":
                continue
            name, label = r["Variable / Field Name"], r["Field Label"]
            if r["Field Type"] == "checkbox":
                cols += [(f"{name}___{c}", f"{label} (choice={lab})", form) for c, lab in CHECKBOX_CHOICES]
            else:
                cols.append((name, label, form))
        cols.append((f"{form}_complete", "Complete?", form))
    return cols


def _field_of(table: TableName) -> dict[str, str]:
    return default_mapping()[table]


def export_text(project: Project, labels: bool = False, label_header: bool = False,
                incomplete: frozenset[str] = frozenset()) -> str:
    """The demo study as REDCap's flat records export (CSV text).

    ``labels``: values as labels (Yes/No, M/F, Checked/Unchecked, Complete, instrument and event labels);
    ``label_header``: field labels as headers (the web page's "CSV (labels)"). Records in ``incomplete``
    have their patients form marked Incomplete.
    """
    cols = _columns(project)
    patients = read_rows(DEMO / "patients.csv")
    lesions = read_rows(DEMO / "lesions.csv")
    failures = read_rows(DEMO / "failures.csv")
    yes, no = ("Yes", "No") if labels else ("1", "0")
    checked, unchecked = ("Checked", "Unchecked") if labels else ("1", "0")
    complete = "Complete" if labels else "2"
    rows: list[dict[str, str]] = []

    def event(form: str) -> dict[str, str]:
        if not project.longitudinal:
            return {}
        unique, label = EVENTS[form]
        return {"redcap_event_name": label if labels else unique}

    def yn(v: str) -> str:
        return {"yes": yes, "no": no, "": ""}[v]

    for i, p in enumerate(patients):
        rec = p["patient_id"]
        base = {"record_id": rec, **event("patients")}
        for col, fld in _field_of(TableName.PATIENTS).items():
            if col != "patient_id" and not (project.longitudinal and fld in FOLLOW_UP_FIELDS):
                base[fld] = p[col]
        base["age"] = p["age"]
        base["sex"] = p["sex"] if labels else {"M": "1", "F": "2"}[p["sex"]]
        base["ldh_elevated"] = yn(p["ldh_elevated"])
        base["ecog"] = p["ecog"]
        for (code, _), v in zip(CHECKBOX_CHOICES, prior_lines(i), strict=True):
            base[f"prior_lines___{code}"] = checked if v == "yes" else unchecked
        base["patients_complete"] = ("Incomplete" if labels else "0") if rec in incomplete else complete
        rows.append(base)
        if project.longitudinal:
            fu = {"record_id": rec, **event("follow_up"), "follow_up_complete": complete}
            for fld in FOLLOW_UP_FIELDS:
                fu[fld] = p[fld]
            rows.append(fu)
        for table, form, source in ((TableName.LESIONS, "lesions", lesions),
                                    (TableName.FAILURES, "failures", failures)):
            mine = [r for r in source if r["patient_id"] == rec]
            for k, r in enumerate(mine, start=1):
                row = {"record_id": rec, **event(form),
                       "redcap_repeat_instrument": form.capitalize() if labels else form,
                       "redcap_repeat_instance": str(k), f"{form}_complete": complete}
                for col, fld in _field_of(table).items():
                    if col == "patient_id":
                        continue
                    kind = TABLES[table].column(col)
                    assert kind is not None
                    value = r.get(col, "")
                    row[fld] = yn(value) if kind.kind.value == "yes/no" else value
                rows.append(row)
    buf = io.StringIO()
    w = csv.writer(buf, quoting=csv.QUOTE_MINIMAL, lineterminator="\n")
    w.writerow([c[1] if label_header else c[0] for c in cols])
    for row in rows:
        w.writerow([row.get(c[0], "") for c in cols])
    return buf.getvalue()
