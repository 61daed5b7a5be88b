# Reference values for pofa.stats.survival (Kaplan-Meier, medians, landmarks, reverse-KM follow-up,
# numbers at risk, log-rank). Run from this folder: Rscript km_logrank.R  -> km_logrank.json
# R 4.2.2, survival 3.5-3, jsonlite 1.8.4 (Debian packages). Data: ../data/*.csv (see ../data/README.md).
suppressMessages({library(survival); library(jsonlite)})
DAYS_PER_MONTH <- 30.4375
rd <- function(f) read.csv(file.path("..", "data", f), stringsAsFactors = FALSE)

km_block <- function(time, event, conf.type) {
  f <- survfit(Surv(time, event) ~ 1, conf.type = conf.type)
  q <- quantile(f, probs = 0.5)
  lm <- summary(f, times = c(6, 12, 24), extend = TRUE)
  list(
    conf_type = conf.type,
    time = f$time, n_risk = f$n.risk, n_event = f$n.event, n_censor = f$n.censor,
    surv = f$surv,
    # summary.survfit's std.err is the Greenwood SE of S(t) (= S * fit$std.err)
    std_err = f$surv * f$std.err,
    lower = f$lower, upper = f$upper,
    median = unname(q$quantile), median_lower = unname(q$lower), median_upper = unname(q$upper),
    landmark_times = lm$time, landmark_surv = lm$surv, landmark_std_err = lm$std.err,
    landmark_lower = lm$lower, landmark_upper = lm$upper
  )
}

one_case <- function(name, spec, time, event, group = NULL, strata = NULL) {
  out <- list(name = name, spec = spec, n = length(time))
  curves <- function(tt, ee) {
    blocks <- lapply(c("log-log", "log", "plain"), function(ct) km_block(tt, ee, ct))
    rev_fit <- survfit(Surv(tt, 1 - ee) ~ 1, conf.type = "log-log")
    rq <- quantile(rev_fit, probs = 0.5)
    rev_fit_log <- survfit(Surv(tt, 1 - ee) ~ 1, conf.type = "log")
    rql <- quantile(rev_fit_log, probs = 0.5)
    at <- c(0, 3, 6, 12, 18, 24, 36, 1000)
    s <- survfit(Surv(tt, ee) ~ 1)
    nr <- sapply(at, function(a) sum(tt >= a))
    # cross-check the #{T >= t} convention against summary.survfit's n.risk (extend = TRUE)
    stopifnot(all(nr == summary(s, times = at, extend = TRUE)$n.risk))
    list(km = blocks,
         followup_loglog = c(unname(rq$quantile), unname(rq$lower), unname(rq$upper)),
         followup_log = c(unname(rql$quantile), unname(rql$lower), unname(rql$upper)),
         at_risk_times = at, at_risk = nr,
         print_median = unname(summary(s)$table["median"]))
  }
  out$overall <- curves(time, event)
  if (!is.null(group)) {
    lev <- sort(unique(group))
    out$groups <- lapply(lev, function(g) c(list(label = g), curves(time[group == g], event[group == g])))
    sd <- if (is.null(strata)) survdiff(Surv(time, event) ~ group) else
      survdiff(Surv(time, event) ~ group + strata(strata))
    obs <- if (is.matrix(sd$obs)) rowSums(sd$obs) else sd$obs
    ex <- if (is.matrix(sd$exp)) rowSums(sd$exp) else sd$exp
    df <- sum(ex > 0) - 1
    out$logrank <- list(levels = lev, chisq = sd$chisq, df = df,
                        p = pchisq(sd$chisq, df, lower.tail = FALSE),
                        observed = obs, expected = ex, var = sd$var)
  }
  out
}

cases <- list()
lung <- rd("lung.csv")
lspec <- list(file = "lung.csv", time = "time", time_scale = "days", event = "status", event_value = 2)
cases[[length(cases) + 1]] <- one_case("lung_sex", c(lspec, group = "sex"),
  lung$time / DAYS_PER_MONTH, as.integer(lung$status == 2), lung$sex)
le <- lung[!is.na(lung$ph.ecog), ]
cases[[length(cases) + 1]] <- one_case("lung_ecog", c(lspec, group = "ph.ecog", dropna = "ph.ecog"),
  le$time / DAYS_PER_MONTH, as.integer(le$status == 2), le$ph.ecog)
vet <- rd("veteran.csv")
vspec <- list(file = "veteran.csv", time = "time", time_scale = "days", event = "status", event_value = 1)
cases[[length(cases) + 1]] <- one_case("veteran_celltype", c(vspec, group = "celltype"),
  vet$time / DAYS_PER_MONTH, vet$status, vet$celltype)
cases[[length(cases) + 1]] <- one_case("veteran_trt", c(vspec, group = "trt"),
  vet$time / DAYS_PER_MONTH, vet$status, vet$trt)
ov <- rd("ovarian.csv")
cases[[length(cases) + 1]] <- one_case("ovarian_rx",
  list(file = "ovarian.csv", time = "futime", time_scale = "days", event = "fustat", event_value = 1, group = "rx"),
  ov$futime / DAYS_PER_MONTH, ov$fustat, ov$rx)
ts <- rd("ties_surv.csv")
tspec <- list(file = "ties_surv.csv", time = "time", time_scale = "months", event = "status", event_value = 1)
cases[[length(cases) + 1]] <- one_case("ties_group", c(tspec, group = "group"), ts$time, ts$status, ts$group)
cases[[length(cases) + 1]] <- one_case("ties_group_strata_x1", c(tspec, group = "group", strata = "x1"),
  ts$time, ts$status, ts$group, strata = ts$x1)

# Small edge cases, inputs written into the JSON:
edge <- list(
  plateau_mid = list(time = c(1, 2, 3, 4), event = c(1, 1, 1, 1)),          # S = .5 on [2, 3): median 2.5
  plateau_end = list(time = c(1, 2, 3, 4), event = c(1, 1, 0, 0)),          # curve ends at 0.5
  cens_first = list(time = c(1, 2, 3, 4, 5, 5, 6), event = c(0, 1, 0, 1, 1, 0, 1)),  # S = 1 rows, S -> 0
  not_reached = list(time = c(2, 3, 5, 8, 9, 10, 12, 15), event = c(1, 0, 0, 1, 0, 0, 0, 0)),
  all_tied = list(time = c(5, 5, 5, 5, 7, 7, 7, 9, 9, 12), event = c(1, 1, 0, 1, 1, 1, 0, 1, 0, 0))
)
for (nm in names(edge)) {
  e <- edge[[nm]]
  cases[[length(cases) + 1]] <- one_case(paste0("edge_", nm),
    list(inline_time = e$time, inline_event = e$event, time_scale = "months"), e$time, e$event)
}

out <- list(
  generated_by = "tests/reference/survival/km_logrank.R",
  r_version = R.version.string, survival_version = as.character(packageVersion("survival")),
  days_per_month = DAYS_PER_MONTH, cases = cases)
writeLines(toJSON(out, digits = NA, na = "null", auto_unbox = TRUE, pretty = FALSE), "km_logrank.json")
