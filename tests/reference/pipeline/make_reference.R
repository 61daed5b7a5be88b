# Reference values for the statistics of `pofa analyze` on the committed simulated study (study/), end to end.
# Run from this folder: Rscript make_reference.R  -> reference.json
# R 4.2.2, survival 3.5-3, geepack 1.3.9, cmprsk 2.2-11, maxstat 0.7-25, jsonlite 1.8.4 (Debian packages).
#
# Input: analysed/patients.csv and analysed/lesions.csv, the tables `pofa analyze --show-dates` writes for
# study/ (made by make_study.py). R recomputes every statistic of results.json from those tables with the R
# call each number is documented to match (docs/statistics.md); tests/test_pipeline_vs_r.py compares.
#
#   lesion_models      glm(binomial) and geepack::geeglm(binomial, corstr = "exchangeable"), univariable and
#                      multivariable, on lesions with a known outcome (local_failure not blank); OR = exp(coef),
#                      Wald CI exp(coef -+ qnorm(0.975) se), Wald p. Fitted twice: with the default control
#                      (what a user runs) and with a tight one (glm epsilon 1e-14, geese epsilon 1e-12) that
#                      gives the exact root.
#   survival           survfit(Surv(months, event) ~ 1, conf.type = "log-log"): quantile(0.5) with CI and
#                      summary(times = c(6, 12, 24)).
#   followup           reverse KM: survfit(Surv(os_months, 1 - os_event) ~ 1, conf.type = "log-log") median.
#   patient_models     coxph(ties = "efron") HR, Wald CI and p for any lesion >= 5 cm; survdiff log-rank p;
#                      cox.zph(fit) GLOBAL chisq and p. With the patient terms "any diameter_cm>=5" and "age"
#                      (patient_models_with_age): coxph(~ age) and the multivariable coxph(~ bulky + age).
#   competing_risks    cmprsk::cuminc(fp_months, fp_status) overall and by any lesion >= 5 cm (Gray's test);
#                      cuminc(lf_months, lf_status) of lesions overall and by each lesion factor;
#                      timepoints(fit, c(6, 12, 24)) est and var; CI on the log(-log) scale from est and var.
#   cutpoints          maxstat::maxstat.test(Surv(pfs_months, pfs_event) ~ x, smethod = "LogRank",
#                      pmethod = "Lau92" / "Lau94") for max_diameter_cm and max_suvmax.
suppressMessages({
  library(survival); library(geepack); library(cmprsk); library(maxstat); library(jsonlite)
})

pat <- read.csv(file.path("analysed", "patients.csv"), stringsAsFactors = FALSE,
                colClasses = c(patient_id = "character"))
les <- read.csv(file.path("analysed", "lesions.csv"), stringsAsFactors = FALSE,
                colClasses = c(patient_id = "character", lesion_id = "character"))
# pofa writes yes/no columns as true/false, which R 4.2's read.csv keeps as text
as_flag <- function(x) {
  if (is.logical(x)) return(x)
  stopifnot(all(x %in% c("true", "false")))
  x == "true"
}
les$extranodal <- as_flag(les$extranodal)
pat$any_diameter_cm_ge_5 <- as_flag(pat$any_diameter_cm_ge_5)
z <- qnorm(0.975)
LANDMARKS <- c(6, 12, 24)

# ---------------------------------------------------------------------------------------------------------
# lesion level
known <- les[!is.na(les$local_failure), ]
# geeglm needs the lesions of a patient in consecutive rows: sort by patient (radix sort is stable)
known <- known[order(known$patient_id, method = "radix"), ]
known$id <- match(known$patient_id, unique(known$patient_id))
known$x_diameter <- as.integer(known$diameter_cm >= 5)
known$x_suvmax <- as.integer(known$suvmax >= 10)
known$x_extranodal <- as.integer(known$extranodal)
TERMS <- c(x_diameter = "diameter_cm>=5", x_suvmax = "suvmax>=10", x_extranodal = "extranodal")

wald_rows <- function(model, method, control, table, est_col, se_col, n_lesions, n_patients) {
  # table: summary(fit)$coefficients (a matrix for glm, a data frame for geeglm); the intercept is not reported
  table <- as.data.frame(table)
  est <- setNames(table[[est_col]], rownames(table))[-1]
  se <- setNames(table[[se_col]], rownames(table))[-1]
  lapply(seq_along(est), function(j) list(
    model = model, method = method, control = control, term = unname(TERMS[names(est)[j]]),
    coef = unname(est[j]), se = unname(se[j]), or = exp(unname(est[j])),
    ci_low = exp(unname(est[j] - z * se[j])), ci_high = exp(unname(est[j] + z * se[j])),
    p = 2 * pnorm(-abs(unname(est[j] / se[j]))), n_lesions = n_lesions, n_patients = n_patients))
}

lesion_rows <- list()
alphas <- list()
specs <- c(lapply(names(TERMS), function(v) list(model = "univariable", terms = v)),
           list(list(model = "multivariable", terms = names(TERMS))))
