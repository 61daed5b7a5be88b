# Reference values for pofa.stats.cox (Cox PH, Efron and Breslow ties, Wald/LR/score tests, cox.zph).
# Run from this folder: Rscript cox.R  -> cox.json
# R 4.2.2, survival 3.5-3, jsonlite 1.8.4 (Debian packages). Data: ../data/*.csv (see ../data/README.md).
suppressMessages({library(survival); library(jsonlite)})
rd <- function(f) read.csv(file.path("..", "data", f), stringsAsFactors = FALSE)

fit_case <- function(name, spec, data, formula, ties) {
  f <- coxph(formula, data = data, ties = ties, x = TRUE, y = TRUE, model = TRUE)
  s <- summary(f)
  z <- qnorm(0.975)
  se <- sqrt(diag(f$var))
  zph <- cox.zph(f)  # transform = "km", terms = TRUE, global = TRUE (survival 3.x score test)
  list(name = name, spec = spec, ties = ties, n = f$n, nevent = f$nevent,
       coef_names = names(coef(f)), coef = unname(coef(f)), se = unname(se),
       hr = unname(exp(coef(f))), hr_lower = unname(exp(coef(f) - z * se)),
       hr_upper = unname(exp(coef(f) + z * se)),
       wald_p = unname(s$coefficients[, "Pr(>|z|)"]),
       var = unname(f$var),
       loglik_null = f$loglik[1], loglik = f$loglik[2],
       lr = unname(s$logtest),
       # summary()$waldtest is rounded to 2 decimals: use the unrounded fit$wald.test
       wald = c(unname(f$wald.test), length(coef(f)), pchisq(unname(f$wald.test), length(coef(f)), lower.tail = FALSE)),
       score = unname(s$sctest),
       zph_terms = rownames(zph$table), zph_chisq = unname(zph$table[, "chisq"]),
       zph_df = unname(zph$table[, "df"]), zph_p = unname(zph$table[, "p"]))
}

cases <- list()
add <- function(x) cases[[length(cases) + 1]] <<- x
lung <- rd("lung.csv")
lung$dead <- as.integer(lung$status == 2)
lc <- lung[complete.cases(lung[, c("age", "sex", "ph.ecog")]), ]
lspec <- list(file = "lung.csv", time = "time", event = "status", event_value = 2,
              dropna = c("age", "sex", "ph.ecog"))
for (ties in c("efron", "breslow")) {
  add(fit_case("lung_multi", c(lspec, covariates = list(c("age", "sex", "ph.ecog"))), lc,
               Surv(time, dead) ~ age + sex + ph.ecog, ties))
}
for (v in c("age", "sex", "ph.ecog")) {
  add(fit_case(paste0("lung_uni_", v), c(lspec, covariates = list(v)), lc,
               as.formula(paste("Surv(time, dead) ~", v)), "efron"))
}
vet <- rd("veteran.csv")
vspec <- list(file = "veteran.csv", time = "time", event = "status", event_value = 1)
add(fit_case("veteran_multi", c(vspec, covariates = list(c("trt", "karno", "age", "celltype")),
                                categorical = "celltype"),
             vet, Surv(time, status) ~ trt + karno + age + celltype, "efron"))
ov <- rd("ovarian.csv")
add(fit_case("ovarian_multi", list(file = "ovarian.csv", time = "futime", event = "fustat", event_value = 1,
                                   covariates = list(c("age", "rx", "resid.ds", "ecog.ps"))),
             ov, Surv(futime, fustat) ~ age + rx + resid.ds + ecog.ps, "efron"))
ts <- rd("ties_surv.csv")
tspec <- list(file = "ties_surv.csv", time = "time", event = "status", event_value = 1,
              covariates = list(c("x1", "x2", "group")), categorical = "group")
for (ties in c("efron", "breslow")) {
  add(fit_case("ties_multi", tspec, ts, Surv(time, status) ~ x1 + x2 + group, ties))
}
# Therneau & Grambsch (2000) data set 1 (survival's tests/book1.R), the row with missing status dropped
book1 <- data.frame(time = c(9, 1, 1, 6, 6, 8), status = c(1, 1, 0, 1, 1, 0), x = c(0, 1, 1, 1, 0, 0))
for (ties in c("efron", "breslow")) {
  add(fit_case("book1", list(inline = book1, covariates = list("x")), book1, Surv(time, status) ~ x, ties))
}

out <- list(generated_by = "tests/reference/cox/cox.R", r_version = R.version.string,
            survival_version = as.character(packageVersion("survival")), cases = cases)
writeLines(toJSON(out, digits = NA, na = "null", auto_unbox = TRUE, matrix = "rowmajor"), "cox.json")
