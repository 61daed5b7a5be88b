"""``pofa power``: power or sample size of a planned study by simulation (registered by pofa.cli).

Light to import: numpy, scipy and Dask load only when the command runs.

Exit codes: 0 done; 2 bad options (nothing computed).
"""

from __future__ import annotations

import math
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from pofa.cli.output import error_message
from pofa.errors import PofaError, SettingsError

if TYPE_CHECKING:
    from rich.console import Console

    from pofa.power.design import PlannedStudy
    from pofa.power.power import PowerResult, SampleSizeResult

__all__ = ["power_command"]


class _Dist(StrEnum):
    fixed = "fixed"
    poisson = "poisson"
    negbin = "negbin"


class _Scale(StrEnum):
    marginal = "marginal"
    conditional = "conditional"


_LESION = "Lesion-level study (--or)"
_SURV = "Patient-level survival study (--hr)"
_SIM = "Simulator cohorts (--preset)"
_RUN = "Simulation and output"


def power_command(
    odds_ratio: Annotated[float | None, typer.Option(
        "--or", help="Target odds ratio of a binary lesion factor (GEE Wald test).",
        rich_help_panel=_LESION)] = None,
    hazard_ratio: Annotated[float | None, typer.Option(
        "--hr", help="Target hazard ratio of a binary patient factor (Cox Wald test).",
        rich_help_panel=_SURV)] = None,
    preset: Annotated[str | None, typer.Option(
        "--preset", help="Simulate whole cohorts with this simulator preset (e.g. figura2021) and test as "
                         "the paper: three lesion GEEs and the Cox model of PFS.",
        rich_help_panel=_SIM)] = None,
    patients: Annotated[int, typer.Option(
        "--patients", min=2, help="Patients (with --target-power: where the search starts).")] = 63,
    target_power: Annotated[float | None, typer.Option(
        "--target-power", min=0.0, max=1.0,
        help="Search the smallest number of patients reaching this power instead.")] = None,
    min_patients: Annotated[int, typer.Option("--min-patients", min=2, help="Smallest N searched.")] = 4,
    max_patients: Annotated[int, typer.Option("--max-patients", min=2, help="Largest N searched.")] = 5000,
    step: Annotated[int, typer.Option("--step", min=1, help="Precision of the search (patients).")] = 1,
    test: Annotated[int, typer.Option(
        "--test", min=0, help="Which test the search targets with --preset (0-3: diameter, SUVmax, "
                              "extranodal, PFS; 4: bridging RT, with --preset bridging_rt).")] = 0,
    alpha: Annotated[float, typer.Option("--alpha", help="Two-sided significance level.")] = 0.05,
    baseline_risk: Annotated[float | None, typer.Option(
        "--baseline-risk", help="Risk of the outcome in lesions without the factor, averaged over patients "
                                "\\[default 0.245].", rich_help_panel=_LESION)] = None,
    prevalence: Annotated[float | None, typer.Option(
        "--prevalence", help="Share of lesions (--or; default 0.23) or patients (--hr; default 46/69) with "
                             "the factor.")] = None,
    lesions_mean: Annotated[float | None, typer.Option(
        "--lesions-mean", help="Mean lesions per patient (default 7.44).", rich_help_panel=_LESION)] = None,
    lesions_dist: Annotated[_Dist, typer.Option(
        "--lesions-dist", help="Lesions per patient: fixed, 1 + Poisson, 1 + negative binomial.",
        rich_help_panel=_LESION)] = _Dist.negbin,
    lesions_dispersion: Annotated[float | None, typer.Option(
        "--lesions-dispersion", help="Negative-binomial size (default 2).", rich_help_panel=_LESION)] = None,
    icc: Annotated[float | None, typer.Option(
        "--icc", help="Intra-patient correlation of the outcome on the latent scale, "
                      "sd^2/(sd^2 + pi^2/3) (default 0.456).", rich_help_panel=_LESION)] = None,
    patient_sd: Annotated[float | None, typer.Option(
        "--patient-sd", help="Or the random-intercept SD on the logit scale (default 1.66).",
        rich_help_panel=_LESION)] = None,
    factor_icc: Annotated[float | None, typer.Option(
        "--factor-icc", help="Latent intra-patient correlation of the factor: 0 = independent across a "
                             "patient's lesions (default 0.229).", rich_help_panel=_LESION)] = None,
    effect_scale: Annotated[_Scale, typer.Option(
        "--effect-scale", help="The OR is population-averaged (as GEE and papers) or patient-specific.",
        rich_help_panel=_LESION)] = _Scale.marginal,
    small_sample: Annotated[bool, typer.Option(
        "--small-sample", help="Test GEEs with the Mancl-DeRouen bias-reduced SE (advised below 50 "
                               "patients).")] = False,
    median_months: Annotated[float | None, typer.Option(
        "--median-months", help="Median time to event without the factor (default 12).",
        rich_help_panel=_SURV)] = None,
    weibull_shape: Annotated[float | None, typer.Option(
        "--weibull-shape", help="Weibull shape of event times (1 = exponential).",
        rich_help_panel=_SURV)] = None,
    accrual_months: Annotated[float | None, typer.Option(
        "--accrual-months", help="Accrual period (default 24).", rich_help_panel=_SURV)] = None,
    followup_months: Annotated[float | None, typer.Option(
        "--followup-months", help="Follow-up after the end of accrual; inf = none (default 12).",
        rich_help_panel=_SURV)] = None,
    dropout_per_year: Annotated[float | None, typer.Option(
        "--dropout-per-year", help="Loss to follow-up per year (default 0).", rich_help_panel=_SURV)] = None,
    set_: Annotated[list[str] | None, typer.Option(
        "--set", help="Change a simulator parameter, e.g. --set failure.log_or_bulky=1.0 (repeatable).",
        rich_help_panel=_SIM)] = None,
    config: Annotated[Path | None, typer.Option(
        "--config", help="TOML file of simulator parameters.", rich_help_panel=_SIM)] = None,
    replicates: Annotated[int, typer.Option(
        "--replicates", min=2, help="Simulated studies per N (MC SE of power <= 0.5/sqrt(replicates)).",
        rich_help_panel=_RUN)] = 1000,
    seed: Annotated[int, typer.Option("--seed", min=0, help="Random seed (same seed, same numbers).",
                                      rich_help_panel=_RUN)] = 2021,
    chunk_size: Annotated[int, typer.Option(
        "--chunk-size", min=1, help="Replicates per task (part of the seed: changing it changes the draws).",
        rich_help_panel=_RUN)] = 50,
    workers: Annotated[int | None, typer.Option(
        "--workers", min=0, help="Worker processes of a local Dask cluster; 0 = in this process "
                                 "\\[default: all cores for long runs, else 0].",
        rich_help_panel=_RUN)] = None,
    scheduler: Annotated[str | None, typer.Option(
        "--scheduler", help="Address of a running Dask scheduler (tcp://host:8786) instead of a local "
                            "cluster.", rich_help_panel=_RUN)] = None,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Write the results as JSON here.",
                                             rich_help_panel=_RUN)] = None,
    progress: Annotated[bool, typer.Option("--progress/--no-progress", help="Show a progress bar.",
                                           rich_help_panel=_RUN)] = True,
) -> None:
    """Power of a planned study by simulation, or the number of patients for a target power.

    Give one of --or (lesion factor, GEE with patients as clusters), --hr (patient factor, Cox) or --preset
    (whole simulated cohorts). Prints power with its Monte Carlo SE and 95% CI; --out writes JSON.
    """
    from rich.console import Console

    console = Console(highlight=False)
    err = Console(stderr=True, highlight=False)
    try:
        study = _study(odds_ratio, hazard_ratio, preset, patients, alpha, baseline_risk, prevalence,
                       lesions_mean, lesions_dist, lesions_dispersion, icc, patient_sd, factor_icc,
                       effect_scale, small_sample, median_months, weibull_shape, accrual_months,
                       followup_months, dropout_per_year, set_, config)
        n_workers = workers if workers is not None else _auto_workers(
            study, replicates, target_power is not None, scheduler)
        if scheduler is not None or n_workers > 0:
            from pofa.cli.extras import require

            require("cluster", command="pofa power --workers/--scheduler")
        from pofa.power.dask_runner import ChunkRunner
        from pofa.power.power import power, sample_size

        console.print(f"Planned study: {study.describe()}", markup=False)
        with ChunkRunner(n_workers, scheduler, progress) as runner:
            console.print(f"{replicates} replicates per N, seed {seed}, chunks of {chunk_size}; "
                          f"running {runner.description}.", markup=False)
            if target_power is None:
                res: PowerResult | SampleSizeResult = power(
                    study, replicates=replicates, seed=seed, chunk_size=chunk_size, runner=runner)
            else:
                res = sample_size(study, target_power, test=test, n_min=min_patients, n_max=max_patients,
                                  n_start=patients, step=step, replicates=replicates, seed=seed,
                                  chunk_size=chunk_size, runner=runner)
        _print(console, res)
        if out is not None:
            _write(out, res)
            console.print(f"Wrote {out}", markup=False)
    except PofaError as exc:
        from rich.text import Text

        err.print(Text.assemble(("error: ", "bold red"), error_message(exc)))
        raise typer.Exit(2) from None


