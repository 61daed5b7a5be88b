# Reference values for pofa.riskmodel (tests/test_riskmodel*.py).
#
#   cd tests/reference/riskmodel && Rscript make_reference.R      (reads cohort.csv, writes reference.json)
#
# R 4.2.2, geepack 1.3.9, brglm2 0.9, jsonlite. cohort.csv was made by make_cohort.py (simulated patients);
# patient ids are read as text ("1.1" and "1.10" are different patients).
#
# gee3    geepack::geeglm(local_failure ~ I(diameter_cm >= 5) + I(suvmax >= 10) + extranodal,
#         family = binomial, corstr = "exchangeable"), run to convergence (epsilon 1e-12): coefficients, robust
#         covariance (vcov), fitted values, and for the training lesions and a few new lesions the linear
#         predictor, its SE sqrt(x' V x) and the 95% CI plogis(eta -+ qnorm(0.975) * se).
# gee_sd  the same with terms suvmax / sd(suvmax) (SD of the training lesions), mtv_ml (per unit) and
#         I(diameter_cm >= 5): new lesions are divided by the training SD.
# firth3  brglm2 (method = "brglmFit", type = "AS_mean": Firth's penalized likelihood, the estimates of
#         logistf) with the gee3 terms: coefficients, vcov (inverse Fisher information at the estimate),
#         fitted values, new-lesion predictions.
# cv_*    cross-validation with the folds stored in cohort.csv: each fold's model fitted (geeglm / brglm2) on
#         the other folds' lesions, predicting its own; metrics of the pooled out-of-fold predictions:
#         AUC = wilcox.test statistic / (n1 * n0), calibration slope = coef 2 of glm(y ~ qlogis(p), binomial),
#         calibration intercept = coef of glm(y ~ offset(qlogis(p)), binomial), Brier = mean((p - y)^2).
# metrics small vectors (with ties) for AUC, slope, intercept, Brier; Wilson intervals from
#         prop.test(k, n, correct = FALSE)$conf.int.
suppressPackageStartupMessages({
  library(geepack)
  library(brglm2)
  library(jsonlite)
})

d <- read.csv("cohort.csv", colClasses = c(patient_id = "character", lesion_id = "character"))
d <- d[order(d$patient_id), ]                     # geeglm needs each patient's rows to be contiguous
d$id <- match(d$patient_id, unique(d$patient_id))
key <- paste(d$patient_id, d$lesion_id)

newles <- data.frame(
  patient_id = c("N1", "N1", "N1", "N1", "N2"),
  lesion_id = c("L1", "L2", "L3", "L4", "L1"),
  diameter_cm = c(7.2, 2.1, 3.0, 5.0, 12.5),
  suvmax = c(14.1, 8.0, 11.5, 10.0, 60.0),
  extranodal = c(0, 1, 0, 1, 1),
  mtv_ml = c(80.2, 3.1, 10.0, 45.0, 900.0)
)

design3 <- function(x) cbind(1, as.numeric(x$diameter_cm >= 5), as.numeric(x$suvmax >= 10), x$extranodal)

pred <- function(X, b, V) {
  eta <- as.vector(X %*% b)
  se <- sqrt(rowSums((X %*% V) * X))
  z <- qnorm(0.975)
  list(eta = eta, se = se, p = plogis(eta), lo = plogis(eta - z * se), hi = plogis(eta + z * se))
}

ctrl <- geese.control(epsilon = 1e-12, maxit = 200)

fit_gee3 <- function(x) {
  x$d5 <- as.numeric(x$diameter_cm >= 5)
  x$s10 <- as.numeric(x$suvmax >= 10)
  x <- x[order(x$patient_id), ]
  x$id <- match(x$patient_id, unique(x$patient_id))
  geeglm(local_failure ~ d5 + s10 + extranodal, id = id, data = x, family = binomial,
         corstr = "exchangeable", control = ctrl)
}

fit_firth3 <- function(x) {
  x$d5 <- as.numeric(x$diameter_cm >= 5)
  x$s10 <- as.numeric(x$suvmax >= 10)
  glm(local_failure ~ d5 + s10 + extranodal, data = x, family = binomial, method = "brglmFit",
      type = "AS_mean", epsilon = 1e-12, maxit = 200)
}

