"""workers.imaging on real files made here with Pillow (no network, no servers)."""
from __future__ import annotations

import io
import struct
import time
import warnings
import wave

import pytest
from PIL import Image, ImageCms, ImageDraw, ImageFile

from tests.large_images import bomb_png_bytes
from gateway.core.sniff import NotAnImage as ImageRejected
from gateway.core.sniff import kind_for_mime
from gateway.core.sniff import probe_file as probe
from workers.imaging import ACCEPTED_FORMATS, DEFAULT_SIZES, make_thumbnails

RED, GREEN, BLUE, YELLOW = (255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 0)
CONTENT_TYPES = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp"}


# ----------------------------------------------------------------------------- helpers

def quadrants(width: int, height: int) -> Image.Image:
    """Stored top-left red, top-right green, bottom-left blue, bottom-right yellow."""
    img = Image.new("RGB", (width, height))
    draw = ImageDraw.Draw(img)
    half_w, half_h = width // 2, height // 2
    draw.rectangle((0, 0, half_w - 1, half_h - 1), fill=RED)
    draw.rectangle((half_w, 0, width - 1, half_h - 1), fill=GREEN)
    draw.rectangle((0, half_h, half_w - 1, height - 1), fill=BLUE)
    draw.rectangle((half_w, half_h, width - 1, height - 1), fill=YELLOW)
    return img


def save(img: Image.Image, path, fmt: str, **options):
    img.save(path, fmt, **options)
    return path


def opened(thumb) -> Image.Image:
    img = Image.open(io.BytesIO(thumb.data))
    img.load()
    return img


def corner(img: Image.Image, where: str) -> tuple:
    x = img.width // 4 if where[1] == "L" else img.width * 3 // 4
    y = img.height // 4 if where[0] == "T" else img.height * 3 // 4
    return img.convert("RGB").getpixel((x, y))


def close_to(actual, expected, tolerance: int = 40) -> bool:
    return all(abs(a - e) <= tolerance for a, e in zip(actual, expected))


def assert_thumbnail_set(thumbs, width: int, height: int, fmt: str, sizes=DEFAULT_SIZES):
    """Every size present in order, fitted to its square, never upscaled, aspect kept,
    and the bytes really are that image."""
    assert [t.size for t in thumbs] == list(sizes)
    long_side, short_side = max(width, height), min(width, height)
    for thumb in thumbs:
        expected_long = min(thumb.size, long_side)
        expected_short = max(1, round(short_side * expected_long / long_side))
        assert max(thumb.width, thumb.height) == expected_long, thumb
        assert abs(min(thumb.width, thumb.height) - expected_short) <= 1, thumb
        assert thumb.width <= width and thumb.height <= height, "upscaled"
        assert (thumb.width >= thumb.height) == (width >= height), "orientation of the box lost"
        assert thumb.format == fmt and thumb.content_type == CONTENT_TYPES[fmt]
        img = opened(thumb)
        assert img.format == fmt and img.size == (thumb.width, thumb.height)


@pytest.fixture(scope="module")
def bomb_png(tmp_path_factory):
    path = tmp_path_factory.mktemp("bomb") / "bomb.png"
    path.write_bytes(bomb_png_bytes(20000, 20000))
    return path


# ----------------------------------------------------------------------------- EXIF orientation

# Where the stored top-left (red) and top-right (green) corners must be seen, straight
# from the EXIF definition of each orientation value.
SEEN_AT = {
    1: ("TL", "TR"), 2: ("TR", "TL"), 3: ("BR", "BL"), 4: ("BL", "BR"),
    5: ("TL", "BL"), 6: ("TR", "BR"), 7: ("BR", "TR"), 8: ("BL", "TL"),
}