# --------------------------------------------------------------------------------------------------------

def _study(odds_ratio: float | None, hazard_ratio: float | None, preset: str | None, patients: int,
           alpha: float, baseline_risk: float | None, prevalence: float | None, lesions_mean: float | None,
           lesions_dist: _Dist, lesions_dispersion: float | None, icc: float | None, patient_sd: float | None,
           factor_icc: float | None, effect_scale: _Scale, small_sample: bool, median_months: float | None,
           weibull_shape: float | None, accrual_months: float | None, followup_months: float | None,
           dropout_per_year: float | None, set_: list[str] | None, config: Path | None) -> PlannedStudy:
    from pofa.power.design import (
        LesionDistribution,
        LesionOutcome,
        PlannedStudy,
        SimulatorOutcome,
        SurvivalOutcome,
        sd_from_icc,
    )

    given = [name for name, v in (("--or", odds_ratio), ("--hr", hazard_ratio), ("--preset", preset))
             if v is not None]
    if len(given) != 1:
        raise SettingsError("give exactly one of --or (lesion factor), --hr (patient factor) or --preset "
                            f"(simulated cohorts); got {', '.join(given) if given else 'none'}")

    def refuse(kind: str, **opts: Any) -> None:
        bad = [k for k, v in opts.items() if v not in (None, False, [])]
        if bad:
            raise SettingsError(f"{', '.join(bad)} do(es) not apply to {kind}; leave it out")

    kw: dict[str, Any]
    if odds_ratio is not None:
        refuse("--or", **{"--median-months": median_months, "--weibull-shape": weibull_shape,
                          "--accrual-months": accrual_months, "--followup-months": followup_months,
                          "--dropout-per-year": dropout_per_year, "--set": set_, "--config": config})
        if icc is not None and patient_sd is not None:
            raise SettingsError("give --icc or --patient-sd, not both (they say the same thing)")
        kw = {"odds_ratio": odds_ratio, "lesions_distribution": LesionDistribution(lesions_dist.value),
              "effect_scale": effect_scale.value, "small_sample": small_sample}
        for name, v in (("baseline_risk", baseline_risk), ("prevalence", prevalence),
                        ("lesions_mean", lesions_mean), ("lesions_dispersion", lesions_dispersion),
                        ("factor_icc", factor_icc)):
            if v is not None:
                kw[name] = v
        if icc is not None:
            kw["patient_sd"] = sd_from_icc(icc)
        elif patient_sd is not None:
            kw["patient_sd"] = patient_sd
        return PlannedStudy(patients, LesionOutcome(**kw), alpha)
    lesion_opts = {"--baseline-risk": baseline_risk, "--lesions-mean": lesions_mean,
                   "--lesions-dispersion": lesions_dispersion, "--icc": icc, "--patient-sd": patient_sd,
                   "--factor-icc": factor_icc}
    if hazard_ratio is not None:
        refuse("--hr", **lesion_opts, **{"--small-sample": small_sample, "--set": set_, "--config": config})
        kw = {"hazard_ratio": hazard_ratio}
        for name, v in (("prevalence", prevalence), ("median_months", median_months),
                        ("weibull_shape", weibull_shape), ("accrual_months", accrual_months),
                        ("followup_months", followup_months), ("dropout_per_year", dropout_per_year)):
            if v is not None:
                kw[name] = v
        return PlannedStudy(patients, SurvivalOutcome(**kw), alpha)
    refuse("--preset (set simulator parameters with --set or --config)", **lesion_opts,
           **{"--prevalence": prevalence, "--median-months": median_months, "--weibull-shape": weibull_shape,
              "--accrual-months": accrual_months, "--followup-months": followup_months,
              "--dropout-per-year": dropout_per_year})
    from pofa.simulate.params import load_params

    assert preset is not None
    params = load_params(preset, config=config, assignments=set_ or ())
    return PlannedStudy(patients, SimulatorOutcome(params, preset, small_sample), alpha)


