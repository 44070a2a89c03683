"""A strict OSC 1.0 codec for the surface server: small, bounded, and total.

The decoder never raises anything but :class:`OscDecodeError`, whatever the bytes: every length is
checked against what is left of the packet before it is used, nesting is bounded, strings must be
UTF-8.  Only the argument types a surface needs are accepted (``i h f d s T F``); anything else
(blobs, MIDI, arrays, OSC 1.0 messages without a type tag string) is refused as malformed.
OSC address pattern matching is not supported: an address is matched literally.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any, Sequence

BUNDLE_TAG = b"#bundle\x00"
#: Bundles inside bundles, at most this deep (a surface has no reason to nest at all).
MAX_BUNDLE_DEPTH = 2
#: Messages per packet, all bundles included.
MAX_MESSAGES_PER_PACKET = 32
ACCEPTED_TYPES = frozenset("ihfdsTF")


class OscDecodeError(ValueError):
    """The bytes are not an OSC packet this server accepts; ``kind`` says why (a counter name)."""

    def __init__(self, kind: str, detail: str):
        super().__init__(detail)
        self.kind = kind


@dataclass(frozen=True, slots=True)
class OscMessage:
    """One decoded message: its address, the type tag of each argument, and the values."""

    address: str
    types: str
    args: tuple[Any, ...]


def _read_string(data: bytes, pos: int, limit: int) -> tuple[str, int]:
    end = data.find(b"\x00", pos, limit)
    if end < 0:
        raise OscDecodeError("malformed", "unterminated string")
    raw = data[pos:end]
    nxt = (end + 4) & ~3
    if nxt > limit or any(data[end:nxt]):
        raise OscDecodeError("malformed", "string padding")
    try:
        return raw.decode("utf-8"), nxt
    except UnicodeDecodeError:
        raise OscDecodeError("malformed", "string is not UTF-8") from None


def _decode_message(data: bytes, pos: int, limit: int) -> OscMessage:
    address, pos = _read_string(data, pos, limit)
    if not address.startswith("/"):
        raise OscDecodeError("malformed", "address does not start with '/'")
    if pos >= limit:
        raise OscDecodeError("malformed", "no type tag string")
    tags, pos = _read_string(data, pos, limit)
    if not tags.startswith(","):
        raise OscDecodeError("malformed", "type tag string does not start with ','")
    types = tags[1:]
    args: list[Any] = []
    for t in types:
        if t not in ACCEPTED_TYPES:
            raise OscDecodeError("bad_type", f"argument type {t!r} not accepted")
        if t in "if":
            if pos + 4 > limit:
                raise OscDecodeError("malformed", "argument runs past the packet")
            args.append(struct.unpack_from(">i" if t == "i" else ">f", data, pos)[0])
            pos += 4
        elif t in "hd":
            if pos + 8 > limit:
                raise OscDecodeError("malformed", "argument runs past the packet")
            args.append(struct.unpack_from(">q" if t == "h" else ">d", data, pos)[0])
            pos += 8
        elif t == "s":
            value, pos = _read_string(data, pos, limit)
            args.append(value)
        else:
            args.append(t == "T")
    if pos != limit:
        raise OscDecodeError("malformed", "bytes after the last argument")
    return OscMessage(address, types, tuple(args))


def decode_packet(data: bytes) -> list[OscMessage]:
    """Every message of a packet (a message, or a bundle of them); bundle time tags are ignored."""
    out: list[OscMessage] = []
    _decode_element(data, 0, len(data), 0, out)
    return out


def _decode_element(data: bytes, pos: int, limit: int, depth: int, out: list[OscMessage]) -> None:
    if limit - pos < 4 or (limit - pos) % 4:
        raise OscDecodeError("malformed", "size is not a positive multiple of 4")
    if data.startswith(BUNDLE_TAG, pos):
        if depth >= MAX_BUNDLE_DEPTH:
            raise OscDecodeError("bundle_too_deep", "bundles nested too deep")
        pos += 16  # tag and time tag
        if pos > limit:
            raise OscDecodeError("malformed", "bundle header cut off")
        while pos < limit:
            if pos + 4 > limit:
                raise OscDecodeError("malformed", "bundle element size cut off")
            (size,) = struct.unpack_from(">i", data, pos)
            pos += 4
            if size <= 0 or pos + size > limit:
                raise OscDecodeError("malformed", "bundle element size out of range")
            _decode_element(data, pos, pos + size, depth + 1, out)
            pos += size
        return
    if len(out) >= MAX_MESSAGES_PER_PACKET:
        raise OscDecodeError("bundle_too_large", f"more than {MAX_MESSAGES_PER_PACKET} messages in one packet")
    out.append(_decode_message(data, pos, limit))


# --- encoding -------------------------------------------------------------------------------------------

def _pad(raw: bytes) -> bytes:
    return raw + b"\x00" * (4 - len(raw) % 4)


def encode_string(text: str, max_bytes: int | None = None) -> bytes:
    raw = text.encode("utf-8", "replace").replace(b"\x00", b"")
    if max_bytes is not None and len(raw) > max_bytes:
        raw = raw[:max_bytes].decode("utf-8", "ignore").encode("utf-8")
    return _pad(raw)


def encode_message(address: str, args: Sequence[Any] = ()) -> bytes:
    """``bool`` → T/F, ``int`` → i, ``float`` → f (32-bit), ``str`` → s."""
    tags = ","
    body = b""
    for value in args:
        if isinstance(value, bool):
            tags += "T" if value else "F"
        elif isinstance(value, int):
            tags += "i"
            body += struct.pack(">i", value)
        elif isinstance(value, float):
            tags += "f"
            body += struct.pack(">f", value)
        elif isinstance(value, str):
            tags += "s"
            body += encode_string(value)
        else:
            raise TypeError(f"cannot send {type(value).__name__} over OSC")
    return encode_string(address) + encode_string(tags) + body


def encode_bundle(messages: Sequence[bytes]) -> bytes:
    """A bundle with time tag 1 ("immediately") around already-encoded messages."""
    out = BUNDLE_TAG + struct.pack(">Q", 1)
    for m in messages:
        out += struct.pack(">i", len(m)) + m
    return out


def bundle_size(message_sizes: Sequence[int]) -> int:
    return 16 + sum(4 + s for s in message_sizes)