@pytest.mark.parametrize("orientation", range(1, 9))
def test_jpeg_exif_orientation_is_applied(tmp_path, orientation):
    exif = Image.Exif()
    exif[0x0112] = orientation
    path = save(quadrants(300, 200), tmp_path / "photo.jpg", "JPEG", quality=95, exif=exif.tobytes())
    swapped = orientation >= 5
    width, height = (200, 300) if swapped else (300, 200)

    info = probe(path)
    assert (info.mime_type, info.kind, info.mode) == ("image/jpeg", "image", "RGB")
    assert (info.width, info.height) == (width, height)
    assert info.size == path.stat().st_size

    thumbs = make_thumbnails(path)
    assert_thumbnail_set(thumbs, width, height, "JPEG")
    red_at, green_at = SEEN_AT[orientation]
    for thumb in thumbs[1:]:  # 64 px is too coarse for JPEG colour at quarter points
        img = opened(thumb)
        assert close_to(corner(img, red_at), RED), (thumb.size, corner(img, red_at))
        assert close_to(corner(img, green_at), GREEN), (thumb.size, corner(img, green_at))
        # the orientation is baked in, so no viewer may rotate it a second time
        assert img.getexif().get(0x0112) is None


def test_thumbnails_carry_no_source_metadata(tmp_path):
    exif = Image.Exif()
    exif[0x010F] = "SecretCam"  # Make
    path = save(quadrants(120, 80), tmp_path / "meta.jpg", "JPEG", exif=exif.tobytes(), comment=b"private note")
    for thumb in make_thumbnails(path):
        img = opened(thumb)
        assert "exif" not in img.info and "comment" not in img.info
        assert b"SecretCam" not in thumb.data and b"private note" not in thumb.data


# ----------------------------------------------------------------------------- modes and formats

