"""Incremental decoders for the event-log codecs, exposing where blocks start.

One class per codec (SHS_REFERENCE §2.5), each fed stored bytes in arbitrary chunks
through ``decode``. Besides the decoded bytes, a decoder reports for every output
:class:`Piece` the stored offset of the block (lz4, lzf, snappy) or frame (zstd) it
came from: decoding can only restart at such a boundary, so this is what a resume
:class:`~sparkhist.reader.position.Position` is made of. Plain text is its own
codec in which every byte is a boundary.

Data that ends inside a block is not an error here: the decoder keeps the partial
block and reports ``truncated`` (an in-progress log is simply still being written).
Damaged data (bad magic, checksum or framing, or a decompression failure) raises
:class:`~sparkhist.errors.CodecError`, ``from`` the library's exception if any.

Every block size is bounded (by the format, or for snappy by a sanity limit) before
any buffering or allocation, so garbage input cannot make a decoder wait for, or
allocate, gigabytes.
"""

from __future__ import annotations

import logging
import struct
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from typing import NamedTuple, Protocol

import cramjam
import lz4.block
import lzf
import xxhash
import zstandard

from sparkhist.errors import CodecError

logger = logging.getLogger("sparkhist.reader")

__all__ = [
    "DECODERS",
    "MAGIC",
    "Decoder",
    "Lz4BlockDecoder",
    "LzfChunkDecoder",
    "Piece",
    "PlainDecoder",
    "SnappyStreamDecoder",
    "UnitSpan",
    "ZstdFrameDecoder",
    "fits_mid_file",
    "make_decoder",
    "matching_codecs",
    "resolve_codec",
    "walk_units",
]


@dataclass(frozen=True, slots=True)
class Piece:
    """Decoded bytes and where decoding can restart to reproduce them.

    ``origin`` is the stored offset of the block or frame the bytes came from and
    ``skip`` the number of its decoded bytes that precede ``data``. When ``data``
    completes its block, ``end`` is the stored offset just after the block, so a
    resume point at the very end needs no re-decoding. ``byte_aligned`` marks plain
    text, where stored and decoded bytes coincide and every byte is a boundary.
    """

    data: bytes
    origin: int
    skip: int = 0
    end: int | None = None
    byte_aligned: bool = False

    def resume_point(self, k: int) -> tuple[int, int]:
        """``(offset, skip)`` that restarts decoding just after ``data[:k]``."""
        if self.end is not None and k == len(self.data):
            return self.end, 0
        if self.byte_aligned:
            return self.origin + self.skip + k, 0
        return self.origin, self.skip + k

    def drop(self, n: int) -> Piece:
        """This piece without its first ``n`` decoded bytes."""
        return replace(self, data=self.data[n:], skip=self.skip + n)


class Decoder(Protocol):
    """What the stream reader needs from a codec."""

    def decode(self, data: bytes) -> Iterator[Piece]:
        """Feed stored bytes; yields the pieces they complete, in order.

        The iterator must be exhausted before the next call: decoding is lazy so
        that one chunk of highly compressed input never sits decoded in memory.
        """
        ...

    @property
    def truncated(self) -> bool:
        """Whether the bytes fed so far end inside a block or frame."""
        ...


class PlainDecoder:
    """Uncompressed JSON lines: the stored bytes are the decoded bytes."""

    def __init__(self, name: str = "<stream>", offset: int = 0) -> None:
        self.name = name
        self._offset = offset

    def decode(self, data: bytes) -> Iterator[Piece]:
        if data:
            start = self._offset
            self._offset += len(data)
            yield Piece(data, origin=start, end=self._offset, byte_aligned=True)

    @property
    def truncated(self) -> bool:
        return False


@dataclass(frozen=True, slots=True)
class _Unit:
    """One parsed unit of a framed stream: a block, a header, a frame part."""

    length: int  # stored bytes it spans
    data: bytes  # what it decodes to (often empty for headers)
    closes: bool  # whether a restart point follows it


#: Sanity bound for a block whose format does not bound its size (snappy blocks, zstd
#: skippable frames). Spark writes 32 KiB snappy blocks by default; without a bound a
#: damaged length would make the decoder buffer up to 4 GiB before failing.
MAX_BLOCK = 64 << 20


