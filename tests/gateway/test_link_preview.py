"""Page metadata, oEmbed parsing and player sanitizing (pure functions, no network)."""
from __future__ import annotations

import pytest

import time

from gateway.core.link_preview import (
    MAX_CHOICE_IMAGES, MAX_PARSE_BYTES, OEmbed, PagePreview, add_image, bounded_markup, is_vimeo_url, load_json,
    parse_oembed, parse_page, read_oembed, sanitize_oembed_html,
)

BASE = "https://news.example/articles/launch"

OPENGRAPH = b"""<!doctype html><html><head>
<meta charset="utf-8"><title>  Fallback
 title </title>
<meta property="og:title" content="Launch day">
<meta property="og:description" content="We shipped it.">
<meta name="description" content="Plain description">
<meta name="keywords" content="launch, rockets">
<meta property="og:image" content="/img/og.jpg">
<meta property="og:image:width" content="1200"><meta property="og:image:height" content="630">
<meta property="og:image" content="http://cdn.example/second.jpg">
<meta property="og:image:secure_url" content="https://cdn.example/second.jpg">
<meta property="og:image" content="javascript:alert(1)">
<meta name="twitter:image" content="/img/og.jpg">
<link rel="alternate" type="application/json+oembed" href="/oembed?url=launch&amp;format=json">
</head><body>
<img src="inline.jpg" width="640" height="480">
<img src="../wide.png" width="800px" height="250">
<img src="icon.png" width="16" height="16">
<img src="banner.png" width="900" height="120">
<img src="unsized.jpg">
<img src="data:image/png;base64,AAAA" width="400" height="400">
<script>document.write('<meta property="og:title" content="not me">')</script>
</body></html>"""


def test_opengraph_page():
    page = parse_page(OPENGRAPH, BASE)
    assert (page.title, page.description, page.keywords) == ("Launch day", "We shipped it.", "launch, rockets")
    assert page.oembed_url == "https://news.example/oembed?url=launch&format=json"
    assert page.images == [
        "https://news.example/img/og.jpg",  # og:image, relative made absolute
        "https://cdn.example/second.jpg",  # second og:image: its secure_url preferred
        "https://news.example/articles/inline.jpg",  # twitter:image was a duplicate
        "https://news.example/wide.png",
    ]
    assert page.image_sizes == {"https://news.example/img/og.jpg": (1200, 630),
                                "https://news.example/articles/inline.jpg": (640, 480),
                                "https://news.example/wide.png": (800, 250)}


def test_img_size_filter_needs_both_sides_declared_and_at_least_200():
    page = parse_page('<img src="/a.jpg" width="200" height="200"><img src="/b.jpg" width="199" height="900">'
                      '<img src="/c.jpg" width="900"><img src="/d.jpg" width="50%" height="300">', BASE)
    assert page.images == ["https://news.example/a.jpg"]


def test_twitter_card_and_title_fallbacks():
    page = parse_page('<meta name="twitter:title" content="Card title">'
                      '<meta name="twitter:description" content="Card text">'
                      '<meta name="twitter:image:src" content="https://img.example/card.png">', BASE)
    assert (page.title, page.description, page.images) == ("Card title", "Card text",
                                                            ["https://img.example/card.png"])
    plain = parse_page("<title>Only\n a   title</title><meta name=description content='Meta text'>", BASE)
    assert (plain.title, plain.description, plain.images, plain.oembed_url) == ("Only a title", "Meta text", [],
                                                                                None)


def test_base_href_and_encodings():
    page = parse_page('<html><head><meta charset="iso-8859-1"><base href="https://cdn.example/assets/">'
                      '<title>Caf\xe9</title><meta property="og:image" content="x.png"></head></html>'
                      .encode("latin-1"), BASE)
    assert (page.title, page.images) == ("Café", ["https://cdn.example/assets/x.png"])
    assert parse_page("<title>é</title>".encode("utf-8"), BASE, encoding="utf-8").title == "é"
    assert parse_page("", BASE) == PagePreview()


