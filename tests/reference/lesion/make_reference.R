# Reference values for pofa.stats lesion-level models (tests/test_stats_lesion*.py, tests/test_stats_gee*.py).
#
#   cd tests/reference/lesion && Rscript make_reference.R     (writes reference.json)
#
# Inputs: cohort_a.csv, cohort_b.csv, firth.csv (made once by make_cohorts.py) and brglm2's `endometrial` data
# (written here to endometrial.csv). Patient ids are read as text: "1.1" and "1.10" are different patients.
#
# For each cohort and each model (one univariable model per term and one multivariable model):
#   glm      stats::glm(binomial) (epsilon 1e-14): coefficients, model-based SEs.
#   gee      geepack::geeglm(binomial, corstr = "exchangeable") run to convergence (epsilon 1e-12) and with the
#            default control (epsilon 1e-4): coefficients, robust sandwich SEs, alpha, scale.
#   gee_md   Mancl-DeRouen (2001) bias-reduced sandwich computed by hand below from geeglm's fit (geepack has no
#            such option; geesmv is not packaged). The same hand code reproduces geepack's own robust sandwich
#            (checked here with stopifnot) so the only difference is the (I - H_i)^-1 residual correction.
# Firth:   brglm2 (method = "brglmFit", type = "AS_mean": for the logit link this is Firth's penalised
#          likelihood, the estimator of logistf) and profile penalised-likelihood CIs and penalised LR p-values
#          computed by profiling log L + 0.5 log|I(beta)| over the other coefficients (what logistf does with
#          pl = TRUE; logistf itself is not packaged for Debian).
suppressPackageStartupMessages({
  library(geepack)
  library(brglm2)
  library(jsonlite)
})

read_cohort <- function(path) {
  d <- read.csv(path, colClasses = c(patient_id = "character", lesion_id = "character"), na.strings = "NA")
  d$extranodal <- as.integer(d$extranodal == "True")
  d
}

# Term columns built from a spec: list(name, column, kind = "threshold"/"indicator"/"sd", threshold)
term_values <- function(d, spec) {
  x <- d[[spec$column]]
  if (spec$kind == "threshold") return(as.numeric(x >= spec$threshold))
  if (spec$kind == "indicator") return(as.numeric(x))
  if (spec$kind == "sd") return(x / sd(x))  # OR per SD: SD of the rows used by the model (ddof 1)
  stop("unknown kind")
}

design <- function(d, specs) {
  cols <- unique(vapply(specs, function(s) s$column, ""))
  keep <- complete.cases(d[, c(cols, "local_failure", "patient_id")])
  dd <- d[keep, ]
  dd <- dd[order(dd$patient_id), ]            # geeglm needs each cluster's rows to be contiguous
  X <- cbind(1, sapply(specs, function(s) term_values(dd, s)))
  colnames(X) <- c("(Intercept)", vapply(specs, function(s) s$name, ""))
  list(X = X, y = dd$local_failure, id = match(dd$patient_id, unique(dd$patient_id)),
       n_dropped = sum(!keep), n_patients = length(unique(dd$patient_id)))
}

# Mancl-DeRouen and plain sandwich by hand, from a logit-link exchangeable fit.
sandwich_by_hand <- function(X, y, id, beta, alpha, phi) {
  mu <- as.vector(plogis(X %*% beta))
  v <- mu * (1 - mu)
  p <- ncol(X)
  B <- matrix(0, p, p)
  parts <- list()
  for (g in unique(id)) {
    k <- which(id == g)
    n <- length(k)
    R <- matrix(alpha, n, n); diag(R) <- 1
    A <- diag(sqrt(v[k]), n, n)
    V <- phi * A %*% R %*% A
    D <- v[k] * X[k, , drop = FALSE]              # d mu / d beta
    Vi <- solve(V)
    B <- B + t(D) %*% Vi %*% D
    parts[[length(parts) + 1]] <- list(D = D, Vi = Vi, r = y[k] - mu[k], n = n)
  }
  Bi <- solve(B)
  M <- matrix(0, p, p)
  Mmd <- matrix(0, p, p)
  for (pt in parts) {
    u <- t(pt$D) %*% pt$Vi %*% pt$r
    M <- M + u %*% t(u)
    H <- pt$D %*% Bi %*% t(pt$D) %*% pt$Vi
    umd <- t(pt$D) %*% pt$Vi %*% solve(diag(pt$n) - H, pt$r)
    Mmd <- Mmd + umd %*% t(umd)
  }
  list(robust = Bi %*% M %*% Bi, md = Bi %*% Mmd %*% Bi)
}

