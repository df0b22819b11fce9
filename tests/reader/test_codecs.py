"""The codec decoders: framing, boundaries (pieces), damage, sniffing.

Synthetic streams are built by small encoders below that write each codec's exact
framing (SHS_REFERENCE §2.5); the real Spark 4.0.1 logs check that the framing
matches what Spark writes.
"""

from __future__ import annotations

import logging
import random
import struct
from collections.abc import Callable
from pathlib import Path

import lz4.block
import pytest
import xxhash
import zstandard
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sparkhist.errors import CodecError
from sparkhist.reader.codecs import (
    DECODERS,
    Decoder,
    Piece,
    make_decoder,
    matching_codecs,
    resolve_codec,
)
from sparkhist.reader.encoders import (
    ENCODERS,
    LZ4_END,
    LZ4_SEED,
    encode_lz4,
    encode_lzf,
    encode_snappy,
    encode_zstd,
)

EVENTLOGS = Path(__file__).resolve().parents[2].parent / "shared" / "conformance" / "spark-4.0.1" / "eventlogs"
CODECS: list[str | None] = [None, "lz4", "lzf", "snappy", "zstd"]
Damage = Callable[[bytes], bytes]

def sample_text(seed: int, size: int) -> bytes:
    """JSON-ish lines: compressible, like event logs, but not trivially so."""
    rng = random.Random(seed)
    out = bytearray()
    while len(out) < size:
        task_id, pad = rng.randrange(10**9), rng.randbytes(rng.randrange(40)).hex().encode()
        out += b'{"Event":"SparkListenerTaskEnd","Task ID":%d,"Pad":"%s"}\n' % (task_id, pad)
    return bytes(out[:size])


def decode_all(decoder: Decoder, stream: bytes, cuts: list[int] | None = None) -> list[Piece]:
    cuts = sorted(set(cuts or [])) if cuts else []
    bounds = [0, *[c for c in cuts if 0 < c < len(stream)], len(stream)]
    pieces: list[Piece] = []
    for a, b in zip(bounds, bounds[1:], strict=False):
        pieces.extend(decoder.decode(stream[a:b]))
    return pieces


def joined(pieces: list[Piece]) -> bytes:
    return b"".join(p.data for p in pieces)


def assert_resumable(codec: str | None, stream: bytes, pieces: list[Piece]) -> None:
    """Restarting at any piece's resume point reproduces exactly the rest of the data."""
    data = joined(pieces)
    done = 0
    for piece in pieces:
        for k in {0, len(piece.data) // 2, len(piece.data)}:
            offset, skip = piece.resume_point(k)
            rest = joined(decode_all(make_decoder(codec, offset=offset), stream[offset:]))
            assert rest[skip:] == data[done + k :]
        done += len(piece.data)


# --- registry and sniffing -----------------------------------------------------------


def test_registry_has_every_spark_codec() -> None:
    assert set(DECODERS) == {None, "lz4", "lzf", "snappy", "zstd"}


def test_unknown_codec_is_a_codec_error() -> None:
    with pytest.raises(CodecError, match="unsupported codec 'gzip'"):
        make_decoder("gzip", name="f.gz")


@pytest.mark.parametrize(
    ("head", "expected"),
    [
        (b"LZ4Block%\x00", ["lz4"]),
        (b"LZ4", ["lz4"]),
        (b"ZV\x01", ["lzf"]),
        (b"\x82SNAPPY\x00\x00\x00\x00\x01", ["snappy"]),
        (b"\x28\xb5\x2f\xfd\x20", ["zstd"]),
        (b'{"Event"', [None]),
        (b"", []),
        (b"\x00\x00\x12\x34", []),
    ],
)
def test_matching_codecs(head: bytes, expected: list[str | None]) -> None:
    assert matching_codecs(head) == expected


def test_magic_wins_over_suffix_with_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="sparkhist.reader"):
        assert resolve_codec("lz4", b"\x28\xb5\x2f\xfd\x20", "app.lz4") == "zstd"
    assert "app.lz4" in caplog.text and "zstd" in caplog.text


