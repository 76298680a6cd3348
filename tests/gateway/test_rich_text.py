"""The status text sanitizer, summaries and mention links (pure functions)."""
from gateway.core.rich_text import link_mentions, plain_text, sanitize_html, summary


def test_sanitizer_keeps_formatting_and_drops_everything_active():
    clean = sanitize_html('<p><b>bold</b> <a href="https://ok.example/x" onclick="x()">ok</a>'
                          '<a href="data:text/html,hi">d</a><iframe src="https://e.example"></iframe>'
                          '<style>p{}</style><svg onload=alert(1)></svg></p>')
    assert clean == ('<p><b>bold</b> <a href="https://ok.example/x" rel="nofollow noopener">ok</a>'
                     '<a rel="nofollow noopener">d</a></p>')


def test_summary_is_plain_text_cut_at_200_characters_on_a_word():
    text = "<p>" + "lorem ipsum " * 40 + "</p>"
    cut = summary(text)
    assert len(cut) <= 200 and cut.endswith("…") and "<" not in cut and not cut[:-1].endswith(" ")
    assert summary("<p>a &amp; b</p>") == "a & b" == plain_text("<p>a &amp;\n b</p>")


def test_mentions_link_known_users_outside_links_only():
    html = sanitize_html('<p>@ann, @ghost and <a href="https://x.example">@ann</a> mail@ann.example</p>')
    linked = link_mentions(html, lambda name: "/users/ann/" if name == "ann" else None)
    assert linked.count('class="mention"') == 1
    assert "@ghost" in linked and "mail@ann.example" in linked