fit_models <- function(d, X, y, id) {
  df <- data.frame(y = y, X[, -1, drop = FALSE], id = id, check.names = FALSE)
  f <- reformulate(sprintf("`%s`", colnames(X)[-1]), response = "y")
  g <- glm(f, data = df, family = binomial, control = glm.control(epsilon = 1e-14, maxit = 100))
  gee_tight <- geeglm(f, id = id, data = df, family = binomial, corstr = "exchangeable",
                      control = geese.control(epsilon = 1e-12, maxit = 200))
  gee_default <- geeglm(f, id = id, data = df, family = binomial, corstr = "exchangeable")
  beta <- coef(gee_tight)
  alpha <- unname(gee_tight$geese$alpha)
  phi <- unname(gee_tight$geese$gamma)
  hand <- sandwich_by_hand(X, y, id, beta, alpha, phi)
  stopifnot(max(abs(hand$robust / gee_tight$geese$vbeta - 1)) < 1e-8)
  list(
    glm = list(coef = unname(coef(g)), se = unname(sqrt(diag(vcov(g)))), converged = g$converged),
    gee = list(coef = unname(beta), se = unname(sqrt(diag(gee_tight$geese$vbeta))), alpha = alpha, scale = phi,
               se_md = unname(sqrt(diag(hand$md)))),
    gee_default = list(coef = unname(coef(gee_default)), se = unname(sqrt(diag(gee_default$geese$vbeta))),
                       alpha = unname(gee_default$geese$alpha))
  )
}

cohort_reference <- function(path, specs) {
  d <- read_cohort(path)
  models <- list()
  for (s in specs) models[[length(models) + 1]] <- list(model = "univariable", specs = list(s))
  models[[length(models) + 1]] <- list(model = "multivariable", specs = specs)
  lapply(models, function(m) {
    des <- design(d, m$specs)
    c(list(model = m$model, terms = colnames(des$X), n_lesions = length(des$y), n_patients = des$n_patients,
           n_dropped = des$n_dropped),
      fit_models(d, des$X, des$y, des$id))
  })
}

