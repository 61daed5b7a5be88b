# Two-sided p-values of Fisher's exact test of 2 x 2 tables, by R's fisher.test, for
# tests/test_group_tests.py (pofa.report.tables.group_tests.fisher_exact_2x2).
# Run from this folder: Rscript fisher.R  (writes fisher_reference.csv)
# Each table is [[a, b], [c, d]] (rows first): matrix(c(a, c, b, d), 2).
tables <- rbind(
  c(1, 11, 6, 6),      # the expected count 3.5 of tests/test_report_table1.py
  c(3, 3, 3, 3),       # symmetric margins: every table's probability ties with its mirror image
  c(2, 5, 5, 2),
  c(0, 5, 5, 0),
  c(0, 0, 4, 7),       # an empty row: p = 1
  c(8, 2, 1, 5),
  c(1, 9, 11, 3),
  c(10, 10, 10, 11),
  c(0, 12, 7, 3),
  c(4, 0, 0, 4),
  c(1, 0, 0, 30),
  c(17, 3, 4, 150),
  c(2, 98, 9, 91),
  c(40, 1960, 4, 3996), # margins in the thousands (a lesion table)
  c(3, 2997, 12, 2988),
  c(150, 20, 30, 140),  # p far below 1e-20
  c(5, 16995, 0, 3618),
  c(1, 2, 3, 4),
  c(7, 12, 0, 3),
  c(25, 25, 24, 26)
)
out <- data.frame(a = tables[, 1], b = tables[, 2], c = tables[, 3], d = tables[, 4])
out$p <- apply(tables, 1, function(t) fisher.test(matrix(t[c(1, 3, 2, 4)], 2))$p.value)
out$p <- formatC(out$p, digits = 17, format = "g")  # every digit of the double
write.csv(out, "fisher_reference.csv", row.names = FALSE, quote = FALSE)
