"""Issue 14: help text in Markdown for profiles and options, sanitised, shown in the form."""

from __future__ import annotations

import re
from html.parser import HTMLParser

import pytest

from firecrestspawner.profiles import load_profile_text
from firecrestspawner.profiles.form import build_view, render_form
from firecrestspawner.profiles.helptext import ALLOWED_TAGS, render_help
from firecrestspawner.profiles.options import UserInfo

HOSTILE = [
    "<script>alert(1)</script>",
    "<img src=x onerror=alert(1)>",
    "[x](javascript:alert(1))",
    "[x](JaVaScRiPt:alert(1))",
    "[x](  javascript:alert(1))",
    "[x](data:text/html;base64,PHNjcmlwdD4=)",
    "[x](vbscript:msgbox)",
    '[x](https://ok.example "t" onclick="alert(1)")',
    "<a href='javascript:alert(1)'>x</a>",
    "![i](javascript:alert(1))",
    "<!-- <script> -->",
    "`<script>`",
    "**<iframe src=//evil>**",
]


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))


def _tags(html: str) -> list[tuple[str, dict[str, str | None]]]:
    parser = _Tags()
    parser.feed(html)
    return parser.tags


def test_help_markdown_renders_the_allowed_subset() -> None:
    html = render_help(
        "Use **GPU** nodes for `torch`, see [the docs](https://docs.example/gpu).\n\n- a\n- b"
    )
    assert "<strong>GPU</strong>" in html
    assert "<code>torch</code>" in html
    assert (
        '<a href="https://docs.example/gpu" rel="noopener noreferrer" target="_blank">the docs</a>'
        in html
    )
    assert "<ul>\n<li>a</li>" in html


@pytest.mark.parametrize("text", HOSTILE)
def test_help_markdown_is_sanitised(text: str) -> None:
    html = render_help(text)
    for tag, attrs in _tags(html):
        assert tag in ALLOWED_TAGS, html
        assert set(attrs) <= {"href", "rel", "target"}, html
        href = attrs.get("href")
        if href is not None:
            assert re.match(r"(https?|mailto):", href), html
    assert "<script" not in html
    assert "<iframe" not in html


FILE = """\
systems: [{name: c}]
profiles:
  - id: p
    display_name: P
    system: c
    help: "Read **this** <script>alert('p')</script>"
    options:
      - id: nodes
        kind: integer
        display_name: Nodes
        help: "At most `4`, [why](https://docs.example/why) <img src=x onerror=alert(1)>"
"""


def test_help_text_is_rendered_safely_in_the_form() -> None:
    loaded = load_profile_text(FILE, name="help.yaml")
    view = build_view(loaded.profiles[0], user=UserInfo("alice", ()), values={}, selected=True)
    html = render_form([view])
    assert "Read <strong>this</strong> &lt;script&gt;alert('p')&lt;/script&gt;" in html
    assert "At most <code>4</code>" in html
    assert 'href="https://docs.example/why"' in html
    assert "<script>alert" not in html
    assert "<img src=x" not in html


def test_help_refuses_control_characters() -> None:
    from firecrestspawner.profiles import ProfileError

    with pytest.raises(ProfileError, match="U\\+001B"):
        load_profile_text(FILE.replace("Read **this**", "Read \\u001b[31m"), name="help.yaml")
