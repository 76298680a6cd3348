"""workers.image_attributes on real images made here with Pillow: what DatoCMS shows
on an upload (blurhash, thumbhash, dominant colours, a safe EXIF subset)."""
from __future__ import annotations

import base64
import json

import blurhash
import pytest
import thash
from PIL import Image, ImageDraw
from PIL.TiffImagePlugin import IFDRational

from gateway.core.sniff import NotAnImage
from tests.large_images import bomb_png_bytes
from workers.image_attributes import MAX_TEXT, decode_cost, image_attributes

RED, BLUE, GREEN = (200, 30, 30), (20, 40, 220), (10, 200, 10)
GPS_IFD, EXIF_IFD, MAKER_NOTE = 0x8825, 0x8769, 0x927C


def camera_exif(orientation: int = 1, overrides: dict | None = None) -> Image.Exif:
    """EXIF as a phone writes it: camera, lens, exposure, date, plus GPS and a maker note."""
    exif = Image.Exif()
    exif[0x010F], exif[0x0110], exif[0x0112] = "Canon", "Canon EOS 5D Mark IV\x00", orientation
    details = exif.get_ifd(EXIF_IFD)
    details.update({0x829A: IFDRational(1, 60), 0x829D: IFDRational(28, 10), 0x8827: 400,
                    0x9003: "2024:05:01 12:34:56", 0x9011: "+02:00", 0x920A: IFDRational(35, 1),
                    0xA433: "Canon", 0xA434: "EF35mm f/1.4L USM", MAKER_NOTE: b"\x00\x01secret-serial"})
    details.update(overrides or {})
    gps = exif.get_ifd(GPS_IFD)
    gps.update({1: "N", 2: (IFDRational(45, 1), IFDRational(27, 1), IFDRational(0, 1)), 3: "E",
                4: (IFDRational(9, 1), IFDRational(11, 1), IFDRational(0, 1))})
    return exif