def test_oembed_discovery_only_from_alternate_json_links():
    assert parse_page('<link rel="alternate" type="text/xml+oembed" href="/x.xml">', BASE).oembed_url is None
    assert parse_page('<link rel="stylesheet" type="application/json+oembed" href="/x">', BASE).oembed_url is None
    assert parse_page('<link rel="Alternate" type="application/json+oembed" href="https://p.example/o">',
                      BASE).oembed_url == "https://p.example/o"
    assert parse_page('<link rel="alternate" type="application/json+oembed" href="javascript:x">',
                      BASE).oembed_url is None


def test_add_image_keeps_http_urls_once():
    page = PagePreview()
    for url in ("https://a.example/1.png", "https://a.example/1.png", "javascript:alert(1)", "/relative.png", None):
        add_image(page, url, (300, 300))
    assert page.images == ["https://a.example/1.png"] and page.image_sizes == {"https://a.example/1.png": (300, 300)}


def test_a_flood_of_images_is_cut_to_the_first_hundred_quickly():
    tags = "".join(f'<meta property="og:image" content="/img/{n}.jpg">\n' for n in range(60_000))
    started = time.perf_counter()
    page = parse_page(f"<title>Flood</title>{tags}".encode(), BASE)
    assert time.perf_counter() - started < 5  # was 30 s: a quadratic dedup over every tag of 3.9 MB
    assert page.title == "Flood" and len(page.images) == MAX_CHOICE_IMAGES
    assert page.images[:2] == ["https://news.example/img/0.jpg", "https://news.example/img/1.jpg"]


def test_add_image_stops_at_the_cap():
    page = PagePreview()
    for n in range(MAX_CHOICE_IMAGES + 50):
        add_image(page, f"https://a.example/{n % (MAX_CHOICE_IMAGES + 10)}.png")
    assert page.images == [f"https://a.example/{n}.png" for n in range(MAX_CHOICE_IMAGES)]


