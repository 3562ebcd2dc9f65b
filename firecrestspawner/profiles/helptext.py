"""Help text of profiles and options: a small Markdown subset rendered to safe HTML (pure).

An administrator writes ``help:`` in Markdown; the form shows it as HTML.
Safety is by construction, not by cleaning afterwards: markdown-it-py starts
from its ``zero`` preset (nothing enabled) with raw HTML off, and only the
rules of :data:`ALLOWED_RULES` are enabled, so the output can only hold the
tags those rules produce (``p``, ``em``, ``strong``, ``code``, ``a``, ``ul``,
``ol``, ``li``, ``br``). Any ``<tag>`` in the text is shown as text. A link
keeps only ``http``, ``https`` and ``mailto`` targets (anything else stays
plain text) and opens in a new tab without handing the page over
(``rel="noopener noreferrer"``).
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from urllib.parse import urlsplit

from markdown_it import MarkdownIt
from markdown_it.renderer import RendererHTML
from markdown_it.token import Token
from markdown_it.utils import EnvType, OptionsDict
from markupsafe import Markup

#: markdown-it rules enabled (core rules of the ``zero`` preset stay as they are).
ALLOWED_RULES: tuple[str, ...] = ("emphasis", "backticks", "link", "list", "newline")

#: URL schemes a link may have.
ALLOWED_SCHEMES: frozenset[str] = frozenset({"http", "https", "mailto"})

#: Tags the rendered help can contain (tests check every output against this list).
ALLOWED_TAGS: frozenset[str] = frozenset({"p", "em", "strong", "code", "a", "ul", "ol", "li", "br"})


def _link_ok(url: str) -> bool:
    try:
        scheme = urlsplit(url.strip()).scheme.lower()
    except ValueError:
        return False
    return scheme in ALLOWED_SCHEMES


@lru_cache(maxsize=1)
def _parser() -> MarkdownIt:
    md = MarkdownIt("zero", {"html": False, "linkify": False, "typographer": False})
    md.enable(list(ALLOWED_RULES))
    md.validateLink = _link_ok  # type: ignore[method-assign]

    def link_open(
        self: RendererHTML,
        tokens: Sequence[Token],
        idx: int,
        options: OptionsDict,
        env: EnvType,
    ) -> str:
        tokens[idx].attrSet("rel", "noopener noreferrer")
        tokens[idx].attrSet("target", "_blank")
        return self.renderToken(tokens, idx, options, env)

    md.add_render_rule("link_open", link_open)
    return md


@lru_cache(maxsize=512)
def render_help(text: str) -> Markup:
    """The HTML of one help text (empty for none); safe to insert into a page as it is."""
    if not text or not text.strip():
        return Markup()
    # Safe by construction: raw HTML off, only the rules above, links checked.
    return Markup(_parser().render(text).strip())  # noqa: S704


__all__ = ["ALLOWED_RULES", "ALLOWED_SCHEMES", "ALLOWED_TAGS", "render_help"]
