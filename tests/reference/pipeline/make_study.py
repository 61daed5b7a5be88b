"""Make the committed end-to-end reference study and its analysed tables (run once; the files are committed).

    python3 tests/reference/pipeline/make_study.py
    cd tests/reference/pipeline && Rscript make_reference.R      # -> reference.json

``study/``     The study folder (patients.csv, lesions.csv, failures.csv, study.toml) written by the
               simulator: preset figura2021, 80 patients, seed 2027, ``failure.unknown_pattern_prob =
               0.05`` (so that some patients progress without failure rows and their lesions have no known
               outcome). Seed 2027 was chosen among 2021-2030 because its study has every competing cause
               (local component, strictly de novo, death without progression, pattern unknown), tied PFS and
               OS event times and 30 lesions of unknown outcome. Invented patients, not real data.
``analysed/``  patients.csv and lesions.csv as ``pofa analyze --show-dates`` writes them
               (:func:`pofa.analysis.run_analysis` + :func:`pofa.analysis.output_tables`): the input of
               make_reference.R. tests/test_pipeline_vs_r.py checks that the current pipeline still produces
               these tables, then compares results.json with reference.json.

The simulator may change; the committed files, not this script, are the reference.
"""

from __future__ import annotations

from pathlib import Path

import pofa
from pofa.analysis import AnalysisOptions, output_tables, run_analysis, write_csv
from pofa.simulate import load_params, simulate, write_study

HERE = Path(__file__).parent
SEED = 2027
N_PATIENTS = 80
ASSIGNMENTS = ("failure.unknown_pattern_prob=0.05",)


def main() -> None:
    params = load_params("figura2021", assignments=ASSIGNMENTS, n_patients=N_PATIENTS)
    sim = simulate(params, SEED, preset="figura2021")
    study_dir = write_study(sim, HERE / "study", force=True)
    result = run_analysis(pofa.load_study(study_dir), AnalysisOptions(show_dates=True), steps=())
    out = HERE / "analysed"
    out.mkdir(exist_ok=True)
    tables = output_tables(result)
    for stem in ("patients", "lesions"):
        write_csv(tables[stem], out / f"{stem}.csv")
    print(sim.summary())


if __name__ == "__main__":
    main()
