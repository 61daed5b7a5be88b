# Reference values for a numeric patient term reported per declared unit step ([covariates.age] step = 10):
# the hazard ratio per 10 years of age, coxph(Surv(t, e) ~ I(age / 10), ties = "efron"), Wald CI and p, for PFS
# and OS, on the analysed pipeline study (tests/reference/pipeline/analysed/patients.csv, as pofa writes it).
# Run from this folder: Rscript make_reference.R   (writes reference.json)
# R 4.2.2, survival 3.5-3, jsonlite 1.8.4 (Debian packages).
suppressMessages({
  library(survival)
  library(jsonlite)
})
pat <- read.csv(file.path("..", "pipeline", "analysed", "patients.csv"), stringsAsFactors = FALSE)
z <- qnorm(0.975)
rows <- list()
for (ep in c("pfs", "os")) {
  tt <- pat[[paste0(ep, "_months")]]
  ev <- as.integer(pat[[paste0(ep, "_event")]] %in% c(TRUE, "true", "True", 1))
  fit <- coxph(Surv(tt, ev) ~ I(age / 10), data = pat, ties = "efron")
  b <- unname(coef(fit))
  se <- unname(sqrt(diag(vcov(fit))))
  rows[[ep]] <- list(endpoint = ep, term = "age", step = 10, hr = exp(b), ci_low = exp(b - z * se),
                     ci_high = exp(b + z * se), p = 2 * pnorm(-abs(b / se)), n = fit$n)
}
names(rows) <- NULL
# cox.zph on a fit whose events all fall at one time: R refuses ("system is exactly singular"); pofa reports
# the PH check as not estimable. Data: t = (1, 2, 3, 3, 3, 6, 7, 8, 9, 10), events at t = 3 only.
d <- data.frame(t = c(1, 2, 3, 3, 3, 6, 7, 8, 9, 10), e = c(0, 0, 1, 1, 1, 0, 0, 0, 0, 0),
                x = c(1, 0, 1, 0, 1, 0, 1, 0, 1, 1))
zfit <- coxph(Surv(t, e) ~ x, data = d, ties = "efron")
zph <- tryCatch(cox.zph(zfit), error = function(err) conditionMessage(err))
out <- list(
  r_version = R.version.string,
  packages = sapply(c("survival", "jsonlite"), function(p) as.character(packageVersion(p)), simplify = FALSE),
  per_10_years = rows,
  zph_singular = list(t = d$t, e = d$e, x = d$x, hr = exp(unname(coef(zfit))),
                      r_error = if (is.character(zph)) zph else "")
)
writeLines(toJSON(out, auto_unbox = TRUE, digits = NA, pretty = TRUE), "reference.json")