def test_suffix_trusted_when_magic_agrees_or_is_unknown(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="sparkhist.reader"):
        assert resolve_codec("zstd", b"\x28\xb5\x2f\xfd", "a.zstd") == "zstd"
        assert resolve_codec("snappy", b"\x00\x00\x01\x00", "a.snappy") == "snappy"
        assert resolve_codec(None, b"", "a") is None
    assert not caplog.records


# --- round trips and boundaries --------------------------------------------------------


@pytest.mark.parametrize("codec", CODECS)
def test_round_trip_and_every_piece_is_a_resume_point(codec: str | None) -> None:
    data = sample_text(1, 20_000)
    stream = ENCODERS[codec](data, 4096)
    decoder = make_decoder(codec)
    pieces = decode_all(decoder, stream)
    assert joined(pieces) == data
    assert not decoder.truncated
    assert_resumable(codec, stream, pieces)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    codec=st.sampled_from(CODECS),
    seed=st.integers(0, 1000),
    size=st.integers(0, 40_000),
    block=st.sampled_from([1024, 4096, 32768]),
    cuts=st.lists(st.integers(0, 60_000), max_size=12),
)
def test_any_chunking_decodes_the_same(codec: str | None, seed: int, size: int, block: int, cuts: list[int]) -> None:
    data = sample_text(seed, size)
    stream = ENCODERS[codec](data, block)
    decoder = make_decoder(codec)
    assert joined(decode_all(decoder, stream, cuts)) == data
    assert not decoder.truncated


@pytest.mark.parametrize("codec", ["lz4", "lzf", "snappy", "zstd"])
def test_offsets_are_absolute_when_starting_mid_stream(codec: str) -> None:
    stream = ENCODERS[codec](sample_text(2, 10_000), 2048)
    pieces = decode_all(make_decoder(codec), stream)
    half = len(pieces) // 2
    offset = pieces[half].origin
    assert decode_all(make_decoder(codec, offset=offset), stream[offset:]) == pieces[half:]


@pytest.mark.parametrize("codec", ["lz4", "lzf", "snappy", "zstd"])
def test_every_prefix_is_truncated_or_complete_never_an_error(codec: str) -> None:
    data = sample_text(3, 3000)
    stream = ENCODERS[codec](data, 1024)
    boundaries = {0, len(stream)}
    for piece in decode_all(make_decoder(codec), stream):
        boundaries.add(piece.origin)
        if piece.end is not None:
            boundaries.add(piece.end)
    for size in range(len(stream) + 1):
        decoder = make_decoder(codec)
        out = joined(decode_all(decoder, stream[:size]))
        assert data.startswith(out)
        if size in boundaries:
            assert not decoder.truncated
        else:
            assert decoder.truncated


# --- lz4 -------------------------------------------------------------------------------


def test_lz4_checksum_mask_matches_real_spark_blocks() -> None:
    """lz4-java stores XXH32(seed 0x9747B28C) & 0x0FFFFFFF; the full hash would not match."""
    stream = (EVENTLOGS / "local-1795972905472.lz4").read_bytes()
    pos, checked = 0, 0
    while pos < len(stream):
        _, token, clen, olen, check = struct.unpack_from("<8sBiiI", stream, pos)
        if olen:
            body = stream[pos + 21 : pos + 21 + clen]
            data = lz4.block.decompress(body, uncompressed_size=olen) if token & 0xF0 == 0x20 else body
            full = xxhash.xxh32_intdigest(data, LZ4_SEED)
            assert check == full & 0x0FFFFFFF
            checked += full != check
        pos += 21 + clen
    assert checked > 0  # some blocks have high bits set: the mask is really needed


def test_lz4_real_log_blocks_are_32k_with_an_end_block() -> None:
    stream = (EVENTLOGS / "local-1795972905472.lz4").read_bytes()
    pieces = decode_all(make_decoder("lz4"), stream)
    assert all(len(p.data) == 32768 for p in pieces[:-1])
    assert pieces[-1].end == len(stream) - 21  # the end-of-stream block follows