def test_cmyk_jpeg_becomes_rgb_jpeg_with_right_colours(tmp_path):
    path = save(Image.new("CMYK", (400, 300), (0, 255, 255, 0)), tmp_path / "print.jpg", "JPEG",
                icc_profile=b"not an RGB profile")
    info = probe(path)
    assert (info.kind, info.mode, info.width, info.height) == ("image", "CMYK", 400, 300)

    thumbs = make_thumbnails(path)
    assert_thumbnail_set(thumbs, 400, 300, "JPEG")
    for thumb in thumbs:
        img = opened(thumb)
        assert img.mode == "RGB"
        assert close_to(img.getpixel((img.width // 2, img.height // 2)), RED)
        assert "icc_profile" not in img.info  # a CMYK profile would misdescribe RGB pixels


def test_rgb_icc_profile_is_kept(tmp_path):
    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    path = save(quadrants(600, 400), tmp_path / "p3.jpg", "JPEG", icc_profile=srgb)
    for thumb in make_thumbnails(path):
        assert opened(thumb).info.get("icc_profile") == srgb


def test_palette_png_with_transparency_keeps_alpha_as_png(tmp_path):
    img = Image.new("P", (200, 100), 0)
    img.putpalette([0, 0, 0, 255, 0, 0] + [0] * 762)
    ImageDraw.Draw(img).rectangle((100, 0, 199, 99), fill=1)  # right half red, left transparent
    path = save(img, tmp_path / "logo.png", "PNG", transparency=0)
    info = probe(path)
    assert (info.mime_type, info.kind, info.mode) == ("image/png", "image", "P")

    thumbs = make_thumbnails(path)
    assert_thumbnail_set(thumbs, 200, 100, "PNG")
    for thumb in thumbs:
        out = opened(thumb)
        assert out.mode == "RGBA"
        assert out.getpixel((out.width // 4, out.height // 2))[3] == 0
        assert out.getpixel((out.width * 3 // 4, out.height // 2)) == (255, 0, 0, 255)


def test_rgba_png_keeps_partial_alpha(tmp_path):
    path = save(Image.new("RGBA", (640, 480), (10, 200, 30, 128)), tmp_path / "glass.png", "PNG")
    assert probe(path).mode == "RGBA"
    thumbs = make_thumbnails(path)
    assert_thumbnail_set(thumbs, 640, 480, "PNG")
    for thumb in thumbs:
        assert close_to(opened(thumb).getpixel((5, 5)), (10, 200, 30, 128), tolerance=2)


def test_opaque_rgba_png_becomes_jpeg(tmp_path):
    # An alpha band that hides nothing is not worth PNG's bytes for a photo.
    path = save(quadrants(640, 480).convert("RGBA"), tmp_path / "opaque.png", "PNG")
    thumbs = make_thumbnails(path)
    assert_thumbnail_set(thumbs, 640, 480, "JPEG")
    assert close_to(corner(opened(thumbs[-1]), "TL"), RED)


def test_transparent_tiff_is_flattened_onto_white_jpeg(tmp_path):
    img = Image.new("RGBA", (300, 300), (0, 0, 255, 255))
    ImageDraw.Draw(img).rectangle((0, 0, 149, 299), fill=(0, 0, 0, 0))
    path = save(img, tmp_path / "cutout.tif", "TIFF")
    assert probe(path).mime_type == "image/tiff"
    thumbs = make_thumbnails(path)
    assert_thumbnail_set(thumbs, 300, 300, "JPEG")
    out = opened(thumbs[-1])
    assert close_to(corner(out, "TL"), (255, 255, 255)) and close_to(corner(out, "TR"), BLUE)


def test_animated_gif_uses_first_frame(tmp_path):
    frames = [Image.new("RGB", (160, 120), colour) for colour in (RED, GREEN, BLUE)]
    path = tmp_path / "anim.gif"
    frames[0].save(path, "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
    info = probe(path)
    assert (info.mime_type, info.kind, info.width, info.height) == ("image/gif", "image", 160, 120)
    thumbs = make_thumbnails(path)
    assert_thumbnail_set(thumbs, 160, 120, "JPEG")
    for thumb in thumbs:
        assert close_to(opened(thumb).getpixel((10, 10)), RED)


def test_webp_with_alpha_stays_webp_with_alpha(tmp_path):
    img = Image.new("RGBA", (400, 200), (0, 0, 0, 0))
    ImageDraw.Draw(img).rectangle((200, 0, 399, 199), fill=(0, 255, 0, 255))
    path = save(img, tmp_path / "sticker.webp", "WEBP", lossless=True)
    info = probe(path)
    assert (info.mime_type, info.kind, info.mode) == ("image/webp", "image", "RGBA")
    thumbs = make_thumbnails(path)
    assert_thumbnail_set(thumbs, 400, 200, "WEBP")
    for thumb in thumbs:
        out = opened(thumb)
        assert out.mode == "RGBA"
        assert out.getpixel((out.width // 8, out.height // 2))[3] == 0
        assert close_to(out.getpixel((out.width * 7 // 8, out.height // 2)), (0, 255, 0, 255))


def test_sixteen_bit_grayscale_is_scaled_not_clipped(tmp_path):
    path = save(Image.new("I;16", (300, 100), 40000), tmp_path / "scan.png", "PNG")
    assert probe(path).mode == "I;16"
    thumbs = make_thumbnails(path)
    assert_thumbnail_set(thumbs, 300, 100, "JPEG")
    out = opened(thumbs[0])
    assert out.mode == "L"
    assert abs(out.getpixel((10, 10)) - 40000 // 257) <= 3


def test_bilevel_bmp(tmp_path):
    img = Image.new("1", (256, 64), 0)
    ImageDraw.Draw(img).rectangle((128, 0, 255, 63), fill=1)
    path = save(img, tmp_path / "fax.bmp", "BMP")
    info = probe(path)
    assert (info.kind, info.mode) == ("image", "1")
    assert info.mime_type in ("image/bmp", "image/x-ms-bmp")
    thumbs = make_thumbnails(path)
    assert_thumbnail_set(thumbs, 256, 64, "JPEG")
    out = opened(thumbs[1])
    assert out.mode == "L" and out.getpixel((5, 5)) < 30 and out.getpixel((out.width - 5, 5)) > 225


# ----------------------------------------------------------------------------- sizes

def test_one_pixel_image_is_never_upscaled(tmp_path):
    path = save(Image.new("RGB", (1, 1), BLUE), tmp_path / "dot.png", "PNG")
    thumbs = make_thumbnails(path)
    assert_thumbnail_set(thumbs, 1, 1, "JPEG")
    assert all((t.width, t.height) == (1, 1) for t in thumbs)


def test_small_image_gives_every_size_at_its_own_size(tmp_path):
    path = save(quadrants(100, 60), tmp_path / "small.jpg", "JPEG")
    thumbs = make_thumbnails(path)
    assert_thumbnail_set(thumbs, 100, 60, "JPEG")
    assert [(t.width, t.height) for t in thumbs] == [(64, 38), (100, 60), (100, 60), (100, 60)]


def test_long_strip_keeps_at_least_one_pixel(tmp_path):
    path = save(Image.new("RGB", (10000, 10), GREEN), tmp_path / "strip.png", "PNG")
    thumbs = make_thumbnails(path)
    assert_thumbnail_set(thumbs, 10000, 10, "JPEG")
    for thumb in thumbs:
        assert thumb.width == thumb.size and thumb.height >= 1


def test_sizes_are_deduplicated_in_caller_order_and_validated(tmp_path):
    path = save(quadrants(500, 500), tmp_path / "square.jpg", "JPEG")
    thumbs = make_thumbnails(path, (128, 32, 128, 300))
    assert [(t.size, t.width) for t in thumbs] == [(128, 128), (32, 32), (300, 300)]
    for bad in ((), (0,), (64, -1), (12.5,)):
        with pytest.raises(ValueError):
            make_thumbnails(path, bad)


def test_large_jpeg_is_decoded_scaled_down(tmp_path, monkeypatch):
    # The speed of the worker comes from libjpeg's DCT scaling: the full 4800x3200
    # pixels must never be decoded for a 1080 px thumbnail, yet enough remain for it.
    from PIL import JpegImagePlugin

    path = save(quadrants(4800, 3200), tmp_path / "camera.jpg", "JPEG", quality=80)
    decoded = []
    real_load = JpegImagePlugin.JpegImageFile.load
    monkeypatch.setattr(JpegImagePlugin.JpegImageFile, "load", lambda self: decoded.append(self.size) or real_load(self))
    thumbs = make_thumbnails(path)
    (width, height), = set(decoded)  # before reopening the thumbnails adds theirs
    assert width * height <= 4800 * 3200 // 4
    assert width >= 1080 and height >= 720
    assert_thumbnail_set(thumbs, 4800, 3200, "JPEG")
    assert close_to(corner(opened(thumbs[-1]), "BR"), YELLOW)


# ----------------------------------------------------------------------------- rejections

def test_truncated_jpeg_is_corrupt(tmp_path):
    whole = io.BytesIO()
    Image.effect_noise((800, 600), 64).convert("RGB").save(whole, "JPEG", quality=90)
    path = tmp_path / "cut.jpg"
    path.write_bytes(whole.getvalue()[: len(whole.getvalue()) // 2])
    info = probe(path)  # the header is intact, so probing still describes it
    assert (info.kind, info.width, info.height) == ("image", 800, 600)
    with pytest.raises(ImageRejected) as caught:
        make_thumbnails(path)
    assert caught.value.reason == "corrupt_image"
    assert not ImageFile.LOAD_TRUNCATED_IMAGES


def test_decompression_bomb_is_refused_before_decoding(bomb_png, monkeypatch):
    assert bomb_png.stat().st_size < 200_000
    limit_before = Image.MAX_IMAGE_PIXELS

    def no_decoding(self):
        raise AssertionError("pixels were decoded")

    monkeypatch.setattr(ImageFile.ImageFile, "load", no_decoding)
    started = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # Pillow's DecompressionBombWarning must not escape either
        with pytest.raises(ImageRejected) as caught:
            make_thumbnails(bomb_png)
    assert caught.value.reason == "too_many_pixels"
    assert time.perf_counter() - started < 1.0
    assert Image.MAX_IMAGE_PIXELS == limit_before


def test_probe_reports_a_bomb_without_raising_or_decoding(bomb_png, monkeypatch):
    monkeypatch.setattr(ImageFile.ImageFile, "load", lambda self: pytest.fail("pixels were decoded"))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        info = probe(bomb_png)
    assert (info.mime_type, info.kind, info.width, info.height, info.mode) == ("image/png", "image", 20000, 20000, "1")


def test_max_pixels_is_inclusive_per_call_limit(tmp_path):
    path = save(quadrants(300, 200), tmp_path / "photo.jpg", "JPEG")
    with pytest.raises(ImageRejected) as caught:
        make_thumbnails(path, max_pixels=300 * 200 - 1)
    assert caught.value.reason == "too_many_pixels"
    assert len(make_thumbnails(path, max_pixels=300 * 200)) == len(DEFAULT_SIZES)


def test_text_renamed_jpg_is_text_not_an_image(tmp_path):
    path = tmp_path / "holiday.jpg"
    path.write_text("Dear diary,\nthis is not a photo at all.\n")
    info = probe(path)
    assert (info.mime_type, info.kind, info.width, info.height, info.mode) == ("text/plain", "text", None, None, None)
    with pytest.raises(ImageRejected) as caught:
        make_thumbnails(path)
    assert caught.value.reason == "not_an_image"


def test_svg_is_a_document_and_never_decoded(tmp_path):
    path = tmp_path / "icon.svg"
    path.write_text('<svg xmlns="http://www.w3.org/2000/svg" width="64" height="64">'
                    "<script>alert(document.cookie)</script><rect width='64' height='64'/></svg>")
    info = probe(path)
    assert (info.mime_type, info.kind, info.width, info.height) == ("image/svg+xml", "document", None, None)
    with pytest.raises(ImageRejected) as caught:
        make_thumbnails(path)
    assert caught.value.reason == "not_an_image"


def test_unaccepted_image_format_is_not_an_image(tmp_path):
    path = save(Image.new("RGB", (32, 32), RED), tmp_path / "favicon.ico", "ICO")
    assert "ICO" not in ACCEPTED_FORMATS
    info = probe(path)
    assert info.kind == "other" and info.width is None
    with pytest.raises(ImageRejected) as caught:
        make_thumbnails(path)
    assert caught.value.reason == "not_an_image"


def test_file_with_image_magic_but_broken_header_is_other(tmp_path):
    path = tmp_path / "broken.png"
    ihdr = b"IHDR" + struct.pack(">IIBBBBB", 64, 64, 8, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + ihdr + b"BAD!" + b"\x00" * 40)  # wrong CRC
    info = probe(path)
    assert info.mime_type == "image/png" and (info.kind, info.width, info.mode) == ("other", None, None)
    with pytest.raises(ImageRejected) as caught:
        make_thumbnails(path)
    assert caught.value.reason == "not_an_image"


# ----------------------------------------------------------------------------- other kinds

def test_pdf_is_a_document(tmp_path):
    path = tmp_path / "report.bin"
    path.write_bytes(b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n")
    info = probe(path)
    assert (info.mime_type, info.kind, info.width) == ("application/pdf", "document", None)
    assert info.size == path.stat().st_size


def test_audio_and_video_kinds(tmp_path):
    sound = tmp_path / "beep"
    with wave.open(str(sound), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(8000)
        out.writeframes(b"\x00\x01" * 800)
    movie = tmp_path / "clip"
    movie.write_bytes(b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom" + b"\x00\x00\x00\x08free")
    assert probe(sound).kind == "audio" and probe(sound).mime_type.startswith("audio/")
    assert (probe(movie).mime_type, probe(movie).kind) == ("video/mp4", "video")


def test_mime_is_sniffed_from_the_head_only(tmp_path, monkeypatch):
    import magic

    seen = []
    real = magic.from_buffer
    monkeypatch.setattr(magic, "from_buffer", lambda buffer, **kw: seen.append(len(buffer)) or real(buffer, **kw))
    path = tmp_path / "big.txt"
    path.write_bytes(b"plain words\n" * 100_000)  # 1.2 MB
    info = probe(path)
    assert (info.mime_type, info.kind, info.size) == ("text/plain", "text", 1_200_000)
    assert seen == [256 * 1024]


@pytest.mark.parametrize("mime, kind", [
    ("image/jpeg", "image"), ("image/heic", "other"), ("image/svg+xml", "document"),
    ("video/quicktime", "video"), ("audio/mpeg", "audio"), ("text/html", "text"), ("text/rtf", "document"),
    ("application/vnd.openxmlformats-officedocument.wordprocessingml.document", "document"),
    ("application/vnd.oasis.opendocument.text", "document"), ("application/epub+zip", "document"),
    ("application/json", "text"), ("application/zip", "other"), ("application/octet-stream", "other"),
])
def test_kind_for_mime(mime, kind):
    assert kind_for_mime(mime) == kind


def test_header_cut_short_is_not_an_exception_in_probe_and_corrupt_for_thumbnails(tmp_path):
    full = io.BytesIO()
    Image.new("RGB", (40, 30)).save(full, "JPEG", icc_profile=b"\0" * 200_000)
    cut = tmp_path / "cut.jpg"
    cut.write_bytes(full.getvalue()[:100_000])  # ends inside the ICC segments, before the frame header
    found = probe(cut)
    assert (found.mime_type, found.width, found.height) == ("image/jpeg", None, None)
    with pytest.raises(ImageRejected) as rejected:
        make_thumbnails(cut)
    assert rejected.value.reason == "corrupt_image"
