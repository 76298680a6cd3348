"""The running md5 of uploads: OpenSSL's MD5 off the event loop, saved in rehashes' format."""
from __future__ import annotations

import hashlib
import random

import pytest
import rehashes

from gateway.core import resumable_md5
from gateway.core.resumable_md5 import ResumableMd5


@pytest.fixture(params=["openssl", "rehashes"])
def backend(request, monkeypatch):
    if request.param == "rehashes":
        monkeypatch.setattr(resumable_md5, "_LIB", None)
    else:
        assert resumable_md5._LIB is not None, "libcrypto's MD5 should be found on this machine"
    return request.param


async def test_pieces_saved_and_resumed_anywhere_give_hashlibs_md5(backend):
    rng = random.Random(7)
    data = rng.randbytes(3 * 1024 * 1024 + 17)
    md5, at = ResumableMd5(), 0
    while at < len(data):
        size = rng.choice([0, 1, 63, 64, 65, 1000, 64 * 1024, 200 * 1024, 300 * 1024 + 5])
        await md5.add(data[at:at + size])
        at += size
        if rng.random() < 0.3:  # a chunk's end: saved in the session, continued by any instance
            await md5.settled()
            saved = md5.save()
            assert len(saved) == 88
            # rehashes reads the same state: it would finish with the same digest
            assert rehashes.PyMd5.deserialize(saved).finalize() == hashlib.md5(data[:at]).hexdigest()
            md5 = ResumableMd5(saved)
    await md5.settled()
    assert md5.hexdigest() == hashlib.md5(data).hexdigest()
    assert md5.hexdigest() == hashlib.md5(data).hexdigest()  # reading the digest changes nothing


async def test_a_state_saved_by_rehashes_is_continued(backend):
    head, tail = b"x" * 1_000_003, random.Random(1).randbytes(500_000)
    older = rehashes.PyMd5()
    older.update(head)
    md5 = ResumableMd5(older.serialize())
    await md5.add(tail)
    await md5.settled()
    assert md5.hexdigest() == hashlib.md5(head + tail).hexdigest()


def test_counts_past_32_bits_of_length_convert_exactly():
    """A 5 GiB upload has hashed more than 2**32 bits: the count's high word must carry."""
    for blocks, buffered in ((2**26, 0), (2**27 + 3, 17), (80_000_000, 63)):
        saved = (bytes(range(16)) + blocks.to_bytes(8, "little") + bytes([buffered])
                 + bytes(range(100, 100 + buffered)).ljust(63, b"\0"))
        assert ResumableMd5(saved).save() == saved
        assert ResumableMd5(saved).hexdigest() == rehashes.PyMd5.deserialize(saved).finalize()


async def test_any_bytes_like_piece_is_hashed(backend):
    md5 = ResumableMd5()
    await md5.add(bytearray(b"a" * 70_000))
    await md5.add(memoryview(b"b" * 70_000))
    await md5.add(b"c")
    await md5.settled()
    assert md5.hexdigest() == hashlib.md5(b"a" * 70_000 + b"b" * 70_000 + b"c").hexdigest()


def test_what_is_not_a_saved_state_is_refused():
    with pytest.raises(ValueError):
        ResumableMd5(b"\0" * 87)


def test_a_libcrypto_that_hashes_otherwise_is_not_used():
    """The MD5_CTX layout is checked once at import; one that disagrees means rehashes."""
    class Disagreeing:
        def MD5_Update(self, ctx, data, length):
            pass

        def MD5_Final(self, digest, ctx):
            pass

    assert resumable_md5._agrees(resumable_md5._LIB)
    assert not resumable_md5._agrees(Disagreeing())
