# Reference values for pofa.simulate.figures.km_median (Kaplan-Meier median, R's convention) and the
# reverse Kaplan-Meier median follow-up. Run: Rscript km_median.R  (writes km_median.json)
library(survival)
library(jsonlite)
cases <- list(
  flat_half = list(time = c(1, 2, 4, 5), event = c(1, 1, 1, 1)),
  simple = list(time = c(1, 2, 3), event = c(1, 1, 1)),
  censored = list(time = c(0.5, 1, 1, 2, 3, 3, 4.5, 6, 7, 9), event = c(1, 0, 1, 1, 0, 1, 0, 1, 0, 0)),
  ties_half = list(time = c(2, 2, 3, 3, 5, 8), event = c(1, 1, 0, 1, 1, 0)),
  never_half = list(time = c(1, 2, 3, 4), event = c(1, 0, 0, 0))
)
set.seed(20211)
t <- round(rexp(63, 1 / 14), 2)
d <- rbinom(63, 1, 0.4)
cases$reverse_km <- list(time = t, event = 1 - d)  # reverse KM: censoring (alive) is the event
out <- lapply(cases, function(cs) {
  fit <- survfit(Surv(cs$time, cs$event) ~ 1)
  med <- unname(summary(fit)$table["median"])
  list(time = cs$time, event = cs$event, median = med)
})
out$version <- paste(R.version$major, R.version$minor, sep = ".")
out$survival <- as.character(packageVersion("survival"))
write_json(out, "km_median.json", digits = NA, auto_unbox = TRUE, pretty = TRUE, na = "null")
