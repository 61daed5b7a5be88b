"""pofa.report.template_code: the shipped template code is current, used when it matches, else ignored."""

from __future__ import annotations

from pathlib import Path

import jinja2

from pofa.report.html import _environment
from pofa.report.template_code import ShippedCode, code_path, template_key, write_code


def test_shipped_code_of_the_report_template_is_current() -> None:
    env = _environment()
    loader = env.loader
    assert loader is not None
    source, filename, _ = loader.get_source(env, "report.html.j2")
    assert filename is not None
    shipped = code_path(filename).read_text(encoding="utf-8")
    want = f"# pofa template key: {template_key(env, 'report.html.j2', source)}\n" + env.compile(
        source, "report.html.j2", filename, raw=True)
    # after editing report.html.j2: python3 -c "from pofa.report.html import _environment;
    # from pofa.report.template_code import write_code; write_code(_environment(), 'report.html.j2')"
    assert shipped == want, "templates/report.html.j2.code is out of date: run write_code (see this test)"


def _env(folder: Path) -> jinja2.Environment:
    return jinja2.Environment(loader=jinja2.FileSystemLoader(folder), bytecode_cache=ShippedCode(),
                              autoescape=True)


def test_current_code_used_and_stale_code_ignored(tmp_path: Path) -> None:
    (tmp_path / "t.j2").write_text("A {{ x }}", encoding="utf-8")
    write_code(_env(tmp_path), "t.j2")
    code = tmp_path / "t.j2.code"
    assert _env(tmp_path).get_template("t.j2").render(x="<b>") == "A &lt;b&gt;"
    # the shipped code is what runs while its key matches the template ...
    key, _, body = code.read_text(encoding="utf-8").partition("\n")
    code.write_text(key + "\n" + body.replace("'A '", "'SHIPPED '"), encoding="utf-8")
    assert _env(tmp_path).get_template("t.j2").render(x=1) == "SHIPPED 1"
    # ... and is ignored once the template changes (or Jinja, or the environment's settings)
    (tmp_path / "t.j2").write_text("B {{ x }}", encoding="utf-8")
    assert _env(tmp_path).get_template("t.j2").render(x=1) == "B 1"
    env = _env(tmp_path)
    env.trim_blocks = True
    assert template_key(env, "t.j2", "B {{ x }}") != template_key(_env(tmp_path), "t.j2", "B {{ x }}")
    code.unlink()  # no shipped code: compiled as usual, and nothing is written
    assert _env(tmp_path).get_template("t.j2").render(x=2) == "B 2"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t.j2"]
