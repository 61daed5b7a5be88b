# Reference values at scale: every lesion-model and patient-survival figure of pofa's results.json, computed
# in R from the study folders that make_cohorts.py writes (63, 1,000, 5,000 and 20,000 patients).
#
#   python3 make_cohorts.py COHORTS && Rscript reference.R COHORTS     # -> reference_n00063.json, ...
#
# R derives the outcomes from the study tables itself, by the rules of docs/patterns.md, not from pofa's
# analysed tables:
#   * end of follow-up = last_followup_date (the generator dates it at the death for those who died);
#   * PFS: event at progression, else at death, else censored at the end; OS: death, else censored;
#     months = days / 30.4375;
#   * first-progression window: failure rows with scan_date in [progression_date, progression_date + 30];
#     a lesion named by a row of the window: local_failure 1; a patient who progressed with rows in the
#     window: the other lesions 0; no progression: 0; progression without rows in the window: NA (left out);
#   * lesion factors diameter_cm >= 5, suvmax >= 10, extranodal; patient term "any diameter_cm >= 5" over all
#     of the patient's lesions (pofa's defaults).
# Models: glm(binomial) run to the exact root (epsilon 1e-14; SEs from the information at the final
# coefficients) and with its default control; geeglm
# (exchangeable, rows sorted by patient) to the exact root (epsilon 1e-12) and with its default control;
# survfit (log-log) medians, CIs and 6/12/24-month landmarks of PFS and OS, reverse-KM median follow-up;
# coxph (Efron) HR, Wald CI and p, survdiff p and cox.zph global p for PFS and OS.
# R 4.2.2, survival 3.5-3, geepack 1.3.9, jsonlite.

suppressMessages({library(survival); library(geepack); library(jsonlite)})
args <- commandArgs(trailingOnly = TRUE)
root <- if (length(args) >= 1) args[1] else "cohorts"
sizes <- if (length(args) >= 2) as.integer(args[-1]) else c(63L, 1000L, 5000L, 20000L)
z <- qnorm(0.975)
LM <- c(6, 12, 24)

wald <- function(b, se) list(or = unname(exp(b)), ci_low = unname(exp(b - z * se)),
                             ci_high = unname(exp(b + z * se)), p = unname(2 * pnorm(-abs(b / se))))