# ---- Firth: penalised log-likelihood, its score (Firth's modified score) and profiles -------------------------
pen_loglik <- function(beta, X, y) {
  eta <- as.vector(X %*% beta)
  w <- plogis(eta) * plogis(-eta)
  sum(y * plogis(eta, log.p = TRUE) + (1 - y) * plogis(-eta, log.p = TRUE)) +
    0.5 * as.numeric(determinant(crossprod(X * sqrt(w)), logarithm = TRUE)$modulus)
}
firth_step <- function(beta, X, y, free) {
  eta <- as.vector(X %*% beta)
  p <- plogis(eta); w <- p * (1 - p)
  XW <- X * sqrt(w)
  I <- crossprod(XW)
  h <- rowSums((XW %*% solve(I)) * XW)
  U <- crossprod(X, y - p + h * (0.5 - p))
  list(U = U[free], I = I[free, free, drop = FALSE])
}
# Maximise the penalised likelihood over the coefficients `free` (others held at `beta`): Fisher scoring on
# Firth's modified score with step halving, as logistf does; converged when max |score| < 1e-11.
pen_max <- function(beta, X, y, free) {
  for (it in 1:500) {
    st <- firth_step(beta, X, y, free)
    if (max(abs(st$U)) < 1e-11) return(beta)
    delta <- solve(st$I, st$U)
    step <- 1
    l0 <- pen_loglik(beta, X, y)
    repeat {
      nb <- beta; nb[free] <- beta[free] + step * delta
      if (pen_loglik(nb, X, y) >= l0 - 1e-12 || step < 1e-8) break
      step <- step / 2
    }
    beta <- nb
  }
  stop("penalised fit did not converge")
}
firth_reference <- function(X, y) {
  df <- data.frame(y = y, X[, -1, drop = FALSE], check.names = FALSE)
  f <- reformulate(sprintf("`%s`", colnames(X)[-1]), response = "y")
  b <- glm(f, data = df, family = binomial, method = "brglmFit", type = "AS_mean",
           control = brglmControl(epsilon = 1e-12, maxit = 500))
  k <- ncol(X)
  beta_hat <- pen_max(unname(coef(b)), X, y, seq_len(k))
  stopifnot(max(abs(beta_hat - coef(b))) < 1e-8)
  lmax <- pen_loglik(beta_hat, X, y)
  crit <- qchisq(0.95, 1)
  eta_hat <- as.vector(X %*% beta_hat)
  se <- sqrt(diag(solve(crossprod(X * sqrt(plogis(eta_hat) * plogis(-eta_hat))))))
  prof <- function(j, b_j) {
    beta <- beta_hat; beta[j] <- b_j
    beta <- pen_max(beta, X, y, setdiff(seq_len(k), j))
    2 * (lmax - pen_loglik(beta, X, y))
  }
  lower <- upper <- pval <- numeric(k)
  for (j in seq_len(k)) {
    g <- function(b_j) prof(j, b_j) - crit
    hi <- beta_hat[j] + se[j]; while (g(hi) < 0) hi <- hi + 2 * se[j]
    lo <- beta_hat[j] - se[j]; while (g(lo) < 0) lo <- lo - 2 * se[j]
    upper[j] <- uniroot(g, c(beta_hat[j], hi), tol = 1e-12)$root
    lower[j] <- uniroot(g, c(lo, beta_hat[j]), tol = 1e-12)$root
    pval[j] <- pchisq(prof(j, 0), 1, lower.tail = FALSE)
  }
  list(terms = colnames(X), coef = unname(beta_hat), se = unname(se), ci_low = lower, ci_high = upper,
       p = pval, pen_loglik = lmax)
}

# ---- run ----------------------------------------------------------------------------------------------------
spec <- function(name, column, kind, threshold = NULL) list(name = name, column = column, kind = kind,
                                                           threshold = threshold)
specs_a <- list(spec("diameter_cm>=5", "diameter_cm", "threshold", 5),
                spec("suvmax>=10", "suvmax", "threshold", 10),
                spec("extranodal", "extranodal", "indicator"))
specs_b <- list(spec("suvmax (per SD)", "suvmax", "sd"),
                spec("extranodal", "extranodal", "indicator"),
                spec("diameter_cm>=5", "diameter_cm", "threshold", 5))

firth_d <- read_cohort("firth.csv")
firth_models <- list()
for (m in list(list(model = "univariable", specs = specs_a[1]), list(model = "multivariable", specs = specs_a))) {
  des <- design(firth_d, m$specs)
  firth_models[[length(firth_models) + 1]] <- c(list(model = m$model, n_lesions = length(des$y)),
                                                firth_reference(des$X, des$y))
}

data(endometrial, package = "brglm2")
write.csv(endometrial, "endometrial.csv", row.names = FALSE)
Xe <- cbind("(Intercept)" = 1, as.matrix(endometrial[, c("NV", "PI", "EH")]))

out <- list(
  generated_by = "make_reference.R",
  versions = list(R = R.version.string, geepack = as.character(packageVersion("geepack")),
                  brglm2 = as.character(packageVersion("brglm2")),
                  jsonlite = as.character(packageVersion("jsonlite"))),
  cohort_a = cohort_reference("cohort_a.csv", specs_a),
  cohort_b = cohort_reference("cohort_b.csv", specs_b),
  firth = firth_models,
  endometrial_firth = firth_reference(Xe, endometrial$HG)
)
writeLines(toJSON(out, auto_unbox = TRUE, digits = NA, pretty = TRUE), "reference.json")
cat("wrote reference.json\n")
