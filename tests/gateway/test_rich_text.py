"""The status text sanitizer, plain text, summaries and mention links (pure functions)."""
from __future__ import annotations

import pytest

from gateway.core.rich_text import link_mentions, plain_text, sanitize_html, summary

USERS = {"ann": "/users/ann/", "bob.smith": "https://social.example/@bob.smith"}


def resolve(name: str) -> str | None:
    return USERS.get(name)


def test_formatting_is_kept():
    text = ('<p><b>b</b> <strong>s</strong> <i>i</i> <em>e</em> <u>u</u> <s>x</s> <span>sp</span><br>'
            '<code>c</code></p><pre>p</pre><blockquote>q</blockquote><ul><li>1</li></ul><ol><li>2</li></ol>')
    assert sanitize_html(text) == text


@pytest.mark.parametrize(("dirty", "clean"), [
    ("<script>alert(1)</script>ok", "ok"),
    ("<style>p{color:red}</style>ok", "ok"),
    ('<img src="x" onerror="alert(1)">ok', "ok"),
    ('<a href="javascript:alert(1)">x</a>', '<a rel="nofollow noopener">x</a>'),
    ('<a href="JaVaScRiPt:alert(1)">x</a>', '<a rel="nofollow noopener">x</a>'),
    ('<a href="data:text/html,<script>alert(1)</script>">x</a>', '<a rel="nofollow noopener">x</a>'),
    ('<a href="https://ok.example/" target="_blank" rel="opener" onclick="x()">ok</a>',
     '<a href="https://ok.example/" rel="nofollow noopener">ok</a>'),
    ('<a href="mailto:ann@example.com">m</a>', '<a href="mailto:ann@example.com" rel="nofollow noopener">m</a>'),
    ('<p style="background:url(javascript:alert(1))" class="x" id="y" onmouseover="x()">t</p>', "<p>t</p>"),
    ('<svg onload="alert(1)"><circle></circle></svg>t', "t"),
    ('<iframe src="https://e.example"></iframe>t', "t"),
    ("<p>unclosed <b>bold", "<p>unclosed <b>bold</b></p>"),
    ("a < b & c", "a &lt; b &amp; c"),
])
def test_sanitizer(dirty, clean):
    assert sanitize_html(dirty) == clean


def test_plain_text_strips_tags_unescapes_and_collapses_whitespace():
    assert plain_text("<p>a &amp;\n b</p><p>next</p><script>x()</script>line<br>two") == "a & b next line two"
    assert plain_text("&lt;script&gt;") == "<script>"  # plain text, to be escaped by whoever renders it


def test_summary_length():
    text = "<p>" + "lorem ipsum " * 40 + "</p>"
    cut = summary(text)
    assert len(cut) <= 200 and cut.endswith("…") and "<" not in cut and not cut[:-1].endswith(" ")
    assert plain_text(text).startswith(cut[:-1])
    assert summary("<p>" + "x" * 500 + "</p>") == "x" * 199 + "…"  # no word boundary: cut mid-word
    assert summary("<p>short &amp; sweet</p>") == "short & sweet"
    assert len(summary("word " * 100, limit=50)) <= 50
    exact = "y" * 200
    assert summary(exact) == exact


def test_known_mentions_are_linked_unknown_stay_text():
    linked = link_mentions(sanitize_html("<p>hi @ann and @ghost, see @bob.smith.</p>"), resolve)
    assert linked == ('<p>hi <a href="/users/ann/" class="mention" data-username="ann" rel="nofollow noopener">'
                      '@ann</a> and @ghost, see <a href="https://social.example/@bob.smith" class="mention" '
                      'data-username="bob.smith" rel="nofollow noopener">@bob.smith</a>.</p>')


def test_mentions_inside_links_attributes_code_and_addresses_are_untouched():
    html = sanitize_html('<p><a href="https://x.example/@ann" title="@ann">@ann</a> mail@ann.example '
                         '<code>@ann</code> https://x.example/@ann</p>')
    assert link_mentions(html, resolve) == html


def test_mention_linking_stays_safe():
    evil = {"ann": 'javascript:alert(1)', "bob.smith": '/u/"><script>alert(1)</script>'}
    linked = link_mentions("<p>@ann @bob.smith &lt;b&gt;@x</p>", evil.get)
    assert "javascript:" not in linked and "<script" not in linked and "&lt;b&gt;" in linked
    # A forged mention link from the user does not keep its class or data attribute.
    forged = link_mentions('<a href="/" class="mention" data-username="ann">@ann</a>', resolve)
    assert forged == '<a href="/" rel="nofollow noopener">@ann</a>'
    assert link_mentions("@" + "a" * 151, lambda name: "/u/") == "@" + "a" * 151  # too long to be a username


def test_every_valid_username_can_be_mentioned():
    """Usernames may hold + and @ (auth's rule); mentions used a narrower pattern and stopped at them."""
    users = {"ann+work": "/users/ann+work/", "ops@example.com": "/users/ops/"}
    linked = link_mentions("<p>@ann+work and @ops@example.com.</p>", users.get)
    assert linked == ('<p><a href="/users/ann+work/" class="mention" data-username="ann+work" '
                      'rel="nofollow noopener">@ann+work</a> and <a href="/users/ops/" class="mention" '
                      'data-username="ops@example.com" rel="nofollow noopener">@ops@example.com</a>.</p>')