class _FramedDecoder:
    """Buffering and offset bookkeeping shared by the block-framed codecs.

    Subclasses parse one unit at a time in :meth:`_unit`; this class tracks the
    origin of the current block/frame and turns units into pieces.
    """

    def __init__(self, name: str = "<stream>", offset: int = 0) -> None:
        self.name = name
        self._buffer = bytearray()
        self._offset = offset  # stored offset of _buffer[0]
        self._origin = offset  # stored offset where the current block/frame starts
        self._skip = 0  # decoded bytes of the current block/frame emitted so far

    def decode(self, data: bytes) -> Iterator[Piece]:
        self._buffer += data
        pos = 0
        try:
            while (unit := self._unit(self._buffer, pos)) is not None:
                start = self._offset + pos
                pos += unit.length
                if unit.data:
                    end = start + unit.length if unit.closes else None
                    yield Piece(unit.data, origin=self._origin, skip=self._skip, end=end)
                self._skip += len(unit.data)
                if unit.closes:
                    self._origin, self._skip = start + unit.length, 0
        finally:
            del self._buffer[:pos]
            self._offset += pos

    @property
    def truncated(self) -> bool:
        return bool(self._buffer) or self._origin != self._offset

    def _unit(self, buf: bytearray, pos: int) -> _Unit | None:
        """The complete unit at ``buf[pos:]``, or None if more bytes are needed."""
        raise NotImplementedError

    def _error(self, pos: int, message: str) -> CodecError:
        return CodecError(f"{self.name}: {message} at offset {self._offset + pos}")


_LZ4_MAGIC = b"LZ4Block"
_LZ4_HEADER = struct.Struct("<8sBiiI")  # magic, token, compressedLen, originalLen, checksum
_LZ4_METHOD_RAW = 0x10
_LZ4_METHOD_LZ4 = 0x20
_LZ4_SEED = 0x9747B28C


class Lz4BlockDecoder(_FramedDecoder):
    """lz4-java ``LZ4BlockOutputStream`` blocks; the checks mirror ``LZ4BlockInputStream``.

    Each block is independent and carries the XXH32 of its decoded bytes (seed
    ``0x9747B28C``, masked to 28 bits). A zero-length block ends a stream, but
    another stream may follow, as lz4-java reads with ``stopOnEmptyBlock=false``.
    """

    def _unit(self, buf: bytearray, pos: int) -> _Unit | None:
        head = _lz4_unit(buf, pos)
        if head is None:
            return None
        if isinstance(head, str):
            raise self._error(pos, head)
        length, olen = head
        if olen == 0:
            return _Unit(length, b"", closes=True)  # an end-of-stream block
        if len(buf) - pos < length:
            return None
        _, token, _, _, check = _LZ4_HEADER.unpack_from(buf, pos)
        body = bytes(buf[pos + _LZ4_HEADER.size : pos + length])
        if (token & 0xF0) == _LZ4_METHOD_RAW:
            data = body
        else:
            try:
                data = lz4.block.decompress(body, uncompressed_size=olen)
            except lz4.block.LZ4BlockError as exc:
                raise self._error(pos, f"cannot decompress LZ4Block ({exc})") from exc
        if len(data) != olen or xxhash.xxh32_intdigest(data, _LZ4_SEED) & 0x0FFFFFFF != check:
            raise self._error(pos, "bad LZ4Block checksum")
        return _Unit(length, data, closes=True)


def _lz4_bound(size: int) -> int:
    """LZ4's worst-case compressed size of ``size`` bytes (``LZ4_compressBound``)."""
    return size + size // 255 + 16


_LZF_MAGIC = b"ZV"
_LZF_RAW = 0
_LZF_COMPRESSED = 1


