"""pofa.io.writers: every kind of text column is neutralised; the others are left as they are."""

from __future__ import annotations

import pandas as pd

from pofa.io.writers import csv_text, safe_frame, write_csv


def _frame() -> pd.DataFrame:
    return pd.DataFrame({
        "obj": pd.Series(["a", "=cmd()", None], dtype=object),
        "str": pd.array(["+1+1", "b", None], dtype="string"),
        "cat": pd.Categorical(["@x", "y", "@x"]),
        "lists": pd.Series([["=a"], [1], []], dtype=object),
        "mixed": pd.Series([1, "-2", "-x"], dtype=object),
        "plain": pd.Series(["p", "q", None], dtype=object),
        "num": [-1.5, 2.0, 3.0],
    })


def test_every_text_kind_neutralised() -> None:
    frame = _frame()
    before = frame.copy(deep=True)
    out = safe_frame(frame)
    assert out["obj"].tolist()[:2] == ["a", "'=cmd()"]
    assert out["str"].tolist()[:2] == ["'+1+1", "b"] and isinstance(out["str"].dtype, pd.StringDtype)
    assert out["cat"].tolist() == ["'@x", "y", "'@x"]
    assert out["lists"].tolist() == [["=a"], [1], []]  # not text: written as pandas writes a list
    assert out["mixed"].tolist() == [1, "-2", "'-x"]  # -2 is a number, -x would run
    assert out["plain"] is not None and out["plain"].tolist()[:2] == ["p", "q"]
    pd.testing.assert_frame_equal(frame, before)  # the input is not modified
    out.loc[0, "plain"] = "changed"  # nor through the copy
    pd.testing.assert_frame_equal(frame, before)


def test_csv_writers_write_no_formula(tmp_path) -> None:  # type: ignore[no-untyped-def]
    frame = _frame().drop(columns=["lists", "mixed"])
    frame.columns = ["=h", *frame.columns[1:]]
    text = csv_text(frame)
    assert text.splitlines()[0].startswith("'=h,")
    assert "'=cmd()" in text and "'+1+1" in text and "'@x" in text
    write_csv(pd.concat([frame] * 1000, ignore_index=True), tmp_path / "t.csv")  # more than one row batch
    lines = (tmp_path / "t.csv").read_text(encoding="utf-8").splitlines()
    assert len(lines) == 3001 and lines[0].startswith('"\'=h"')
    assert all("'=cmd()" in line for line in lines[2::3])
