"""Generators behind one interface: the deterministic default and a diffusers pipeline from a local directory
(issue 17, item 3), registered as a product with a valid proof on the embedded chain."""

from __future__ import annotations

import hashlib
import io
import socket
from pathlib import Path

import pytest
from chain_helpers import FEE, protocol, stake
from PIL import Image
from tiny_diffusion import TINY_SIZE, build_tiny_pipeline

from market.chain.deploy import Market
from market.content import DeterministicImageGenerator, content_hash, perceptual_hash
from market.generators import make_generator, timed_generate

PROMPT = "a red fox at dawn"


@pytest.fixture(scope="module")
def pipeline_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_pipeline(tmp_path_factory.mktemp("tiny-sd"))


@pytest.fixture(scope="module")
def diffusers_generator(pipeline_dir: Path):
    from market.diffusion import DiffusersImageGenerator

    return DiffusersImageGenerator(pipeline_dir, steps=2, size=TINY_SIZE)


def image_of(data: bytes) -> Image.Image:
    return Image.open(io.BytesIO(data))


def test_the_default_spec_is_the_deterministic_generator() -> None:
    assert make_generator() == DeterministicImageGenerator()
    assert make_generator("deterministic:64") == DeterministicImageGenerator(size=64)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("dall-e", "unknown generator 'dall-e'"),
        ("deterministic:big", "needs a size of 8-4096"),
        ("diffusers", "needs the directory of a saved pipeline"),
    ],
)
def test_a_bad_generator_spec_is_refused_with_one_line(spec: str, message: str) -> None:
    with pytest.raises(ValueError, match=message) as caught:
        make_generator(spec)
    assert "\n" not in str(caught.value)


def test_a_directory_without_a_pipeline_is_refused_at_start(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="is not a diffusers pipeline directory"):
        make_generator(f"diffusers:{tmp_path}")


def test_a_tiny_local_pipeline_generates_a_png_of_its_size(diffusers_generator) -> None:
    content, seconds = timed_generate(diffusers_generator, PROMPT, seed=b"job 1")
    image = image_of(content)
    assert image.format == "PNG" and image.size == (TINY_SIZE, TINY_SIZE)
    assert seconds > 0


def test_the_same_seed_gives_the_same_image_and_a_fresh_seed_another(diffusers_generator) -> None:
    first = diffusers_generator.generate(PROMPT, seed=b"job 1")
    assert diffusers_generator.generate(PROMPT, seed=b"job 1") == first
    assert diffusers_generator.generate(PROMPT, seed=b"job 2") != first


def test_loading_and_generating_open_no_network_connection(pipeline_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*_: object, **__: object) -> None:
        raise AssertionError("the generator tried to open a network connection")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    generator = make_generator(f"diffusers:{pipeline_dir}")
    generator.steps, generator.size = 1, TINY_SIZE  # type: ignore[attr-defined]
    assert image_of(generator.generate(PROMPT, seed=b"offline")).size == (TINY_SIZE, TINY_SIZE)


def test_a_diffusers_image_is_registered_as_a_product_with_a_valid_proof(market: Market, actors, diffusers_generator) -> None:
    stake(market, actors.esp)
    honest = protocol(market)
    content = diffusers_generator.generate(PROMPT, seed=b"the ESP's secret seed for this job")
    job = honest.make_offer(actors.esp, actors.producer.address, content, hashlib.sha256(PROMPT.encode()).digest(), fee=FEE)
    honest.lock(actors.producer, job.signed)
    reveal = honest.reveal(actors.esp, job.offer, job.key)
    delivery = honest.open_content(honest.revealed_key(reveal), job.ciphertext, job.opening, job.offer)
    assert delivery.content == content  # the producer decrypts exactly what the pipeline drew
    registered = honest.register(actors.producer, job.offer, delivery.opening, uri="sha256://diffusers")
    product = market.registry.product(registered.token_id)
    assert (product.producer, product.esp) == (actors.producer.address, actors.esp.address)
    assert product.content_hash == content_hash(content)
    assert product.perceptual_hash == perceptual_hash(content)


def test_the_remembered_phash_is_imagehashs_and_the_same_bytes_are_hashed_once(monkeypatch):
    import imagehash

    images = [DeterministicImageGenerator().generate(f"a memo test {i}", seed=b"memo") for i in range(3)]
    expected = []
    for data in images:  # the oracle: imagehash itself, on the decoded image
        with Image.open(io.BytesIO(data)) as image:
            expected.append(int(str(imagehash.phash(image)), 16))
    computed = []
    real_phash = imagehash.phash
    monkeypatch.setattr(imagehash, "phash", lambda image: computed.append(1) or real_phash(image))
    assert [perceptual_hash(data) for data in images] == expected
    assert [perceptual_hash(bytes(data)) for data in images] == expected  # equal bytes, new objects
    assert len(computed) == 3
