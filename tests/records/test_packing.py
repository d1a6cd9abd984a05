"""Compression of originals and indexed text: new data is Zstandard, data written by earlier versions (zlib)
stays readable, and damage in either codec is caught by the hash check, never returned as the original."""
from __future__ import annotations

import hashlib
import zlib
from pathlib import Path

import pytest

from civicaup.records import packing, segments


def _sha(raw: bytes) -> str:
    return hashlib.sha256(raw).hexdigest()


RAW = b"Subject: minutes\n\n" + b"The council approved the sidewalk contract.\n" * 200


def test_new_originals_are_zstandard_and_read_back_exactly(tmp_path: Path) -> None:
    with segments.Writer(tmp_path) as w:
        loc = w.put(_sha(RAW), RAW)
    [entry] = segments.scan(segments.segment_path(tmp_path, loc.segment))
    assert entry.flags & segments.ZSTD and not entry.flags & segments.COMPRESSED
    assert entry.length < len(RAW) / 10
    assert segments.read_record(tmp_path, loc, _sha(RAW)) == RAW


def test_originals_written_as_zlib_by_earlier_versions_stay_readable(tmp_path: Path) -> None:
    old = zlib.compress(RAW, 1)
    with segments.Writer(tmp_path) as w:
        loc = w.append(_sha(RAW), old, len(RAW), segments.COMPRESSED)
    assert segments.read_record(tmp_path, loc, _sha(RAW)) == RAW
    assert segments.read_record(tmp_path, loc, _sha(RAW), payload_only=True) == old  # compaction copies as is


@pytest.mark.parametrize("flags, payload", [(segments.ZSTD, packing.compress(RAW)),
                                            (segments.COMPRESSED, zlib.compress(RAW, 1))])
def test_a_damaged_compressed_payload_fails_the_hash_check(tmp_path: Path, flags: int, payload: bytes) -> None:
    with segments.Writer(tmp_path) as w:
        loc = w.append(_sha(RAW), payload, len(RAW), flags)
    path = segments.segment_path(tmp_path, loc.segment)
    with open(path, "r+b") as fh:
        fh.seek(loc.offset + segments.HEADER.size)  # the codec's own header: neither stream decodes
        fh.write(b"\x00\x00\x00\x00")
    with pytest.raises(segments.BlobError, match="hash check"):
        segments.read_record(tmp_path, loc, _sha(RAW))


def test_indexed_text_round_trips_in_both_codecs() -> None:
    subject, body = "Zoning variance", "Späte Antwort — the variance hearing is Tuesday.\n" * 50
    new = packing.pack_text(subject, body)
    assert new.startswith(packing.ZSTD_MAGIC)
    assert packing.unpack_text(new) == (subject, body)
    earlier = zlib.compress(f"{subject}\x00{body}".encode("utf-8"), 1)  # what text_z held before
    assert packing.unpack_text(earlier) == (subject, body)
    with pytest.raises(packing.ERRORS):
        packing.decompress(b"neither codec")
