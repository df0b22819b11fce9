"""Writers of each codec's exact framing, as Spark's libraries write it (SHS_REFERENCE §2.5).

The mirror of :mod:`sparkhist.reader.codecs`: used by the tests, the benchmarks and the
corpus scaler to produce event logs that Spark itself would have written.
"""

from __future__ import annotations

import struct

import cramjam
import lz4.block
import lzf
import xxhash
import zstandard

LZ4_SEED = 0x9747B28C
SNAPPY_HEADER = b"\x82SNAPPY\x00" + struct.pack(">ii", 1, 1)


def lz4_block(chunk: bytes, level: int = 5, *, raw: bool = False) -> bytes:
    body = chunk if raw else lz4.block.compress(chunk, store_size=False)
    method = 0x10 if raw else 0x20
    check = xxhash.xxh32_intdigest(chunk, LZ4_SEED) & 0x0FFFFFFF
    return b"LZ4Block" + bytes([method | level]) + struct.pack("<iiI", len(body), len(chunk), check) + body


LZ4_END = b"LZ4Block" + bytes([0x15]) + struct.pack("<iiI", 0, 0, 0)


def encode_lz4(data: bytes, block: int = 32768) -> bytes:
    """lz4-java LZ4BlockOutputStream: blocks, then the zero-length end block."""
    level = max(0, block.bit_length() - 11)
    blocks = [lz4_block(data[i : i + block], level, raw=(i // block) % 3 == 2) for i in range(0, len(data), block)]
    return b"".join(blocks) + LZ4_END


def encode_lzf(data: bytes, chunk: int = 65535) -> bytes:
    """ning LZFOutputStream: compressed chunks, raw ones where LZF does not help."""
    out = bytearray()
    for i in range(0, len(data), chunk):
        part = data[i : i + chunk]
        packed = lzf.compress(part) if len(part) > 1 else None
        if packed is None:
            out += b"ZV\x00" + struct.pack(">H", len(part)) + part
        else:
            out += b"ZV\x01" + struct.pack(">HH", len(packed), len(part)) + packed
    return bytes(out)


def encode_snappy(data: bytes, block: int = 32768) -> bytes:
    """xerial SnappyOutputStream: the header, then length-prefixed raw snappy blocks."""
    out = bytearray(SNAPPY_HEADER)
    for i in range(0, len(data), block):
        body = bytes(cramjam.snappy.compress_raw(data[i : i + block]))
        out += struct.pack(">i", len(body)) + body
    return bytes(out)


def encode_zstd(data: bytes, frame: int = 32768, *, checksum: bool = False) -> bytes:
    """zstd-jni with closeFrameOnFlush: one frame per flush."""
    cctx = zstandard.ZstdCompressor(level=1, write_checksum=checksum, write_content_size=False)
    return b"".join(cctx.compress(data[i : i + frame]) for i in range(0, len(data), frame))


def encode_plain(data: bytes, block: int = 0) -> bytes:
    return data


ENCODERS = {
    None: encode_plain,
    "lz4": encode_lz4,
    "lzf": encode_lzf,
    "snappy": encode_snappy,
    "zstd": encode_zstd,
}
