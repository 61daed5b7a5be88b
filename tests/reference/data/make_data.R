# Writes the reference data sets used by pofa's statistics tests to CSV (run from this folder:
#   Rscript make_data.R). R 4.2.2, survival 3.5-3, maxstat 0.7-25 (Debian packages).
# lung, veteran, ovarian and mgus2 come from R's survival package (LGPL-2 | LGPL-3); hohnloser comes from
# the maxstat package (GPL-2 | GPL-3). ties_surv.csv and ties_cr.csv are simulated here (seeded) and are
# part of pofa's tests (BSD-3-Clause).
suppressMessages({library(survival); library(maxstat)})
w <- function(d, f) write.csv(d, f, row.names = FALSE, na = "")

w(survival::lung, "lung.csv")
w(survival::veteran, "veteran.csv")
w(survival::ovarian, "ovarian.csv")
m <- survival::mgus2
# competing risks as in survival's "compete" vignette: progression (1) vs death without progression (2)
m$etime <- ifelse(m$pstat == 0, m$futime, m$ptime)
m$event <- ifelse(m$pstat == 0, 2 * m$death, 1)
w(m[, c("id", "age", "sex", "hgb", "mspike", "etime", "event")], "mgus2.csv")
data(hohnloser, package = "maxstat")
w(hohnloser, "hohnloser.csv")

# Heavy ties and censoring: whole-month times 1..18 (so many deaths share a time), about 45% censored,
# three groups with different hazards, two covariates (binary, and a continuous one rounded to 1 decimal).
set.seed(20240611)
n <- 240
group <- sample(c("A", "B", "C"), n, replace = TRUE)
x1 <- rbinom(n, 1, 0.45)
x2 <- round(rnorm(n), 1)
rate <- 0.06 * exp(0.5 * x1 + 0.3 * x2 + ifelse(group == "B", 0.4, ifelse(group == "C", -0.3, 0)))
t_event <- rexp(n, rate)
t_cens <- runif(n, 2, 30)
time <- pmin(ceiling(pmin(t_event, t_cens)), 18)
status <- as.integer(t_event <= t_cens & ceiling(t_event) <= 18)
w(data.frame(id = seq_len(n), time = time, status = status, group = group, x1 = x1, x2 = x2), "ties_surv.csv")

# Competing risks with heavy ties: whole-month times 1..24, cause 1 (e.g. local failure) and cause 2
# (e.g. death without failure), censoring 0; three groups and two strata.
set.seed(20240612)
n <- 300
group <- sample(c("g1", "g2", "g3"), n, replace = TRUE)
stratum <- sample(c("s1", "s2"), n, replace = TRUE)
h1 <- 0.04 * ifelse(group == "g2", 1.8, ifelse(group == "g3", 0.8, 1))
h2 <- 0.025
t1 <- rexp(n, h1); t2 <- rexp(n, h2); tc <- runif(n, 3, 36)
tt <- pmin(t1, t2, tc)
cause <- ifelse(tc == tt, 0L, ifelse(t1 == tt, 1L, 2L))
time <- ceiling(tt)
cause[time > 24] <- 0L
time <- pmin(time, 24)
w(data.frame(id = seq_len(n), time = time, cause = cause, group = group, stratum = stratum), "ties_cr.csv")