def test_lz4_concatenated_streams() -> None:
    a, b = sample_text(4, 5000), sample_text(5, 7000)
    assert joined(decode_all(make_decoder("lz4"), encode_lz4(a, 1024) + encode_lz4(b, 2048))) == a + b


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda s: s[:21 + 10] + bytes([s[31] ^ 0xFF]) + s[32:], "LZ4Block"),  # body
        (lambda s: s[:17] + bytes([s[17] ^ 0x01]) + s[18:], "checksum"),  # checksum
        (lambda s: b"LZ4Bl0ck" + s[8:], "magic"),
        (lambda s: s[:8] + b"\x35" + s[9:], "header"),  # method 0x30
        (lambda s: s[:13] + struct.pack("<i", 1 << 20) + s[17:], "header"),  # originalLen > 2**15
    ],
)
def test_lz4_damage_is_a_codec_error(damage: Damage, message: str) -> None:
    stream = encode_lz4(sample_text(6, 5000), 32768)
    with pytest.raises(CodecError, match=message) as info:
        decode_all(make_decoder("lz4", name="x.lz4"), damage(stream))
    assert "x.lz4" in str(info.value) and "offset 0" in str(info.value)


def test_lz4_end_block_with_a_checksum_is_damage() -> None:
    bad_end = LZ4_END[:17] + b"\x01\x00\x00\x00"
    with pytest.raises(CodecError, match="end-of-stream"):
        decode_all(make_decoder("lz4"), encode_lz4(b"x\n", 1024)[:-21] + bad_end)


def test_lz4_damage_in_a_later_block_names_its_offset() -> None:
    stream = bytearray(encode_lz4(sample_text(7, 5000), 1024))
    second = stream.index(b"LZ4Block", 1)
    stream[second + 30] ^= 0xFF
    with pytest.raises(CodecError, match=f"offset {second}"):
        decode_all(make_decoder("lz4"), bytes(stream))


# --- lzf ------------------------------------------------------------------------------


def test_lzf_real_log_has_both_chunk_types() -> None:
    stream = (EVENTLOGS / "local-1795972908554.lzf").read_bytes()
    pieces = decode_all(make_decoder("lzf"), stream)
    kinds = {stream[p.origin + 2] for p in pieces}
    assert kinds == {0, 1}
    assert joined(pieces).startswith(b'{"Event":"SparkListenerLogStart"')


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda s: b"ZW" + s[2:], "magic"),
        (lambda s: s[:2] + b"\x07" + s[3:], "chunk type 7"),
        (lambda s: s[:7] + b"\xff" * 8 + s[15:], "decompress"),
        (lambda s: s[:5] + struct.pack(">H", 60000) + s[7:], "decompress"),  # wrong original length
    ],
)
def test_lzf_damage_is_a_codec_error(damage: Damage, message: str) -> None:
    stream = encode_lzf(sample_text(8, 5000))
    assert stream[2] == 1
    with pytest.raises(CodecError, match=message):
        decode_all(make_decoder("lzf"), damage(stream))


# --- snappy ----------------------------------------------------------------------------


def test_snappy_header_may_repeat_mid_stream() -> None:
    a, b = sample_text(9, 5000), sample_text(10, 3000)
    stream = encode_snappy(a, 1024) + encode_snappy(b, 2048)
    pieces = decode_all(make_decoder("snappy"), stream)
    assert joined(pieces) == a + b
    assert_resumable("snappy", stream, pieces)


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda s: b"\x82SNAPPZ" + s[7:], "header"),
        (lambda s: s[:16] + struct.pack(">i", -5) + s[20:], "length -5"),
        (lambda s: s[:16] + struct.pack(">i", 1 << 30) + s[20:], "length"),
        (lambda s: s[:20] + b"\xff\xff\xff\xff\xff\xff" + s[26:], "size"),  # varint too long
        (lambda s: s[:20] + b"\x80\x80\x80\x40" + s[24:], "size"),  # 128 MiB: beyond any block
    ],
)
def test_snappy_damage_is_a_codec_error(damage: Damage, message: str) -> None:
    stream = encode_snappy(sample_text(11, 5000))
    with pytest.raises(CodecError, match=message):
        decode_all(make_decoder("snappy"), damage(stream))