# ---- gee3
g3 <- fit_gee3(d)
b <- unname(coef(g3)); V <- unname(vcov(g3))
tr <- pred(design3(d), b, V)
nw <- pred(design3(newles), b, V)
gee3 <- list(coef = b, vcov = V, alpha = unname(g3$geese$alpha), key = key,
             fitted = unname(as.vector(fitted(g3))), train = tr, new = nw)

# ---- gee_sd
sd_s <- sd(d$suvmax)
d$ssd <- d$suvmax / sd_s
d$d5 <- as.numeric(d$diameter_cm >= 5)
gs <- geeglm(local_failure ~ ssd + mtv_ml + d5, id = id, data = d, family = binomial,
             corstr = "exchangeable", control = ctrl)
Xs <- function(x) cbind(1, x$suvmax / sd_s, x$mtv_ml, as.numeric(x$diameter_cm >= 5))
gee_sd <- list(coef = unname(coef(gs)), vcov = unname(vcov(gs)), sd_suvmax = sd_s,
               train = pred(Xs(d), unname(coef(gs)), unname(vcov(gs))),
               new = pred(Xs(newles), unname(coef(gs)), unname(vcov(gs))))

# ---- firth3
f3 <- fit_firth3(d)
bf <- unname(coef(f3)); Vf <- unname(vcov(f3))
firth3 <- list(coef = bf, vcov = Vf, fitted = unname(as.vector(fitted(f3))),
               train = pred(design3(d), bf, Vf), new = pred(design3(newles), bf, Vf))

# ---- metrics
auc <- function(y, p) {
  n1 <- sum(y == 1); n0 <- sum(y == 0)
  unname(suppressWarnings(wilcox.test(p[y == 1], p[y == 0], exact = FALSE))$statistic) / (n1 * n0)
}
metrics <- function(y, p) {
  lp <- qlogis(p)
  s <- glm(y ~ lp, family = binomial, control = glm.control(epsilon = 1e-14, maxit = 100))
  i <- glm(y ~ offset(lp), family = binomial, control = glm.control(epsilon = 1e-14, maxit = 100))
  list(auc = auc(y, p), slope = unname(coef(s)[2]), slope_model_intercept = unname(coef(s)[1]),
       intercept = unname(coef(i)[1]), brier = mean((p - y)^2), n = length(y))
}

cv <- function(fitter, X) {
  oof <- rep(NA_real_, nrow(d))
  for (k in sort(unique(d$fold))) {
    test <- d$fold == k
    m <- fitter(d[!test, ])
    oof[test] <- plogis(as.vector(X(d[test, ]) %*% coef(m)))
  }
  c(list(key = key, oof = oof), metrics(d$local_failure, oof))
}
cv_gee3 <- cv(fit_gee3, design3)
cv_firth3 <- cv(fit_firth3, design3)

y1 <- c(0, 0, 1, 1, 0, 1, 1, 0, 1, 0)
p1 <- c(0.1, 0.4, 0.35, 0.8, 0.4, 0.4, 0.9, 0.2, 0.65, 0.55)
set.seed(11)
p2 <- rbeta(200, 2, 3)
y2 <- rbinom(200, 1, plogis(0.3 + 1.4 * qlogis(p2)))
wilson <- lapply(list(c(0, 12), c(3, 12), c(7, 40), c(25, 25)), function(kn) {
  ci <- prop.test(kn[1], kn[2], correct = FALSE)$conf.int
  list(k = kn[1], n = kn[2], lo = ci[1], hi = ci[2])
})
small <- list(case1 = c(list(y = y1, p = p1), metrics(y1, p1)),
              case2 = c(list(y = y2, p = p2), metrics(y2, p2)),
              wilson = wilson)

out <- list(
  versions = list(R = R.version.string, geepack = as.character(packageVersion("geepack")),
                  brglm2 = as.character(packageVersion("brglm2"))),
  new_lesions = newles,
  gee3 = gee3, gee_sd = gee_sd, firth3 = firth3, cv_gee3 = cv_gee3, cv_firth3 = cv_firth3, metrics = small
)
write_json(out, "reference.json", digits = NA, auto_unbox = TRUE, pretty = TRUE)
cat("wrote reference.json\n")
