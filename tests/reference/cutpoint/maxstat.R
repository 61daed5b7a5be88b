# Reference values for pofa.stats.cutpoint (maximally selected log-rank statistics, maxstat::maxstat.test).
# Run from this folder: Rscript maxstat.R  -> maxstat.json
# R 4.2.2, maxstat 0.7-25, exactRankTests 0.8-35, survival 3.5-3, jsonlite 1.8.4 (Debian packages).
suppressMessages({library(maxstat); library(survival); library(jsonlite)})
rd <- function(f) read.csv(file.path("..", "data", f), stringsAsFactors = FALSE)

one_case <- function(name, spec, d, formula, minprop = 0.1, maxprop = 0.9) {
  r92 <- maxstat.test(formula, data = d, smethod = "LogRank", pmethod = "Lau92", minprop = minprop, maxprop = maxprop)
  r94 <- maxstat.test(formula, data = d, smethod = "LogRank", pmethod = "Lau94", minprop = minprop, maxprop = maxprop)
  y <- model.response(model.frame(formula, d))
  list(name = name, spec = spec, minprop = minprop, maxprop = maxprop, n = nrow(d),
       statistic = unname(r92$statistic), cutpoint = unname(r92$estimate),
       p_lau92 = r92$p.value, p_lau94 = r94$p.value,
       cuts = unname(r92$cuts), stats = unname(r92$stats),
       scores = unname(as.numeric(exactRankTests::cscores(y, type = "LogRank"))))
}
cases <- list()
h <- rd("hohnloser.csv")
cases[[1]] <- one_case("hohnloser_EF", list(file = "hohnloser.csv", time = "month", event = "cens", x = "EF"),
                       h, Surv(month, cens) ~ EF)
lung <- rd("lung.csv"); lung$dead <- as.integer(lung$status == 2)
cases[[2]] <- one_case("lung_age", list(file = "lung.csv", time = "time", event = "status", event_value = 2, x = "age"),
                       lung, Surv(time, dead) ~ age)
vet <- rd("veteran.csv")
cases[[3]] <- one_case("veteran_karno_02_08",
                       list(file = "veteran.csv", time = "time", event = "status", x = "karno"),
                       vet, Surv(time, status) ~ karno, minprop = 0.2, maxprop = 0.8)
out <- list(generated_by = "tests/reference/cutpoint/maxstat.R", r_version = R.version.string,
            maxstat_version = as.character(packageVersion("maxstat")), cases = cases)
writeLines(toJSON(out, digits = NA, na = "null", auto_unbox = TRUE), "maxstat.json")