def _auto_workers(study: PlannedStudy, replicates: int, search: bool, scheduler: str | None) -> int:
    """In this process for runs of a few seconds; otherwise a local cluster on every core.

    Cost per replicate measured on this project's 2-core machine: a GEE fit about 0.25 ms + 1.2 us per lesion
    (twice that with --small-sample), a Cox fit about 1.4 ms.
    """
    from pofa.cli.extras import available
    from pofa.power.dask_runner import default_workers
    from pofa.power.design import LesionOutcome, SurvivalOutcome

    if scheduler is not None or not available("cluster"):
        return 0
    cores = default_workers()
    if cores < 2:
        return 0
    if search:
        return cores
    o = study.outcome
    n = study.n_patients
    if isinstance(o, SurvivalOutcome):
        per = 1.4e-3 + 2e-6 * n
    elif isinstance(o, LesionOutcome):
        per = (0.25e-3 + 1.2e-6 * n * o.lesions_mean) * (2.0 if o.small_sample else 1.0)
    else:
        per = 1.5e-3 + 3 * (0.25e-3 + 1.2e-6 * n * 7.4) + 3e-5 * n
    return cores if per * replicates > 8.0 else 0


def _fmt_ci(lo: float, hi: float) -> str:
    return f"{lo:.3f}-{hi:.3f}"