class LzfChunkDecoder(_FramedDecoder):
    """ning compress-lzf chunks: ``ZV 0x00 len:u16`` raw or ``ZV 0x01 clen:u16 olen:u16`` LZF."""

    def _unit(self, buf: bytearray, pos: int) -> _Unit | None:
        head = _lzf_unit(buf, pos)
        if head is None:
            return None
        if isinstance(head, str):
            raise self._error(pos, head)
        length, olen = head
        if len(buf) - pos < length:
            return None
        if buf[pos + 2] == _LZF_RAW:
            return _Unit(length, bytes(buf[pos + 5 : pos + length]), closes=True)
        try:
            data = lzf.decompress(bytes(buf[pos + 7 : pos + length]), olen)
        except ValueError as exc:
            raise self._error(pos, f"cannot decompress LZF chunk ({exc})") from exc
        if data is None or len(data) != olen:  # python-lzf also reports some failures as None
            raise self._error(pos, "cannot decompress LZF chunk")
        return _Unit(length, data, closes=True)


_SNAPPY_MAGIC = b"\x82SNAPPY\x00"
_SNAPPY_HEADER_LEN = 16  # magic + version int32 BE + min compatible version int32 BE


class SnappyStreamDecoder(_FramedDecoder):
    """xerial ``SnappyOutputStream``: a 16-byte header, then ``len:int32 BE`` + raw snappy blocks.

    The header may recur anywhere (concatenated streams); it starts with ``0x82``,
    which no valid (non-negative) block length does, so it is recognised by its
    first byte.
    """

    def _unit(self, buf: bytearray, pos: int) -> _Unit | None:
        head = _snappy_unit(buf, pos)  # None until the whole unit is there
        if head is None:
            return None
        if isinstance(head, str):
            raise self._error(pos, head)
        length, _ = head
        if buf[pos] == _SNAPPY_MAGIC[0]:
            return _Unit(length, b"", closes=True)  # a stream header
        body = bytes(buf[pos + 4 : pos + length])
        try:
            data = bytes(cramjam.snappy.decompress_raw(body))
        except cramjam.DecompressionError as exc:
            raise self._error(pos, f"cannot decompress snappy block ({exc})") from exc
        return _Unit(length, data, closes=True)


def _varint(data: bytes) -> int | None:
    """The little-endian base-128 varint that starts a raw snappy block (its decoded size)."""
    value = 0
    for i, byte in enumerate(data[:5]):
        value |= (byte & 0x7F) << (7 * i)
        if not byte & 0x80:
            return value
    return None


_ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
_ZSTD_SKIPPABLE = range(0x184D2A50, 0x184D2A60)
_ZSTD_MAX_BLOCK = 128 << 10  # Block_Maximum_Size
_ZSTD_RESERVED_BLOCK = 3
_ZSTD_RLE_BLOCK = 1
#: A complete frame of at most this many blocks (1 MiB decoded) is decoded in one call.
_ZSTD_WHOLE_BLOCKS = 8


_thread_contexts = threading.local()


def _whole_frames_context() -> zstandard.ZstdDecompressor:
    """This thread's decompressor for frames decoded in one call (nothing of a frame stays in it
    after the call, so every decoder of the thread can share it). A new decompressor's first
    frame sets up its buffers: 40 us of the 155 a listing read's six frames cost, paid per log
    with a decompressor per decoder."""
    dctx: zstandard.ZstdDecompressor | None = getattr(_thread_contexts, "zstd", None)
    if dctx is None:
        dctx = _thread_contexts.zstd = zstandard.ZstdDecompressor()
    return dctx