for (s in specs) {
  f <- as.formula(paste("local_failure ~", paste(s$terms, collapse = " + ")))
  for (control in c("default", "tight")) {
    g <- if (control == "default") glm(f, family = binomial, data = known) else
      glm(f, family = binomial, data = known, control = glm.control(epsilon = 1e-14, maxit = 100))
    cf <- summary(g)$coefficients
    lesion_rows <- c(lesion_rows, wald_rows(s$model, "logistic", control, cf, "Estimate", "Std. Error",
                                            nrow(known), length(unique(known$id))))
    e <- if (control == "default")
      geeglm(f, family = binomial, data = known, id = id, corstr = "exchangeable") else
      geeglm(f, family = binomial, data = known, id = id, corstr = "exchangeable",
             control = geese.control(epsilon = 1e-12, maxit = 100))
    ce <- summary(e)$coefficients
    lesion_rows <- c(lesion_rows, wald_rows(s$model, "gee", control, ce, "Estimate", "Std.err",
                                            nrow(known), length(unique(known$id))))
    alphas[[length(alphas) + 1]] <- list(model = s$model, terms = unname(TERMS[s$terms]), control = control,
                                         alpha = unname(e$geese$alpha), scale = unname(e$geese$gamma))
  }
}

# ---------------------------------------------------------------------------------------------------------
# survival, follow-up
km <- function(time, event) {
  f <- survfit(Surv(time, event) ~ 1, conf.type = "log-log")
  q <- quantile(f, probs = 0.5, conf.int = TRUE)
  s <- summary(f, times = LANDMARKS, extend = FALSE)  # landmarks beyond the last time are left out (NA)
  at <- match(LANDMARKS, s$time)
  list(n = length(time), events = sum(event), median_months = unname(q$quantile),
       ci_low = unname(q$lower), ci_high = unname(q$upper),
       landmarks = lapply(seq_along(LANDMARKS), function(i) list(
         months = LANDMARKS[i], survival = s$surv[at[i]], ci_low = s$lower[at[i]], ci_high = s$upper[at[i]])))
}
surv_out <- list(pfs = km(pat$pfs_months, pat$pfs_event), os = km(pat$os_months, pat$os_event))
rev_km <- survfit(Surv(pat$os_months, 1 - pat$os_event) ~ 1, conf.type = "log-log")
q <- quantile(rev_km, probs = 0.5, conf.int = TRUE)
followup <- list(median_months = unname(q$quantile), ci_low = unname(q$lower), ci_high = unname(q$upper))

# ---------------------------------------------------------------------------------------------------------
# patient level: any lesion >= 5 cm
pat$bulky <- as.integer(pat$any_diameter_cm_ge_5)
patient_rows <- list()
for (ep in c("pfs", "os")) {
  tt <- pat[[paste0(ep, "_months")]]; ev <- pat[[paste0(ep, "_event")]]
  fit <- coxph(Surv(tt, ev) ~ bulky, data = pat, ties = "efron")
  b <- unname(coef(fit)); se <- unname(sqrt(diag(fit$var)))
  lr <- survdiff(Surv(tt, ev) ~ bulky, data = pat)
  zph <- cox.zph(fit)
  patient_rows[[ep]] <- list(
    endpoint = ep, term = "any diameter_cm>=5", coef = b, se = se, hr = exp(b),
    ci_low = exp(b - z * se), ci_high = exp(b + z * se), p = 2 * pnorm(-abs(b / se)),
    logrank_chisq = lr$chisq, logrank_p = pchisq(lr$chisq, length(lr$n) - 1, lower.tail = FALSE),
    n_with = sum(pat$bulky == 1), n = fit$n, nevent = fit$nevent,
    zph_chisq = unname(zph$table["GLOBAL", "chisq"]), zph_df = unname(zph$table["GLOBAL", "df"]),
    zph_p = unname(zph$table["GLOBAL", "p"]))
}
names(patient_rows) <- NULL

# settings [risk_factors] patient = ["any diameter_cm>=5", "age"]: a covariate term (HR per year, no log-rank)
# and the multivariable model of both (patient_models_info.multivariable)
age_rows <- list(); multi_rows <- list()
for (ep in c("pfs", "os")) {
  tt <- pat[[paste0(ep, "_months")]]; ev <- pat[[paste0(ep, "_event")]]
  fit <- coxph(Surv(tt, ev) ~ age, data = pat, ties = "efron")
  b <- unname(coef(fit)); se <- unname(sqrt(diag(fit$var)))
  zph <- cox.zph(fit)
  age_rows[[ep]] <- list(endpoint = ep, term = "age", hr = exp(b), ci_low = exp(b - z * se),
                         ci_high = exp(b + z * se), p = 2 * pnorm(-abs(b / se)), n = fit$n,
                         zph_chisq = unname(zph$table["GLOBAL", "chisq"]), zph_p = unname(zph$table["GLOBAL", "p"]))
  fit <- coxph(Surv(tt, ev) ~ bulky + age, data = pat, ties = "efron")
  b <- unname(coef(fit)); se <- unname(sqrt(diag(fit$var)))
  multi_rows <- c(multi_rows, lapply(1:2, function(j) list(
    endpoint = ep, term = c("any diameter_cm>=5", "age")[j], hr = exp(b[j]), ci_low = exp(b[j] - z * se[j]),
    ci_high = exp(b[j] + z * se[j]), p = 2 * pnorm(-abs(b[j] / se[j])), n = fit$n)))
}
names(age_rows) <- NULL

