# Reference values for pofa.stats.cox_cluster: coxph(Surv(t, e) ~ x + cluster(patient)), Efron ties
# (R's default) and Breslow, on a simulated lesion-level data set (lesions clustered in patients, tied
# scan days) and on survival's lung data clustered by institution.
# Run: Rscript make_reference.R   (writes lesions.csv, lung.csv and reference.json here)
library(survival)
library(jsonlite)
set.seed(20261206)
n_pat <- 45
k <- sample(1:5, n_pat, replace = TRUE)
patient <- rep(sprintf("P%02d", seq_len(n_pat)), k)
frailty <- rep(rnorm(n_pat, 0, 0.6), k)
n <- length(patient)
diameter_cm <- round(rlnorm(n, log(3), 0.5), 1)
suvmax <- round(rlnorm(n, log(10), 0.4), 1)
extranodal <- rbinom(n, 1, 0.35)
lp <- 0.25 * diameter_cm + 0.04 * suvmax + 0.5 * extranodal + frailty
scan_days <- c(30, 90, 180, 270, 365)
raw <- rexp(n, exp(lp - 6.5))
event_day <- sapply(raw, function(v) { s <- scan_days[scan_days >= v]; if (length(s)) s[1] else NA })
last_scan <- sample(scan_days[2:5], n, replace = TRUE, prob = c(0.15, 0.25, 0.25, 0.35))
event <- as.integer(!is.na(event_day) & event_day <= last_scan)
time <- ifelse(event == 1, event_day, last_scan)
lesions <- data.frame(patient, time, event, diameter_cm, suvmax, extranodal)
write.csv(lesions, "lesions.csv", row.names = FALSE)
lung2 <- na.omit(lung[, c("time", "status", "age", "sex", "inst")])
lung2$status <- lung2$status - 1
write.csv(lung2, "lung.csv", row.names = FALSE)

out <- function(fit) {
  s <- summary(fit)$coefficients
  list(term = rownames(s), coef = unname(s[, "coef"]), se = unname(s[, "se(coef)"]),
       robust_se = unname(s[, "robust se"]), p = unname(s[, "Pr(>|z|)"]),
       ci_low = unname(summary(fit)$conf.int[, "lower .95"]),
       ci_high = unname(summary(fit)$conf.int[, "upper .95"]),
       dfbeta_first = unname(residuals(fit, type = "dfbeta")[1, ]),
       score_first = unname(residuals(fit, type = "score")[1, ]))
}
ref <- list(
  survival_version = as.character(packageVersion("survival")),
  lesions_efron = out(coxph(Surv(time, event) ~ diameter_cm + suvmax + extranodal + cluster(patient),
                            data = lesions)),
  lesions_breslow = out(coxph(Surv(time, event) ~ diameter_cm + suvmax + extranodal + cluster(patient),
                              data = lesions, ties = "breslow")),
  lung_efron = out(coxph(Surv(time, status) ~ age + sex + cluster(inst), data = lung2))
)
write(toJSON(ref, digits = NA, auto_unbox = TRUE, pretty = TRUE), "reference.json")
