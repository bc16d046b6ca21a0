"""Generated content: a pluggable generator, perceptual hashes, near-duplicates, encryption, storage.

The default generator draws a deterministic PNG from the prompt, so that perceptual hashes
(imagehash pHash) mean something: the same prompt gives the same image, a cropped, noisy or
brightened copy stays within a few bits, and a different prompt lands far away.
"""

from __future__ import annotations

import hashlib
import io
import os
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol

import imagehash
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from PIL import Image, ImageDraw, ImageEnhance

IMAGE_SIZE = 128
NONCE_BYTES = 12

Perturbation = Literal["crop", "noise", "brightness"]
PERTURBATIONS: tuple[Perturbation, ...] = ("crop", "noise", "brightness")


class Generator(Protocol):
    """Anything that turns a prompt (and the ESP's secret per-job seed) into content bytes."""

    def generate(self, prompt: str, seed: bytes = b"") -> bytes: ...


@dataclass(frozen=True)
class DeterministicImageGenerator:
    """A PNG of shapes and colours derived from sha256(seed || prompt): same seed and prompt, same image.

    An ESP passes a fresh secret seed per job, as a diffusion model draws its initial noise: content
    that anyone could compute from the prompt alone could be committed earlier by someone else, and
    priority between generations assumes unpredictable content (`docs/protocol.md`).
    """

    size: int = IMAGE_SIZE

    def generate(self, prompt: str, seed: bytes = b"") -> bytes:
        rng = random.Random(hashlib.sha256(seed + prompt.encode()).digest())
        image = Image.new("RGB", (self.size, self.size), tuple(rng.randrange(256) for _ in range(3)))
        draw = ImageDraw.Draw(image)
        for _ in range(12):
            x0, y0 = rng.randrange(self.size), rng.randrange(self.size)
            x1, y1 = x0 + rng.randrange(8, self.size // 2), y0 + rng.randrange(8, self.size // 2)
            colour = tuple(rng.randrange(256) for _ in range(3))
            (draw.ellipse if rng.random() < 0.5 else draw.rectangle)((x0, y0, x1, y1), fill=colour)
        return png_bytes(image)


def png_bytes(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=False)
    return buffer.getvalue()


def content_hash(data: bytes) -> bytes:
    """sha256 of the content bytes, as the registry records it."""
    return hashlib.sha256(data).digest()


#: pHashes already computed, by the sha256 of the image bytes (at most PHASH_MEMO of them, oldest dropped first).
_phashes: dict[bytes, int] = {}
PHASH_MEMO = 4096


def perceptual_hash(data: bytes) -> int:
    """64-bit pHash of an image, as an unsigned integer.

    Remembered by the sha256 of the bytes: in a simulation the producer checks the very bytes its ESP hashed
    (decrypted from the offer's ciphertext), and a pHash costs ~2 ms (PNG decode, resize, DCT) against ~20 µs
    for the sha256. The same bytes always give the same pHash, so the memo changes no result.
    """
    digest = hashlib.sha256(data).digest()
    known = _phashes.get(digest)
    if known is None:
        with Image.open(io.BytesIO(data)) as image:
            known = int(str(imagehash.phash(image)), 16)
        if len(_phashes) >= PHASH_MEMO:
            _phashes.pop(next(iter(_phashes)), None)
        _phashes[digest] = known
    return known


def hamming_distance(a: int, b: int) -> int:
    return (a ^ b).bit_count()


def near_duplicate(data: bytes, how: Perturbation, seed: int = 0) -> bytes:
    """A plagiarist's copy: slightly cropped, noisy or brightened; a new sha256, a close pHash."""
    rng = random.Random(seed)
    with Image.open(io.BytesIO(data)) as original:
        image = original.convert("RGB")
    width, height = image.size
    if how == "crop":
        margin = max(1, width // 32)
        image = image.crop((margin, margin, width - margin, height - margin)).resize((width, height))
    elif how == "noise":
        pixels = image.load()
        assert pixels is not None  # an RGB image in memory always has pixel access
        for _ in range(width * height // 20):
            x, y = rng.randrange(width), rng.randrange(height)
            r, g, b = pixels[x, y]  # type: ignore[misc]  # an RGB pixel is a 3-tuple
            jitter = rng.randint(-24, 24)
            pixels[x, y] = (max(0, min(255, r + jitter)), max(0, min(255, g + jitter)), max(0, min(255, b + jitter)))
    elif how == "brightness":
        image = ImageEnhance.Brightness(image).enhance(1.1 + 0.1 * rng.random())
    else:
        raise ValueError(f"how must be one of {PERTURBATIONS}, got {how!r}")
    return png_bytes(image)


def encrypt(key: bytes, plaintext: bytes) -> bytes:
    """AES-256-GCM under the 32-byte HTLC preimage; returns nonce || ciphertext+tag."""
    if len(key) != 32:
        raise ValueError(f"key must be 32 bytes, got {len(key)}")
    nonce = os.urandom(NONCE_BYTES)
    return nonce + AESGCM(key).encrypt(nonce, plaintext, None)


def decrypt(key: bytes, blob: bytes) -> bytes:
    """Inverse of `encrypt`; raises cryptography's InvalidTag for a wrong key or tampered blob."""
    return AESGCM(key).decrypt(blob[:NONCE_BYTES], blob[NONCE_BYTES:], None)


@dataclass(frozen=True)
class ContentStore:
    """Blobs on disk addressed by their sha256 (hex), in a directory."""

    root: Path

    def put(self, blob: bytes) -> str:
        digest = hashlib.sha256(blob).hexdigest()
        path = self.root / digest[:2] / digest
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            temporary = path.with_suffix(".tmp")
            temporary.write_bytes(blob)
            temporary.replace(path)
        return digest

    def get(self, digest: str) -> bytes:
        if len(digest) != 64 or any(ch not in "0123456789abcdef" for ch in digest):
            raise ValueError(f"digest must be 64 lowercase hex characters, got {digest!r}")
        blob = (self.root / digest[:2] / digest).read_bytes()
        if hashlib.sha256(blob).hexdigest() != digest:
            raise ValueError(f"stored blob {digest} does not match its address")
        return blob
