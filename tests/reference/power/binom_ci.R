# Clopper-Pearson 95% intervals of simulated power (pofa.power: PowerEstimate.ci_low / ci_high).
# Run: Rscript binom_ci.R  (writes binom_ci.json beside this script)
library(jsonlite)
cases <- list(c(0, 50), c(1, 50), c(25, 50), c(49, 50), c(50, 50), c(460, 1000), c(801, 1000), c(969, 1000),
              c(101, 2000))
out <- lapply(cases, function(x) {
  ci <- binom.test(x[1], x[2])$conf.int
  list(k = x[1], n = x[2], low = ci[1], high = ci[2])
})
writeLines(toJSON(list(r_version = as.character(getRversion()), cases = out), digits = NA, auto_unbox = TRUE,
                  pretty = TRUE), "binom_ci.json")