def _fmt(x: float | None, spec: str = ".3g") -> str:
    return "-" if x is None or not math.isfinite(x) else format(x, spec)


def _power_table(title: str, results: list[PowerResult], test: int | None = None) -> Any:
    """Power rows: every test of each result, or only test ``test`` (then the test is in the title)."""
    from rich.table import Table
    from rich.text import Text

    t = Table(title=Text(title), title_justify="left")
    if test is None:
        t.add_column("test", ratio=1)
    for col in ("N", "power", "MC SE", "95% CI", "not est.", "mean est.", "true"):
        t.add_column(col, justify="right", no_wrap=True)
    for r in results:
        for j, tp in enumerate(r.tests):
            if test is not None and j != test:
                continue
            cells = [str(r.n_patients), f"{tp.power:.3f}", f"{tp.mc_se:.3f}", _fmt_ci(tp.ci_low, tp.ci_high),
                     str(tp.n_not_estimable), _fmt(tp.mean_estimate), _fmt(tp.true_effect)]
            t.add_row(*([Text(tp.test)] if test is None else []), *cells)
    return t


def _print(console: Console, res: PowerResult | SampleSizeResult) -> None:
    from pofa.power.power import PowerResult

    if isinstance(res, PowerResult):
        title = f"Power by simulation ({res.n_replicates} replicates, {res.elapsed_s:.1f} s)"
        console.print(_power_table(title, [res]))
        console.print("Estimates are exp(mean log OR/HR) over estimable replicates; the true effect is the "
                      "population-averaged OR (lesion model) or the HR.", markup=False)
        return
    idx = next(i for i, tp in enumerate(res.points[0].tests) if tp.test == res.test)
    console.print(_power_table(f"Sample-size search: {res.test}, target power {res.target_power:g}",
                               list(res.points), test=idx))
    if res.n_patients is None or res.at_n is None:
        console.print(f"Not reached: even {res.n_max} patients give power below {res.target_power:g} "
                      "(raise --max-patients, or the effect is too small).", markup=False)
        return
    tp = res.at_n.tests[idx]
    msg = (f"Smallest number of patients reaching power {res.target_power:g}: {res.n_patients} "
           f"(simulated power {tp.power:.3f}, MC SE {tp.mc_se:.3f}, 95% CI {_fmt_ci(tp.ci_low, tp.ci_high)})")
    if res.below is not None:
        b = res.below.tests[idx]
        msg += f"; {res.below.n_patients} patients: {b.power:.3f}"
    console.print(msg + ".", markup=False)
    if res.crossing_n is not None and res.crossing_ci is not None:
        lo, hi = res.crossing_ci
        first = res.points[0].n_patients
        lo_txt = f"<= {lo:.0f}" if lo <= first else f"{lo:.1f}"
        hi_txt = f"more than {res.points[-1].n_patients}" if math.isinf(hi) else f"{hi:.1f}"
        console.print(f"Monte Carlo uncertainty: the simulated power curve crosses {res.target_power:g} at "
                      f"{res.crossing_n:.1f} patients (95% bootstrap interval {lo_txt} to {hi_txt}).",
                      markup=False)


def _write(path: Path, res: PowerResult | SampleSizeResult) -> None:
    import importlib.metadata as md
    import json

    from pofa import __version__
    from pofa.atomic import write_text
    from pofa.power.power import PowerResult

    versions = {"pofa": __version__}
    for pkg in ("numpy", "scipy", "statsmodels", "dask", "distributed"):
        try:
            versions[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            versions[pkg] = "not installed"
    body = {"tool": "pofa power", "mode": "power" if isinstance(res, PowerResult) else "sample-size",
            "versions": versions, "result": res.to_dict()}
    try:
        write_text(Path(path), json.dumps(body, indent=2, allow_nan=False) + "\n")
    except OSError as exc:
        raise PofaError(f"cannot write {path}: {exc.strerror}; choose another --out") from None