class ZstdFrameDecoder(_FramedDecoder):
    """Concatenated zstd frames (RFC 8878): zstd-jni closes a frame on every flush.

    The frame structure is walked here, block by block, so that frame boundaries
    (the restart points) are exact and each decompression call yields at most one
    block (128 KiB), even for a single huge frame. The content of a frame that is
    still open at the end of the data is emitted up to its last complete block, as
    zstd-jni does with ``setContinuous(true)``.
    """

    def __init__(self, name: str = "<stream>", offset: int = 0) -> None:
        super().__init__(name, offset)
        self._dctx: zstandard.ZstdDecompressor | None = None  # for frames decoded block by block
        self._frame: zstandard.ZstdDecompressionObj | None = None
        self._checksum = False

    def _unit(self, buf: bytearray, pos: int) -> _Unit | None:
        if self._frame is None:
            return self._frame_header(buf, pos)
        return self._block(buf, pos, self._frame)

    def _frame_header(self, buf: bytearray, pos: int) -> _Unit | None:
        head = _zstd_head(buf, pos)
        if head is None:
            return None
        if isinstance(head, str):
            raise self._error(pos, head)
        if len(buf) - pos < head.length:
            return None
        if head.skippable:
            return _Unit(head.length, b"", closes=True)
        self._checksum = head.checksum
        whole = self._whole_frame(buf, pos, head.length)
        if whole is not None:
            return whole
        if self._dctx is None:
            self._dctx = zstandard.ZstdDecompressor()
        self._frame = self._dctx.decompressobj()
        return _Unit(head.length, self._feed(self._frame, buf, pos, head.length), closes=False)

    def _whole_frame(self, buf: bytearray, pos: int, header: int) -> _Unit | None:
        """The frame at ``pos`` decoded in one call, when ``buf`` holds all of it in at most
        ``_ZSTD_WHOLE_BLOCKS`` blocks: what the block-by-block walk gives (the same data and
        boundaries), for one call instead of two or more. None leaves it to that walk, which
        also reports damage where it is (a failure here is not reported)."""
        end = pos + header
        for _ in range(_ZSTD_WHOLE_BLOCKS):
            block = _zstd_block(buf, end, self._checksum)
            if not isinstance(block, tuple):
                return None
            length, last = block
            end += length
            if end > len(buf):
                return None
            if last:
                frame = _whole_frames_context().decompressobj()
                try:
                    data = frame.decompress(bytes(buf[pos:end]))
                except zstandard.ZstdError:
                    return None
                return _Unit(end - pos, data, closes=True) if frame.eof and not frame.unused_data else None
        return None

    def _block(self, buf: bytearray, pos: int, frame: zstandard.ZstdDecompressionObj) -> _Unit | None:
        block = _zstd_block(buf, pos, self._checksum)
        if block is None:
            return None
        if isinstance(block, str):
            raise self._error(pos, block)
        length, last = block
        if len(buf) - pos < length:
            return None
        data = self._feed(frame, buf, pos, length)
        if last:
            if not frame.eof:
                raise self._error(pos, "zstd frame did not end at its last block")
            self._frame = None
        return _Unit(length, data, closes=bool(last))

    def _feed(self, frame: zstandard.ZstdDecompressionObj, buf: bytearray, pos: int, length: int) -> bytes:
        try:
            return frame.decompress(bytes(buf[pos : pos + length]))
        except zstandard.ZstdError as exc:
            raise self._error(pos, f"cannot decompress zstd data ({exc})") from exc


#: Codec short name (None for plain text) → decoder class.
DECODERS: dict[str | None, Callable[..., Decoder]] = {
    None: PlainDecoder,
    "lz4": Lz4BlockDecoder,
    "lzf": LzfChunkDecoder,
    "snappy": SnappyStreamDecoder,
    "zstd": ZstdFrameDecoder,
}

#: How a stream of each codec starts. lz4, lzf and zstd repeat theirs at every
#: block/frame; snappy may repeat its header; plain text is JSON lines.
MAGIC: dict[str | None, bytes] = {
    "lz4": _LZ4_MAGIC,
    "lzf": _LZF_MAGIC,
    "snappy": _SNAPPY_MAGIC,
    "zstd": _ZSTD_MAGIC,
    None: b"{",
}


def make_decoder(codec: str | None, *, name: str = "<stream>", offset: int = 0) -> Decoder:
    """A fresh decoder for ``codec`` whose first byte sits at stored ``offset`` of ``name``."""
    try:
        cls = DECODERS[codec]
    except KeyError:
        raise CodecError(f"{name}: unsupported codec {codec!r}") from None
    return cls(name=name, offset=offset)


def matching_codecs(head: bytes) -> list[str | None]:
    """The codecs whose magic agrees with ``head`` (shorter heads match by prefix)."""
    if not head:
        return []
    return [codec for codec, magic in MAGIC.items() if head[: len(magic)] == magic[: len(head)]]


def fits_mid_file(declared: str | None, head: bytes) -> bool:
    """Whether ``head``, read at a block boundary mid-file, fits the codec the file's name
    declares: lz4, lzf and zstd repeat their magic there and plain text has a JSON line;
    snappy blocks carry none."""
    found = matching_codecs(head)
    return declared in found or (declared == "snappy" and not found)


