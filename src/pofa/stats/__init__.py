"""Statistics of pofa: lesion-level odds ratios, survival, Cox, competing risks, cut-points.

Every function returns an immutable result object that names its method and the R function its numbers match.
"""
