# Reference values for pofa.stats.competing (cumulative incidence and Gray's test, cmprsk::cuminc).
# Run from this folder: Rscript cuminc.R  -> cuminc.json
# R 4.2.2, cmprsk 2.2-11, jsonlite 1.8.4 (Debian packages). Data: ../data/*.csv (see ../data/README.md).
suppressMessages({library(cmprsk); library(jsonlite)})
rd <- function(f) read.csv(file.path("..", "data", f), stringsAsFactors = FALSE)
z <- qnorm(0.975)

# Confidence interval on the log(-log) scale, as cmprsk-based reports (e.g. tidycmprsk, Pintilie 2006):
# est^exp(-+ z * se / (est * log(est))). cmprsk itself returns only est and var.
ci_loglog <- function(est, var) {
  se <- sqrt(var)
  k <- z * se / (est * log(est))
  lo <- est^exp(-k); hi <- est^exp(k)
  bad <- is.na(est) | est <= 0 | est >= 1
  lo[bad] <- NA; hi[bad] <- NA
  list(lower = lo, upper = hi)
}

one_case <- function(name, spec, time, cause, group = NULL, strata = NULL, rho = 0, grid = NULL) {
  fit <- if (is.null(group) && is.null(strata)) cuminc(time, cause, rho = rho) else
    if (is.null(strata)) cuminc(time, cause, group, rho = rho) else cuminc(time, cause, group, strata, rho = rho)
  curves <- fit[names(fit) != "Tests"]
  tp_times <- sort(unique(c(grid, time, time + 0.5, 0)))
  tp <- timepoints(fit, tp_times)
  out <- list(name = name, spec = spec, rho = rho, n = length(time),
              curve_names = names(curves),
              curves = lapply(curves, function(cv) list(time = cv$time, est = cv$est, var = cv$var)),
              tp_times = tp_times,
              tp_est = lapply(seq_len(nrow(tp$est)), function(i) unname(tp$est[i, ])),
              tp_var = lapply(seq_len(nrow(tp$var)), function(i) unname(tp$var[i, ])),
              tp_lower = lapply(seq_len(nrow(tp$est)), function(i) ci_loglog(tp$est[i, ], tp$var[i, ])$lower),
              tp_upper = lapply(seq_len(nrow(tp$est)), function(i) ci_loglog(tp$est[i, ], tp$var[i, ])$upper))
  if (!is.null(fit$Tests)) {
    out$tests <- list(causes = rownames(fit$Tests), stat = unname(fit$Tests[, "stat"]),
                      p = unname(fit$Tests[, "pv"]), df = unname(fit$Tests[, "df"]))
  }
  out
}

cases <- list()
add <- function(x) cases[[length(cases) + 1]] <<- x
m <- rd("mgus2.csv")
mspec <- list(file = "mgus2.csv", time = "etime", cause = "event")
add(one_case("mgus2_sex", c(mspec, group = "sex"), m$etime, m$event, m$sex, grid = c(6, 12, 24, 60, 120, 240)))
tc <- rd("ties_cr.csv")
tspec <- list(file = "ties_cr.csv", time = "time", cause = "cause")
add(one_case("ties_cr_overall", tspec, tc$time, tc$cause, grid = c(6, 12, 24)))
add(one_case("ties_cr_group", c(tspec, group = "group"), tc$time, tc$cause, tc$group, grid = c(6, 12, 24)))
add(one_case("ties_cr_group_strata", c(tspec, group = "group", strata = "stratum"), tc$time, tc$cause,
             tc$group, tc$stratum, grid = c(6, 12, 24)))
add(one_case("ties_cr_group_rho1", c(tspec, group = "group", rho = 1), tc$time, tc$cause, tc$group,
             rho = 1, grid = c(6, 12, 24)))
# tiny hand case: ties across causes and censoring at the same time; the last time is a cause-1 event
tiny <- data.frame(time = c(1, 1, 1, 2, 3, 3, 3, 4, 5, 5, 6, 6),
                   cause = c(1, 2, 0, 1, 2, 2, 1, 0, 1, 0, 2, 1),
                   group = c("a", "b", "a", "b", "a", "b", "a", "b", "a", "b", "a", "b"))
add(one_case("tiny", list(inline = tiny, time = "time", cause = "cause", group = "group"),
             tiny$time, tiny$cause, tiny$group, grid = c(2.5, 6)))

out <- list(generated_by = "tests/reference/competing/cuminc.R", r_version = R.version.string,
            cmprsk_version = as.character(packageVersion("cmprsk")), cases = cases)
writeLines(toJSON(out, digits = NA, na = "null", auto_unbox = TRUE), "cuminc.json")