def resolve_codec(declared: str | None, head: bytes, name: str) -> str | None:
    """The codec to decode ``name`` with: the magic in ``head`` wins over the file suffix.

    Files get renamed, and a ``.compact`` file is written with the SHS's own codec
    whatever its suffix says (SHS_REFERENCE §2.5). With no recognisable magic the
    suffix is trusted (garbage then fails in the decoder with a clear error).
    """
    found = matching_codecs(head)
    if not found or declared in found:
        return declared
    logger.warning(
        "%s: the file name says %s, its magic bytes say %s; trusting the bytes",
        name,
        declared or "plain text",
        found[0] or "plain text",
    )
    return found[0]


@dataclass(frozen=True, slots=True)
class UnitSpan:
    """One unit of a framed stream found by its header alone (never decoded): its stored
    ``offset`` (a restart point), its stored ``length`` and, when the header says it,
    its ``decoded`` size (None when only decoding would tell: a zstd frame without its
    content size)."""

    offset: int
    length: int
    decoded: int | None


def walk_units(codec: str, data: bytes, base: int = 0, *, name: str = "<stream>") -> list[UnitSpan]:
    """The complete units of ``data`` (stored bytes of ``codec`` starting at a restart point,
    stored offset ``base``), by their headers only: what a tail read skips without decoding.

    A partial last unit is left out (the decoder reports it as it reads). A header the
    decoder would reject raises :class:`~sparkhist.errors.CodecError`; damage inside a
    unit's body is not seen here (only decoding finds it).
    """
    try:
        walker = _WALKERS[codec]
    except KeyError:
        raise CodecError(f"{name}: no unit walk for codec {codec!r}") from None
    units: list[UnitSpan] = []
    pos, size = 0, len(data)
    while pos < size:
        found = walker(data, pos)
        if isinstance(found, str):
            raise CodecError(f"{name}: {found} at offset {base + pos}")
        if found is None or pos + found[0] > size:
            break
        length, decoded = found
        units.append(UnitSpan(base + pos, length, decoded))
        pos += length
    return units


#: One unit's header at ``data[pos:]``: ``(stored length, decoded size or None)``, None when
#: more bytes are needed, or the reason the header is damaged. The decoders read their units'
#: headers with these too, so a walk and a decode accept and refuse the same headers.
_Walk = Callable[[bytes | bytearray, int], tuple[int, int | None] | str | None]


def _lz4_unit(data: bytes | bytearray, pos: int) -> tuple[int, int | None] | str | None:
    if len(data) - pos < _LZ4_HEADER.size:
        return None
    magic, token, clen, olen, check = _LZ4_HEADER.unpack_from(data, pos)
    if magic != _LZ4_MAGIC:
        return "bad LZ4Block magic"
    method = token & 0xF0
    max_len = 1 << (10 + (token & 0x0F))
    if (
        method not in (_LZ4_METHOD_RAW, _LZ4_METHOD_LZ4)
        or not 0 <= olen <= max_len
        or not 0 <= clen <= _lz4_bound(max_len)
        or (olen == 0) != (clen == 0)
        or (method == _LZ4_METHOD_RAW and olen != clen)
    ):
        return f"bad LZ4Block header (token {token:#x}, lengths {clen}/{olen})"
    if olen == 0 and check != 0:
        return "bad checksum in the LZ4Block end-of-stream block"
    return _LZ4_HEADER.size + clen, olen


def _lzf_unit(data: bytes | bytearray, pos: int) -> tuple[int, int | None] | str | None:
    if len(data) - pos < 5:
        return None
    if data[pos : pos + 2] != _LZF_MAGIC:
        return "bad LZF chunk magic"
    kind = data[pos + 2]
    if kind == _LZF_RAW:
        size = int.from_bytes(data[pos + 3 : pos + 5], "big")
        return 5 + size, size
    if kind != _LZF_COMPRESSED:
        return f"bad LZF chunk type {kind}"
    if len(data) - pos < 7:
        return None
    return 7 + int.from_bytes(data[pos + 3 : pos + 5], "big"), int.from_bytes(data[pos + 5 : pos + 7], "big")