# ---------------------------------------------------------------------------------------------------------
# competing risks
# CI on the log(-log) scale, as cmprsk-based reports (tidycmprsk, Pintilie 2006) and pofa:
# est^exp(-+ z se / (est log est)); cmprsk itself returns only est and var. NA where est is 0 or 1.
ci_loglog <- function(est, var) {
  k <- z * sqrt(var) / (est * log(est))
  lo <- est^exp(-k); hi <- est^exp(k)
  bad <- is.na(est) | est <= 0 | est >= 1
  lo[bad] <- NA; hi[bad] <- NA
  list(lower = lo, upper = hi)
}

cr_case <- function(time, cause, group = NULL) {
  fit <- if (is.null(group)) cuminc(time, cause, cencode = 0) else cuminc(time, cause, group, cencode = 0)
  g <- if (is.null(group)) rep("1", length(time)) else as.character(group)
  tp <- timepoints(fit, LANDMARKS)
  curves <- lapply(rownames(tp$est), function(nm) {
    parts <- strsplit(nm, " ")[[1]]  # "<group> <cause>"
    ci <- ci_loglog(tp$est[nm, ], tp$var[nm, ])
    list(name = nm, group = if (is.null(group)) NA else parts[1], cause = as.integer(parts[2]),
         n = sum(g == parts[1]), events = sum(g == parts[1] & cause == as.integer(parts[2])),
         months = LANDMARKS, est = unname(tp$est[nm, ]), var = unname(tp$var[nm, ]),
         ci_low = unname(ci$lower), ci_high = unname(ci$upper))
  })
  out <- list(n = length(time), curves = curves)
  if (!is.null(fit$Tests)) {
    out$tests <- lapply(rownames(fit$Tests), function(k) list(
      cause = as.integer(k), statistic = unname(fit$Tests[k, "stat"]), p = unname(fit$Tests[k, "pv"]),
      df = unname(fit$Tests[k, "df"])))
  }
  out
}

lk <- les[!is.na(les$lf_status) & !is.na(les$lf_months), ]
competing <- list(
  patients_overall = cr_case(pat$fp_months, pat$fp_status),
  patients_by_group = cr_case(pat$fp_months, pat$fp_status, pat$bulky),
  lesions_overall = cr_case(lk$lf_months, lk$lf_status),
  lesions_by_factor = list(
    list(term = "diameter_cm>=5", fit = cr_case(lk$lf_months, lk$lf_status, as.integer(lk$diameter_cm >= 5))),
    list(term = "suvmax>=10", fit = cr_case(lk$lf_months, lk$lf_status, as.integer(lk$suvmax >= 10))),
    list(term = "extranodal", fit = cr_case(lk$lf_months, lk$lf_status, as.integer(lk$extranodal)))))

# ---------------------------------------------------------------------------------------------------------
# cut-points (exploratory), PFS
cut_rows <- lapply(c("max_diameter_cm", "max_suvmax"), function(col) {
  d <- pat[!is.na(pat[[col]]), ]
  d$x <- d[[col]]
  m92 <- maxstat.test(Surv(pfs_months, pfs_event) ~ x, data = d, smethod = "LogRank", pmethod = "Lau92")
  m94 <- maxstat.test(Surv(pfs_months, pfs_event) ~ x, data = d, smethod = "LogRank", pmethod = "Lau94")
  list(feature = col, cutpoint = unname(m92$estimate), statistic = unname(m92$statistic),
       p_lau92 = m92$p.value, p_lau94 = m94$p.value, n = nrow(d), n_low = sum(d$x <= m92$estimate),
       n_high = sum(d$x > m92$estimate))
})

out <- list(
  r_version = R.version.string,
  packages = sapply(c("survival", "geepack", "cmprsk", "maxstat", "jsonlite"),
                    function(p) as.character(packageVersion(p)), simplify = FALSE),
  data = list(n_patients = nrow(pat), n_lesions = nrow(les), n_lesions_known = nrow(known),
              n_lesions_unknown_outcome = sum(is.na(les$local_failure)),
              n_patients_known = length(unique(known$patient_id))),
  lesion_models = lesion_rows, gee_working_correlation = alphas,
  survival = surv_out, followup = followup, patient_models = patient_rows,
  patient_models_with_age = list(univariable = age_rows, multivariable = multi_rows),
  competing_risks = competing, cutpoints = cut_rows)
writeLines(toJSON(out, digits = NA, auto_unbox = TRUE, na = "null", pretty = TRUE), "reference.json")
