# Reference values of pofa.stats.radiotherapy (tests/test_stats_radiotherapy.py).
# Run from this folder: Rscript reference.R   (R >= 4.0 with survival, geepack, jsonlite)
# Writes lesions.csv and patients.csv (a synthetic study, fixed seed) and reference.json.
suppressPackageStartupMessages({library(survival); library(geepack); library(jsonlite)})
set.seed(17)
n_pat <- 80
k <- sample(1:5, n_pat, replace = TRUE)
pid <- rep(sprintf("P%03d", seq_len(n_pat)), k)
lid <- unlist(lapply(k, function(m) sprintf("L%d", seq_len(m))))
n <- length(pid)
u <- rnorm(n_pat, 0, 0.7)[match(pid, sprintf("P%03d", seq_len(n_pat)))]
rt <- rbinom(n, 1, 0.35)
bulky <- rbinom(n, 1, 0.3); suv10 <- rbinom(n, 1, 0.4); extranodal <- rbinom(n, 1, 0.3)
courses <- matrix(c(20, 5, 30, 10, 24, 12, 36, 18, 20, 10, 8, 2, 40, 20, 30, 15), ncol = 2, byrow = TRUE)
ci <- sample(seq_len(nrow(courses)), n, replace = TRUE)
dose <- ifelse(rt == 1, courses[ci, 1], NA); fx <- ifelse(rt == 1, courses[ci, 2], NA)
eqd2 <- dose * (dose / fx + 10) / 12
lp <- -0.9 + 1.1 * bulky + 0.5 * suv10 + 0.3 * extranodal - 1.0 * rt + u -
  ifelse(rt == 1, 0.04 * (eqd2 - 25), 0)
lf <- rbinom(n, 1, plogis(lp))
les <- data.frame(patient_id = pid, lesion_id = lid, local_failure = lf,
                  bridging_rt = ifelse(rt == 1, "yes", "no"), diameter_cm = ifelse(bulky == 1, 6.5, 3.0),
                  suvmax = ifelse(suv10 == 1, 14.0, 6.0), extranodal = ifelse(extranodal == 1, "yes", "no"),
                  rt_dose_gy = dose, rt_fractions = fx)
write.csv(les, "lesions.csv", row.names = FALSE, na = "")
pat_ids <- sprintf("P%03d", seq_len(n_pat))
prt <- as.integer(tapply(rt, factor(pid, levels = pat_ids), max))
t_ev <- rexp(n_pat, 0.08 * exp(-0.6 * prt)); t_c <- runif(n_pat, 3, 36)
pat <- data.frame(patient_id = pat_ids, pfs_months = round(pmin(t_ev, t_c), 3),
                  pfs_event = as.integer(t_ev <= t_c), any_rt = prt)
write.csv(pat, "patients.csv", row.names = FALSE)

d <- data.frame(pid = pid, lf = lf, rt = rt, bulky = bulky, suv10 = suv10, extranodal = extranodal,
                eqd2 = eqd2)
fit_pair <- function(formula, data) {
  # both run to convergence (R's defaults stop at 1e-8 and 1e-4, short of the 1e-6 the tests check)
  g <- summary(glm(formula, family = binomial, data = data,
                   control = glm.control(epsilon = 1e-14, maxit = 100)))$coefficients
  data$cluster <- factor(data$pid, levels = unique(data$pid))  # rows are sorted by patient
  e <- summary(geeglm(formula, id = cluster, data = data, family = binomial, corstr = "exchangeable",
                      control = geese.control(epsilon = 1e-12, maxit = 200)))$coefficients
  list(glm = list(coef = unname(g[2, 1]), se = unname(g[2, 2]), p = unname(g[2, 4])),
       gee = list(coef = unname(e[2, 1]), se = unname(e[2, 2]), p = unname(e[2, 4])))
}
out <- list()
out$rt_unadjusted <- fit_pair(lf ~ rt, d)
out$rt_adjusted <- fit_pair(lf ~ rt + bulky + suv10 + extranodal, d)
dd <- d[d$rt == 1, ]
out$eqd2 <- fit_pair(lf ~ eqd2, dd)
out$binom <- lapply(list(c(9, 53), c(0, 10), c(10, 10), c(3, 7), c(sum(dd$lf), nrow(dd))), function(x) {
  b <- binom.test(x[1], x[2]); list(x = x[1], n = x[2], low = b$conf.int[1], high = b$conf.int[2])})
sd <- survdiff(Surv(pfs_months, pfs_event) ~ any_rt, data = pat)
cx <- summary(coxph(Surv(pfs_months, pfs_event) ~ any_rt, data = pat))
km <- summary(survfit(Surv(pfs_months, pfs_event) ~ any_rt, data = pat))$table
out$pfs <- list(chisq = sd$chisq, p = pchisq(sd$chisq, 1, lower.tail = FALSE),
                hr = unname(cx$conf.int[1, 1]), hr_low = unname(cx$conf.int[1, 3]),
                hr_high = unname(cx$conf.int[1, 4]), hr_p = unname(cx$coefficients[1, 5]),
                median_rt = unname(km["any_rt=1", "median"]), median_no_rt = unname(km["any_rt=0", "median"]),
                events_rt = sum(pat$pfs_event[pat$any_rt == 1]))
writeLines(toJSON(out, digits = NA, auto_unbox = TRUE, pretty = TRUE), "reference.json")