def _snappy_unit(data: bytes | bytearray, pos: int) -> tuple[int, int | None] | str | None:
    """A stream header (decoded size 0) or a block; a block's decoded size is the varint that
    starts its body, so this waits for the whole block."""
    if pos >= len(data):
        return None
    if data[pos] == _SNAPPY_MAGIC[0]:
        if len(data) - pos < _SNAPPY_HEADER_LEN:
            return None
        return (_SNAPPY_HEADER_LEN, 0) if data[pos : pos + len(_SNAPPY_MAGIC)] == _SNAPPY_MAGIC else "bad snappy stream header"
    if len(data) - pos < 4:
        return None
    clen = int.from_bytes(data[pos : pos + 4], "big", signed=True)
    if not 0 <= clen <= MAX_BLOCK:
        return f"bad snappy block length {clen}"
    if len(data) - pos < 4 + clen:
        return None
    olen = _varint(bytes(data[pos + 4 : pos + 4 + min(clen, 5)]))
    if olen is None or olen > MAX_BLOCK:
        return "bad snappy block size"
    return 4 + clen, olen


class _ZstdHead(NamedTuple):
    """A zstd frame's header, or a whole skippable frame."""

    length: int  # stored bytes of the header (of the whole frame when skippable)
    skippable: bool
    checksum: bool  # 4 bytes of checksum follow the frame's last block
    content: int | None  # the decoded size, when the header gives it


def _zstd_head(data: bytes | bytearray, pos: int) -> _ZstdHead | str | None:
    """The frame header at ``data[pos:]``: None until all of it is there."""
    if len(data) - pos < 5:
        return None  # magic + frame header descriptor (or the start of a skippable frame's size)
    if int.from_bytes(data[pos : pos + 4], "little") in _ZSTD_SKIPPABLE:
        if len(data) - pos < 8:
            return None
        size = int.from_bytes(data[pos + 4 : pos + 8], "little")
        return _ZstdHead(8 + size, True, False, 0) if size <= MAX_BLOCK else f"bad zstd skippable frame size {size}"
    if data[pos : pos + 4] != _ZSTD_MAGIC:
        return "bad zstd frame magic"
    descriptor = data[pos + 4]
    if descriptor & 0x08:
        return "bad zstd frame header (reserved bit set)"
    single_segment = bool(descriptor & 0x20)
    size_bytes = (int(single_segment), 2, 4, 8)[descriptor >> 6]
    at = pos + 5 + (0 if single_segment else 1) + (0, 1, 2, 4)[descriptor & 0x03]
    end = at + size_bytes
    if end > len(data):
        return None
    content = int.from_bytes(data[at:end], "little") + (256 if size_bytes == 2 else 0) if size_bytes else None
    return _ZstdHead(end - pos, False, bool(descriptor & 0x04), content)


def _zstd_block(data: bytes | bytearray, pos: int, checksum: bool) -> tuple[int, bool] | str | None:
    """The block at ``data[pos:]``: (its stored length, the frame's checksum included after the
    last block; whether it is the last), from its 3-byte header."""
    if len(data) - pos < 3:
        return None
    header = int.from_bytes(data[pos : pos + 3], "little")
    last, kind, size = header & 1, (header >> 1) & 3, header >> 3
    if kind == _ZSTD_RESERVED_BLOCK or size > _ZSTD_MAX_BLOCK:
        return f"bad zstd block header {header:#x}"
    return 3 + (1 if kind == _ZSTD_RLE_BLOCK else size) + (4 if last and checksum else 0), bool(last)


def _zstd_unit(data: bytes | bytearray, pos: int) -> tuple[int, int | None] | str | None:
    """A whole frame, walked block header by block header."""
    head = _zstd_head(data, pos)
    if not isinstance(head, _ZstdHead):
        return head
    if head.skippable:
        return head.length, 0
    end = pos + head.length
    while True:
        block = _zstd_block(data, end, head.checksum)
        if not isinstance(block, tuple):
            return block
        length, last = block
        end += length
        if last:
            return end - pos, head.content


_WALKERS: dict[str, _Walk] = {
    "lz4": _lz4_unit,
    "lzf": _lzf_unit,
    "snappy": _snappy_unit,
    "zstd": _zstd_unit,
}