def test_markup_is_cut_before_a_tag_and_never_inside_a_character():
    head = "<title>Café ☕</title>".encode()
    filler = ("<p>" + "é" * 1000 + "</p>").encode() * (MAX_PARSE_BYTES // 2000)
    late = b'<meta property="og:title" content="too late">'
    markup = head + filler + late
    cut = bounded_markup(markup)
    assert len(cut) <= MAX_PARSE_BYTES and cut.endswith(b"</p>") and cut.decode("utf-8")
    page = parse_page(markup, BASE)
    assert page.title == "Café ☕"  # still sniffed as UTF-8: no character was split
    assert bounded_markup("<a>" * 10, 7) == "<a><a>" and bounded_markup(b"x" * 10, 4) == b"xxxx"


@pytest.mark.parametrize("text", ["[" * 100_000, '{"a":' * 100_000, "[" * 65 + "]" * 65])
def test_deep_json_is_a_value_error_not_a_recursion_error(text):
    with pytest.raises(ValueError):
        load_json(text)
    with pytest.raises(ValueError):
        read_oembed(text.encode(), "vimeo.com")


@pytest.mark.parametrize("text", ['{"width": ' + "9" * 5000 + "}", '{"width": 99999999999999999999999}',
                                  '{"width": NaN}', '{"width": -Infinity}', '{"width": 1e999}'])
def test_json_numbers_out_of_range_are_refused(text):
    with pytest.raises(ValueError):
        load_json(text)


def test_load_json_reads_ordinary_json_and_ignores_brackets_in_strings():
    text = '{"title": "' + "[{" * 100 + '\\"]", "nested": [[[1]]], "width": 640, "ratio": 1.5}'
    assert load_json(text.encode("utf-16")) == {"title": "[{" * 100 + '"]', "nested": [[[1]]], "width": 640,
                                               "ratio": 1.5}  # an escaped quote does not end the string
    assert load_json("[" * 64 + "]" * 64) is not None


def test_read_oembed_rebuilds_the_player_and_drops_huge_ones():
    body = b'{"type": "video", "html": "<iframe src=\\"https://player.vimeo.com/video/1\\"></iframe>"}'
    assert read_oembed(body, "vimeo.com").html == '<iframe src="https://player.vimeo.com/video/1"></iframe>'
    huge = ('{"html": "<iframe src=\\"https://player.vimeo.com/video/1\\" title=\\"' + "x" * 100_000
            + '\\"></iframe>"}')
    assert read_oembed(huge.encode(), "vimeo.com").html is None


def test_parse_oembed():
    data = {"type": "video", "version": "1.0", "url": "https://v.example/1", "width": "640", "height": 360.0,
            "duration": 62, "html": "<iframe></iframe>", "thumbnail_url": "https://v.example/t.jpg",
            "title": "Film", "provider_name": "Vimeo", "description": ["not", "text"]}
    assert parse_oembed(data) == OEmbed(type="video", url="https://v.example/1", width=640, height=360, duration=62,
                                        html="<iframe></iframe>", thumbnail_url="https://v.example/t.jpg",
                                        title="Film", provider_name="Vimeo", description=None)
    assert parse_oembed(["not", "a", "dict"]) == OEmbed()
    assert parse_oembed({"width": -5, "height": True, "title": 3}) == OEmbed()
    assert parse_oembed({"width": float("inf"), "height": float("nan"), "duration": 10**30}) == OEmbed()
    assert parse_oembed({"title": "t" * 10_000}).title == "t" * 500


VIMEO_PLAYER = ('<iframe src="https://player.vimeo.com/video/76979871?h=8272103f6e" width="640" height="360" '
                'frameborder="0" allow="autoplay; fullscreen; camera" allowfullscreen title="A Vimeo film" '
                'referrerpolicy="strict-origin-when-cross-origin" onload="alert(1)" style="x" sandbox="" '
                'srcdoc="&lt;script&gt;alert(1)&lt;/script&gt;"></iframe>')


def test_player_from_the_provider_subdomain_is_rebuilt_with_allowlisted_attributes():
    assert sanitize_oembed_html(VIMEO_PLAYER, "vimeo.com") == (
        '<iframe src="https://player.vimeo.com/video/76979871?h=8272103f6e" width="640" height="360" '
        'frameborder="0" allow="autoplay; fullscreen" allowfullscreen title="A Vimeo film" '
        'referrerpolicy="strict-origin-when-cross-origin"></iframe>')


@pytest.mark.parametrize("markup", [
    '<iframe src="http://player.vimeo.com/video/1"></iframe>',  # not https
    '<iframe src="https://player.evil.example/video/1"></iframe>',  # another domain
    '<iframe src="https://evilvimeo.com/video/1"></iframe>',  # a look-alike, not a subdomain
    '<iframe src="https://vimeo.com.evil.example/"></iframe>',
    '<iframe src="https://user@player.vimeo.com/"></iframe>',
    '<iframe src="javascript:alert(1)//player.vimeo.com"></iframe>',
    '<iframe src="//player.vimeo.com/video/1"></iframe>',  # scheme-relative
    '<iframe srcdoc="<script>alert(1)</script>"></iframe>',
    '<script src="https://player.vimeo.com/x.js"></script>',
    '<img src="https://player.vimeo.com/x.png" onerror="alert(1)">',
    '<div>no player</div>', "", None,
])
def test_unacceptable_players_are_refused(markup):
    assert sanitize_oembed_html(markup, "vimeo.com") is None


def test_only_the_iframe_survives_and_values_are_escaped():
    markup = ('<script>alert(1)</script><div onclick="x()"><iframe src="https://player.vimeo.com/v?a=1&b=2" '
              'title=\'"><script>alert(1)</script>\' width="100%" height="1e9" onload="x()"></iframe></div>'
              '<iframe src="https://player.vimeo.com/second"></iframe>')
    assert sanitize_oembed_html(markup, "vimeo.com") == (
        '<iframe src="https://player.vimeo.com/v?a=1&amp;b=2" width="100%" '
        'title="&quot;&gt;&lt;script&gt;alert(1)&lt;/script&gt;"></iframe>')


def test_vimeo_urls():
    for url in ("https://vimeo.com/76979871", "http://vimeo.com/1", "https://player.vimeo.com/video/1",
                "https://VIMEO.com/1"):
        assert is_vimeo_url(url), url
    for url in ("https://evilvimeo.com/1", "https://vimeo.com.evil.example/1", "ftp://vimeo.com/1",
                "https://evil.example\\@vimeo.com/", "https://user@vimeo.com/1", "vimeo.com/1", ""):
        assert not is_vimeo_url(url), url