one <- function(n) {
  dir <- file.path(root, sprintf("n%05d", n))
  rd <- function(f) read.csv(file.path(dir, f), stringsAsFactors = FALSE, na.strings = "",
                             colClasses = c(patient_id = "character"))
  pat <- rd("patients.csv"); les <- rd("lesions.csv"); fai <- rd("failures.csv")
  les$lesion_id <- as.character(les$lesion_id)
  for (v in c("index_date", "last_followup_date", "progression_date", "death_date"))
    pat[[v]] <- as.Date(pat[[v]])
  fai$scan_date <- as.Date(fai$scan_date)
  month <- function(a, b) as.numeric(b - a) / 30.4375
  prog <- pat$progression_date; death <- pat$death_date; end <- pat$last_followup_date
  pfs_end <- end; pfs_end[!is.na(prog)] <- prog[!is.na(prog)]
  pat$pfs_months <- month(pat$index_date, pfs_end)
  pat$pfs_event <- as.integer(!is.na(prog) | !is.na(death))
  pat$os_months <- month(pat$index_date, end)
  pat$os_event <- as.integer(!is.na(death))

  # lesion outcome at first progression
  fai$prog <- prog[match(fai$patient_id, pat$patient_id)]
  win <- fai[!is.na(fai$prog) & fai$scan_date >= fai$prog & fai$scan_date <= fai$prog + 30, ]
  named <- paste(win$patient_id, win$baseline_lesion_id)[!is.na(win$baseline_lesion_id)]
  lp <- prog[match(les$patient_id, pat$patient_id)]
  has_rows <- les$patient_id %in% win$patient_id
  les$local_failure <- ifelse(is.na(lp), 0L,
                              ifelse(!has_rows, NA_integer_,
                                     as.integer(paste(les$patient_id, les$lesion_id) %in% named)))
  les$x1 <- as.integer(les$diameter_cm >= 5)
  les$x2 <- as.integer(les$suvmax >= 10)
  les$x3 <- as.integer(les$extranodal == "yes")
  pat$bulky <- as.integer(pat$patient_id %in% les$patient_id[les$diameter_cm >= 5])

  k <- les[!is.na(les$local_failure), ]
  k <- k[order(k$patient_id, method = "radix"), ]
  k$id <- match(k$patient_id, unique(k$patient_id))
  terms <- c(x1 = "diameter_cm>=5", x2 = "suvmax>=10", x3 = "extranodal")
  models <- list()
  for (f in c("x1", "x2", "x3", "x1 + x2 + x3")) {
    fo <- as.formula(paste("local_failure ~", f))
    ge <- glm(fo, family = binomial, data = k, control = glm.control(epsilon = 1e-14, maxit = 100))
    gd <- glm(fo, family = binomial, data = k)
    ee <- geeglm(fo, family = binomial, data = k, id = id, corstr = "exchangeable",
                 control = geese.control(epsilon = 1e-12, maxit = 100))
    ed <- geeglm(fo, family = binomial, data = k, id = id, corstr = "exchangeable")
    # glm's summary takes the SEs from the QR of its last IRLS step, whose weights are those of the
    # previous iterate: near the root the deviance no longer changes (it is flat there), so even
    # epsilon = 1e-14 can stop one step early and leave SEs ~1e-7 off. The SEs at the root are the
    # inverse information at the final coefficients:
    X <- model.matrix(ge); w <- fitted(ge) * (1 - fitted(ge))
    vroot <- solve(crossprod(X * sqrt(w)))
    sg <- cbind(coef(ge), sqrt(diag(vroot)))[-1, , drop = FALSE]
    sd <- summary(gd)$coefficients[-1, , drop = FALSE]
    se <- summary(ee)$coefficients[-1, , drop = FALSE]
    sed <- summary(ed)$coefficients[-1, , drop = FALSE]
    models[[length(models) + 1]] <- list(
      model = if (f == "x1 + x2 + x3") "multivariable" else "univariable",
      terms = unname(terms[strsplit(f, " \\+ ")[[1]]]),
      logistic = wald(sg[, 1], sg[, 2]), logistic_default = wald(sd[, 1], sd[, 2]),
      glm_default = list(converged = gd$converged, iter = gd$iter),
      gee = wald(se[, "Estimate"], se[, "Std.err"]), gee_default = wald(sed[, "Estimate"], sed[, "Std.err"]),
      n_lesions = nrow(k), n_patients = length(unique(k$patient_id)))
  }

  km <- function(tt, ev) {
    f <- survfit(Surv(tt, ev) ~ 1, conf.type = "log-log")
    q <- quantile(f, 0.5, conf.int = TRUE)
    s <- summary(f, times = LM, extend = TRUE)
    list(n = length(tt), events = sum(ev), median = unname(q$quantile), ci_low = unname(q$lower),
         ci_high = unname(q$upper), landmark_months = LM, surv = s$surv, lower = s$lower, upper = s$upper)
  }
  fu <- survfit(Surv(pat$os_months, 1 - pat$os_event) ~ 1, conf.type = "log-log")
  fq <- quantile(fu, 0.5, conf.int = TRUE)
  cox <- lapply(c("pfs", "os"), function(ep) {
    tt <- pat[[paste0(ep, "_months")]]; ev <- pat[[paste0(ep, "_event")]]
    fit <- coxph(Surv(tt, ev) ~ bulky, data = pat, ties = "efron",
                 control = coxph.control(eps = 1e-11, iter.max = 100))
    fd <- coxph(Surv(tt, ev) ~ bulky, data = pat, ties = "efron")
    b <- coef(fit); s <- sqrt(diag(fit$var))
    lr <- survdiff(Surv(tt, ev) ~ bulky, data = pat)
    c(list(endpoint = ep, n = length(tt), n_with = sum(pat$bulky)), wald(b, s),
      list(hr_default = unname(exp(coef(fd))), iter_default = fd$iter,
           logrank_p = pchisq(lr$chisq, 1, lower.tail = FALSE),
           zph_chisq = unname(cox.zph(fit)$table["GLOBAL", "chisq"]),
           zph_p = unname(cox.zph(fit)$table["GLOBAL", "p"])))
  })
  list(n_patients = nrow(pat), n_lesions = nrow(les), n_lesions_known = nrow(k),
       n_local_failures = sum(k$local_failure), n_failure_rows = nrow(fai),
       lesion_models = models,
       survival = list(pfs = km(pat$pfs_months, pat$pfs_event), os = km(pat$os_months, pat$os_event)),
       followup = list(median = unname(fq$quantile), ci_low = unname(fq$lower), ci_high = unname(fq$upper)),
       cox = cox,
       versions = list(R = R.version.string, survival = as.character(packageVersion("survival")),
                       geepack = as.character(packageVersion("geepack"))))
}

for (n in sizes) {
  out <- one(n)
  writeLines(toJSON(out, digits = NA, auto_unbox = TRUE, na = "null"),
             sprintf("reference_n%05d.json", n))
  cat("n =", n, "done\n")
}