def two_colours(width: int = 400, height: int = 300, main=RED, other=BLUE, mode: str = "RGB") -> Image.Image:
    """``main`` on the left three quarters, ``other`` on the right quarter."""
    img = Image.new(mode, (width, height), main)
    ImageDraw.Draw(img).rectangle((width * 3 // 4, 0, width - 1, height - 1), fill=other)
    return img


def close_to(actual, expected, tolerance: int = 30) -> bool:
    return all(abs(a - e) <= tolerance for a, e in zip(actual, expected))


def rgb(colour: dict) -> tuple[int, int, int]:
    return colour["red"], colour["green"], colour["blue"]


def test_photo_exif_keeps_the_camera_and_drops_gps_and_maker_notes(tmp_path):
    path = tmp_path / "photo.jpg"
    two_colours(300, 200).save(path, "JPEG", exif=camera_exif(orientation=6).tobytes())
    assert Image.open(path).getexif().get_ifd(GPS_IFD)  # the file really carries a location

    exif = image_attributes(path).exif

    assert exif == {"make": "Canon", "model": "Canon EOS 5D Mark IV", "orientation": 6,
                    "exposure_time": 0.0166667, "f_number": 2.8, "iso": 400,
                    "date_time_original": "2024-05-01T12:34:56+02:00", "focal_length": 35,
                    "lens_make": "Canon", "lens_model": "EF35mm f/1.4L USM",
                    "width": 200, "height": 300}  # stored 300x200, shown turned a quarter
    assert json.loads(json.dumps(exif)) == exif
    assert "secret-serial" not in json.dumps(exif) and not any("gps" in key.lower() for key in exif)


def test_exif_strings_are_capped_and_binary_or_broken_values_left_out(tmp_path):
    path = tmp_path / "odd.jpg"
    exif = camera_exif(overrides={0xA434: "L" * 5000, 0x9003: "yesterday", 0x829D: IFDRational(1, 0),
                                  0x8827: (100, 200)})
    exif[0x0110] = "\x01\x02"  # a model of control characters only
    Image.new("RGB", (40, 30), RED).save(path, "JPEG", exif=exif.tobytes())

    found = image_attributes(path).exif

    assert found["lens_model"] == "L" * MAX_TEXT and found["iso"] == 100
    assert "date_time_original" not in found and "f_number" not in found and "model" not in found


def test_hashes_are_those_of_the_reference_encoders(tmp_path):
    """Expected values from the reference encoders on the same pixels: ThumbHash from
    evanw's JavaScript (npm thumbhash 0.1.1), BlurHash from Wolt's C encoder (PyPI
    blurhash-python 1.2.2). A picture this small is hashed as it is."""
    path = tmp_path / "gradient.png"
    img = Image.new("RGB", (32, 24))
    img.putdata([(x * 8, y * 10, 255 - x * 4) for y in range(24) for x in range(32)])
    img.save(path, "PNG")

    found = image_attributes(path)

    assert found.thumbhash == "pBUKbZpzd4eAeIiHiHiHh4CECPeI"
    assert found.blurhash == "LxH28X2zw$XAmIWYjuf8gJfjfQfj"


def test_two_colour_image_lists_its_dominant_colour_first(tmp_path):
    path = tmp_path / "flag.png"
    two_colours().save(path, "PNG")

    colors = image_attributes(path).colors

    assert 1 <= len(colors) <= 5
    assert all(set(c) == {"red", "green", "blue", "alpha"} and all(0 <= v <= 255 for v in c.values())
               for c in colors)
    assert close_to(rgb(colors[0]), RED, 8) and colors[0]["alpha"] == 255
    assert any(close_to(rgb(c), BLUE, 8) for c in colors[1:])


def test_dominant_colour_of_a_jpeg_survives_compression(tmp_path):
    path = tmp_path / "flag.jpg"
    two_colours().save(path, "JPEG", quality=80)
    colors = image_attributes(path).colors
    assert close_to(rgb(colors[0]), RED) and any(close_to(rgb(c), BLUE) for c in colors)


def test_blurhash_decodes_to_the_colours_where_they_were(tmp_path):
    path = tmp_path / "flag.jpg"
    two_colours().save(path, "JPEG")

    hashed = image_attributes(path).blurhash

    assert blurhash.components(hashed) == (4, 3)  # landscape: more detail along the width
    pixels = blurhash.decode(hashed, 32, 24)
    assert (len(pixels), len(pixels[0])) == (24, 32)
    left, right = pixels[12][4], pixels[12][30]
    assert left[0] > left[2] + 80, left  # red where the red was
    assert right[2] > right[0] + 40, right  # blue where the blue was


def test_thumbhash_is_base64_of_a_thumbhash_with_the_shown_aspect_and_colour(tmp_path):
    path = tmp_path / "portrait.jpg"
    Image.new("RGB", (300, 200), RED).save(path, "JPEG", exif=camera_exif(orientation=6).tobytes())

    hashed = image_attributes(path).thumbhash
    raw = list(base64.b64decode(hashed, validate=True))

    assert base64.b64encode(bytes(raw)).decode() == hashed  # standard alphabet, padded, as DatoCMS shows it
    assert thash.thumb_hash_to_approximate_aspect_ratio(raw) < 1  # shown upright, not as stored
    average = [round(v * 255) for v in thash.thumb_hash_to_average_rgba(raw)]
    assert close_to(average[:3], RED) and average[3] == 255


def test_png_with_alpha_keeps_alpha_in_the_thumbhash_and_ignores_invisible_pixels(tmp_path):
    path = tmp_path / "logo.png"
    img = Image.new("RGBA", (120, 60), (0, 0, 0, 0))  # transparent black, like most logos
    img.paste((*GREEN, 255), (0, 0, 60, 60))
    img.save(path, "PNG")

    found = image_attributes(path)

    assert [rgb(c) for c in found.colors] == [GREEN] and found.colors[0]["alpha"] >= 250
    raw = list(base64.b64decode(found.thumbhash))
    assert thash.thumb_hash_to_average_rgba(raw)[3] < 1  # the placeholder is partly transparent
    pixels = blurhash.decode(found.blurhash, 12, 6)
    assert min(pixels[3][10]) > 150  # transparent areas sit on white, not black
    assert found.exif == {"width": 120, "height": 60}


def test_a_file_that_is_not_an_image_is_refused(tmp_path):
    path = tmp_path / "paper.pdf"
    path.write_bytes(b"%PDF-1.4 not an image at all")
    with pytest.raises(NotAnImage) as refused:
        image_attributes(path)
    assert refused.value.reason == "not_an_image"


@pytest.mark.parametrize("fmt", ["JPEG", "PNG"])
def test_truncated_image_is_corrupt(tmp_path, fmt):
    path = tmp_path / "cut"
    Image.effect_noise((800, 600), 64).save(path, fmt)
    path.write_bytes(path.read_bytes()[:5000])  # the header parses, the pixels are cut off
    with pytest.raises(NotAnImage) as refused:
        image_attributes(path)
    assert refused.value.reason == "corrupt_image"


def test_pixel_cap_refuses_before_decoding(tmp_path):
    path = tmp_path / "bomb.png"
    path.write_bytes(bomb_png_bytes(20000, 20000))
    with pytest.raises(NotAnImage) as refused:
        decode_cost(path, max_pixels=50_000_000)
    assert refused.value.reason == "too_many_pixels"
    with pytest.raises(NotAnImage) as refused:
        image_attributes(path, max_pixels=50_000_000)
    assert refused.value.reason == "too_many_pixels"


def test_big_jpeg_is_decoded_small(tmp_path):
    """DCT scaling: a 4000x3000 JPEG is decoded at an eighth, so the budget asks for little."""
    path = tmp_path / "big.jpg"
    two_colours(4000, 3000).save(path, "JPEG")
    assert decode_cost(path) < 4000 * 3000 * 4 // 2  # under half of one full-size RGBA copy
    found = image_attributes(path)
    assert (found.exif["width"], found.exif["height"]) == (4000, 3000) and close_to(rgb(found.colors[0]), RED)
