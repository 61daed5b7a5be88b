"""Reference Table 1 made by tableone itself, independently of pofa's code: run from this folder with
``python3 make_reference.py`` (writes reference_patients.csv, by failure pattern, and
reference_patients_by_sex.csv, by the patient column ``sex``).

tableone 0.9.6 (Pollard et al., MIT licence; pip install tableone), pandas, on the analysed pipeline study
(../pipeline/analysed/*.csv as pofa writes them). Three patients' ages are blanked (P003, P010, P040) so that
the missing counts are exercised. The columns are built here from the raw tables (not by pofa), with the
labels the report uses.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from tableone import TableOne

BLANK_AGE = ("P003", "P010", "P040")
PATTERNS = {
    "no progression": "none",
    "strictly local": "strictly local",
    "mixed": "mixed",
    "strictly de novo": "strictly de novo",
    "unknown": "unknown",
}


def yes_no(s: pd.Series) -> pd.Series:
    out = pd.Series(pd.NA, index=s.index, dtype=object)
    ok = s.notna()
    out[ok] = np.where(s[ok].astype(bool), "yes", "no")
    return out


def patients_table(by: str = "_group") -> pd.DataFrame:
    p = pd.read_csv("../pipeline/analysed/patients.csv")
    les = pd.read_csv("../pipeline/analysed/lesions.csv")
    p.loc[p["patient_id"].isin(BLANK_AGE), "age"] = np.nan
    per = les.groupby("patient_id").size().reindex(p["patient_id"], fill_value=0).to_numpy()
    ext = les.groupby("patient_id")["extranodal"].any().reindex(p["patient_id"]).to_numpy()
    br = les.groupby("patient_id")["bridging_rt"].any().reindex(p["patient_id"]).to_numpy()
    frame = pd.DataFrame(
        {
            "n_lesions": per.astype(float),
            "max_diameter_cm": p["max_diameter_cm"],
            "max_suvmax": p["max_suvmax"],
            "any_extranodal": yes_no(pd.Series(ext)),
            "any_bridging": yes_no(pd.Series(br)),
            "age": p["age"],
            "sex": p["sex"],
            "ldh": yes_no(p["ldh_elevated"]),
            "ecog": p["ecog"].astype(float),
            "_group": p["pattern"].map(PATTERNS),
        }
    )
    if by == "sex":  # a setting-chosen grouping: two groups (Welch's t-test, Fisher's exact test for 2 x 2)
        frame["_group"] = frame.pop("sex")
    labels = {
        "n_lesions": "Baseline lesions per patient",
        "max_diameter_cm": "Largest lesion diameter (cm)",
        "max_suvmax": "Highest SUVmax",
        "any_extranodal": "Any extranodal lesion",
        "any_bridging": "Bridging radiotherapy to any lesion",
        "age": "Age (years)",
        "sex": "Sex",
        "ldh": "LDH elevated",
        "ecog": "ECOG performance status",
    }
    if by == "sex":
        del labels["sex"]
    cats = [c for c in ("any_extranodal", "any_bridging", "sex", "ldh") if c in labels]
    order = {
        "any_extranodal": ["no", "yes"],
        "any_bridging": ["no", "yes"],
        "ldh": ["no", "yes"],
        "sex": ["F", "M"],
        "_group": ["none", "strictly local", "mixed", "strictly de novo", "unknown"],
    }
    if by == "sex":
        del order["sex"]
        order["_group"] = ["F", "M"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t = TableOne(
            frame,
            columns=list(labels),
            categorical=cats,
            nonnormal=["n_lesions", "max_diameter_cm", "max_suvmax", "ecog"],
            groupby="_group",
            rename=labels,
            pval=True,
            htest_name=True,
            smd=True,
            missing=True,
            include_null=False,
            order=order,
            overall=True,
            decimals=1,
        )
    return t.tableone.droplevel(0, axis=1).reset_index()


if __name__ == "__main__":
    patients_table().to_csv("reference_patients.csv", index=False)
    patients_table("sex").to_csv("reference_patients_by_sex.csv", index=False)
