"""The report template's Python code, shipped beside the template so that a run need not compile it.

Jinja turns a template into Python source (lexing, parsing, code generation) in every new process: about 25 ms
of CPU for ``report.html.j2``, a part of every ``pofa analyze``. pofa ships that source beside the template
(``templates/<name>.code``, written by :func:`write_code`; a test checks that it is current), and
:class:`ShippedCode`, a Jinja bytecode cache that only reads, hands it to Jinja when it was generated from the
same template text by the same Jinja version with the same environment settings. Otherwise (an edited
template, another Jinja) Jinja compiles the template as it always does: the shipped code can make a run
faster, never different. Jinja's own file caches are not used: pofa writes nothing outside its output folder.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import jinja2
from jinja2.bccache import Bucket

__all__ = ["ShippedCode", "code_path", "template_key", "write_code"]

_KEY_LINE = "# pofa template key: "


def template_key(environment: jinja2.Environment, name: str, source: str) -> str:
    """Return what the generated code of a template depends on, as one hash.

    Parameters
    ----------
    environment : jinja2.Environment
        The environment the template is compiled in (its syntax and whitespace settings, extensions).
    name : str
        The template's name (its autoescape setting depends on it).
    source : str
        The template text.

    Returns
    -------
    str
        SHA-256 (hex) of the Jinja version, the settings, the autoescape decision and the text.
    """
    env = environment
    autoescape = env.autoescape(name) if callable(env.autoescape) else env.autoescape
    settings = (
        jinja2.__version__, env.block_start_string, env.block_end_string, env.variable_start_string,
        env.variable_end_string, env.comment_start_string, env.comment_end_string, env.line_statement_prefix,
        env.line_comment_prefix, env.trim_blocks, env.lstrip_blocks, env.newline_sequence,
        env.keep_trailing_newline, env.optimized, env.is_async, sorted(env.extensions), env.finalize is None,
        autoescape, env.undefined.__name__,
    )
    return hashlib.sha256(repr(settings).encode("utf-8") + b"\0" + source.encode("utf-8")).hexdigest()


def code_path(filename: str) -> Path:
    """Return where the shipped code of a template file is kept.

    Parameters
    ----------
    filename : str
        The template's file (``.../templates/report.html.j2``).

    Returns
    -------
    Path
        The file beside it with ``.code`` appended.
    """
    return Path(filename + ".code")


def write_code(environment: jinja2.Environment, name: str) -> Path:
    """Generate a template's Python code and write it beside the template (run after editing a template).

    Parameters
    ----------
    environment : jinja2.Environment
        The environment the report renders with (:func:`pofa.report.html._environment`).
    name : str
        The template's name.

    Returns
    -------
    Path
        The file written.

    Raises
    ------
    jinja2.TemplateError
        When the template does not compile.
    """
    loader = environment.loader
    assert loader is not None  # the report's environment loads from pofa's templates
    source, filename, _ = loader.get_source(environment, name)
    assert filename is not None  # a package loader knows each template's file
    code = environment.compile(source, name, filename, raw=True)
    path = code_path(filename)
    path.write_text(f"{_KEY_LINE}{template_key(environment, name, source)}\n{code}", encoding="utf-8")
    return path


class ShippedCode(jinja2.BytecodeCache):
    """A read-only Jinja bytecode cache holding the shipped code of current templates (see the module)."""

    def get_bucket(self, environment: jinja2.Environment, name: str, filename: str | None,
                   source: str) -> Bucket:
        """Return the template's bucket, with its code when the shipped code matches the template.

        Parameters
        ----------
        environment : jinja2.Environment
            The environment compiling the template.
        name : str
            The template's name.
        filename : str or None
            The template's file.
        source : str
            The template text.

        Returns
        -------
        jinja2.bccache.Bucket
            Its ``code`` is the compiled shipped code, or ``None`` (then Jinja compiles the template).
        """
        bucket = Bucket(environment, self.get_cache_key(name, filename), self.get_source_checksum(source))
        if filename is None:
            return bucket
        try:
            shipped = code_path(filename).read_text(encoding="utf-8")
        except OSError:
            return bucket
        first, _, code = shipped.partition("\n")
        if first == _KEY_LINE + template_key(environment, name, source):
            bucket.code = compile(code, filename, "exec")
        return bucket

    def load_bytecode(self, bucket: Bucket) -> None:
        """Nothing to load: :meth:`get_bucket` fills the bucket.

        Parameters
        ----------
        bucket : jinja2.bccache.Bucket
            Unused.
        """

    def dump_bytecode(self, bucket: Bucket) -> None:
        """Write nothing (pofa writes only its output folder).

        Parameters
        ----------
        bucket : jinja2.bccache.Bucket
            Unused.
        """

    def set_bucket(self, bucket: Any) -> None:
        """Keep nothing.

        Parameters
        ----------
        bucket : jinja2.bccache.Bucket
            Unused.
        """