def test_snappy_bad_block_body_is_a_codec_error() -> None:
    stream = bytearray(encode_snappy(sample_text(11, 5000)))
    stream[20] = 0x10  # claims 16 decoded bytes; the block holds far more
    with pytest.raises(CodecError, match="decompress snappy"):
        decode_all(make_decoder("snappy"), bytes(stream))


# --- zstd ------------------------------------------------------------------------------


def test_zstd_single_big_frame_comes_out_in_blocks() -> None:
    data = sample_text(12, 1_500_000)
    stream = zstandard.ZstdCompressor(level=3).compress(data)
    decoder = make_decoder("zstd")
    pieces = decode_all(decoder, stream, [len(stream) // 3])
    assert joined(pieces) == data
    assert len(pieces) > 5 and max(len(p.data) for p in pieces) <= 128 << 10
    assert {p.origin for p in pieces} == {0}
    assert [p.end for p in pieces] == [None] * (len(pieces) - 1) + [len(stream)]
    assert [p.skip for p in pieces] == [sum(len(q.data) for q in pieces[:i]) for i in range(len(pieces))]


def _line_resume_points(pieces: list[Piece]) -> list[tuple[int, int]]:
    """The resume point just after every line of the decoded data, as the reader takes them."""
    points = []
    for piece in pieces:
        k = piece.data.find(b"\n")
        while k >= 0:
            points.append(piece.resume_point(k + 1))
            k = piece.data.find(b"\n", k + 1)
    return points


def test_zstd_decoders_of_one_thread_interleaved_decode_alike() -> None:
    """Decoders of one thread share a decompressor for whole frames: several logs decoded in
    turn (one of them with frames fed a few bytes at a time, decoded block by block, another
    with frames bigger than a whole-frame decode takes) give what each gives alone."""
    streams = [encode_zstd(sample_text(seed, 400_000), frame) for seed, frame in ((31, 20_000), (32, 1_200_000),
                                                                                  (33, 60_000))]
    alone = [decode_all(make_decoder("zstd"), stream) for stream in streams]
    decoders = [make_decoder("zstd") for _ in streams]
    steps = [list(range(0, len(s), 7_919)) + [len(s)] for s in streams]
    steps[2] = list(range(0, len(streams[2]), 13)) + [len(streams[2])]  # frames never whole in the buffer
    turns: list[list[Piece]] = [[] for _ in streams]
    at = [0, 0, 0]
    while any(a < len(step) - 1 for a, step in zip(at, steps, strict=True)):
        for i, decoder in enumerate(decoders):
            if at[i] < len(steps[i]) - 1:
                turns[i].extend(decoder.decode(streams[i][steps[i][at[i]]:steps[i][at[i] + 1]]))
                at[i] += 1
    for i in range(len(streams)):
        assert joined(turns[i]) == joined(alone[i])
        assert _line_resume_points(turns[i]) == _line_resume_points(alone[i])


@pytest.mark.parametrize("frame", [20_000, 300_000, 1_200_000])  # one block, three, more than a whole-frame decode takes
def test_zstd_whole_frames_resume_where_the_block_walk_does(frame: int) -> None:
    """A complete frame is decoded in one call: its lines resume exactly where decoding block
    by block (a frame never complete in the buffer, fed a byte at a time) resumes them."""
    data = sample_text(18, 2_500_000)
    stream = encode_zstd(data, frame, checksum=frame == 300_000)
    at_once = decode_all(make_decoder("zstd"), stream)
    by_bytes = decode_all(make_decoder("zstd"), stream, list(range(0, len(stream), 997)) + list(range(1, 5000)))
    assert joined(at_once) == joined(by_bytes) == data
    assert _line_resume_points(at_once) == _line_resume_points(by_bytes)
    if frame == 300_000:
        assert len(at_once) == -(-len(data) // frame)  # a piece per frame
    assert max(len(p.data) for p in at_once) <= 8 * (128 << 10)


def test_zstd_damage_late_in_a_frame_keeps_the_blocks_before_it() -> None:
    """A damaged block ends the data where it is, whole frame or not: the blocks before it come out."""
    data = sample_text(19, 400_000)
    stream = bytearray(encode_zstd(data, 400_000))
    stream[-2000:-1900] = bytes(100)  # inside the frame's last block
    out: list[Piece] = []
    with pytest.raises(CodecError, match="zstd"):
        out.extend(make_decoder("zstd").decode(bytes(stream)))
    assert len(joined(out)) >= 256 << 10 and data.startswith(joined(out))


def test_zstd_open_last_frame_yields_its_complete_blocks() -> None:
    data = sample_text(13, 600_000)
    stream = zstandard.ZstdCompressor(level=1).compress(data)
    decoder = make_decoder("zstd")
    out = joined(decode_all(decoder, stream[: len(stream) * 2 // 3]))
    assert decoder.truncated
    assert 128 << 10 <= len(out) < len(data) and data.startswith(out)


def test_zstd_skippable_frames_and_checksums() -> None:
    a, b = sample_text(14, 5000), sample_text(15, 5000)
    skippable = struct.pack("<II", 0x184D2A5E, 3) + b"abc"
    stream = skippable + encode_zstd(a, 1000, checksum=True) + skippable + encode_zstd(b, 2000)
    pieces = decode_all(make_decoder("zstd"), stream, list(range(0, len(stream), 7)))
    assert joined(pieces) == a + b
    assert_resumable("zstd", stream, pieces)


def test_zstd_checksum_mismatch_is_a_codec_error() -> None:
    stream = bytearray(encode_zstd(sample_text(16, 5000), 10_000, checksum=True))
    stream[-1] ^= 0xFF
    with pytest.raises(CodecError, match="zstd"):
        decode_all(make_decoder("zstd"), bytes(stream))


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda s: b"\x28\xb5\x2f\xfe" + s[4:], "magic"),
        (lambda s: s[:4] + bytes([s[4] | 0x08]) + s[5:], "reserved"),
        (lambda s: s[:20] + b"\xff" * 40 + s[60:], "zstd"),
    ],
)
def test_zstd_damage_is_a_codec_error(damage: Damage, message: str) -> None:
    stream = encode_zstd(sample_text(17, 5000), 10_000)
    with pytest.raises(CodecError, match=message):
        decode_all(make_decoder("zstd"), damage(stream))


def test_zstd_reserved_block_type_is_a_codec_error() -> None:
    stream = encode_zstd(b"x" * 100, 10_000)
    header = stream[4]
    start = 5 + (0 if header & 0x20 else 1) + (0, 1, 2, 4)[header & 3] + ((1 if header & 0x20 else 0), 2, 4, 8)[header >> 6]
    damaged = stream[:start] + bytes([stream[start] | 0x06]) + stream[start + 1 :]
    with pytest.raises(CodecError, match="block header"):
        decode_all(make_decoder("zstd"), damaged)


# --- any input ---------------------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(codec=st.sampled_from(CODECS), garbage=st.binary(max_size=3000), prefix=st.booleans())
def test_garbage_is_a_codec_error_or_truncation(codec: str | None, garbage: bytes, prefix: bool) -> None:
    """Only CodecError may escape, whatever the bytes; a valid start makes the fuzz go deeper."""
    stream = (ENCODERS[codec](b'{"a":1}\n' * 50, 1024)[:40] if prefix else b"") + garbage
    decoder = make_decoder(codec)
    try:
        decode_all(decoder, stream, [len(stream) // 2])
    except CodecError:
        pass
