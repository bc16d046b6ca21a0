"""Sign-In with Ethereum (EIP-4361): the message a self-custodied account signs, written and read exactly.

A client asks for a nonce (`POST /auth/nonce`), writes the message below with `SignInMessage.text`,
signs it with its own key (EIP-191 `personal_sign`) and sends message and signature to `POST
/auth/sign-in`; the server parses the text back (`SignInMessage.parse`: every line as the EIP's ABNF
has it, nothing else), checks domain, URI, version, chain id, the nonce it issued (once, before it
expires), the validity times, and that the signature recovers the message's address
(`verify_signature`). The server never sees the key (docs/api.md#self-custodied-accounts).

Why not the `siwe` package: its releases pin web3 < 8 and eth-account < 0.14, older than this
project's; the message format is small and fixed, so it is written here, with the EIP's own
examples as tests (tests/api/test_api_siwe.py).

    {domain} wants you to sign in with your Ethereum account:
    {address}

    {statement}

    URI: {uri}
    Version: 1
    Chain ID: {chain_id}
    Nonce: {nonce}
    Issued At: {issued_at}
    Expiration Time: {expiration_time}      (optional)
    Not Before: {not_before}                (optional)
    Request ID: {request_id}                (optional)
    Resources:                              (optional)
    - {uri}
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime

from eth_account import Account
from eth_account.messages import encode_defunct
from eth_utils.address import is_checksum_address

VERSION = "1"
HEADER = " wants you to sign in with your Ethereum account:"
NONCE_PATTERN = re.compile(r"^[A-Za-z0-9]{8,}$")
#: Optional fields after Issued At, in the order the EIP fixes.
OPTIONAL_FIELDS = (("expiration_time", "Expiration Time"), ("not_before", "Not Before"), ("request_id", "Request ID"))


class SignInError(ValueError):
    """A sign-in message that is malformed, or that this server must refuse; `code` is the API's error code."""

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(detail)
        self.code, self.detail = code, detail


def _timestamp(text: str, name: str) -> datetime:
    """An RFC 3339 date-time with a time zone (`Z` or an offset)."""
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise SignInError("malformed_sign_in", f"{name} is not an RFC 3339 date-time: {text!r}") from None
    if value.tzinfo is None:
        raise SignInError("malformed_sign_in", f"{name} has no time zone: {text!r}")
    return value


def format_time(value: datetime) -> str:
    return value.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


@dataclass(frozen=True)
class SignInMessage:
    domain: str
    address: str
    uri: str
    chain_id: int
    nonce: str
    issued_at: str
    statement: str | None = None
    version: str = VERSION
    expiration_time: str | None = None
    not_before: str | None = None
    request_id: str | None = None
    resources: tuple[str, ...] = field(default_factory=tuple)

    def text(self) -> str:
        """The message as EIP-4361 writes it (what the account signs)."""
        lines = [f"{self.domain}{HEADER}", self.address, ""]
        if self.statement is not None:
            lines += [self.statement, ""]
        lines += [f"URI: {self.uri}", f"Version: {self.version}", f"Chain ID: {self.chain_id}", f"Nonce: {self.nonce}"]
        lines.append(f"Issued At: {self.issued_at}")
        for attribute, label in OPTIONAL_FIELDS:
            value = getattr(self, attribute)
            if value is not None:
                lines.append(f"{label}: {value}")
        if self.resources:
            lines += ["Resources:", *(f"- {resource}" for resource in self.resources)]
        return "\n".join(lines)

    @classmethod
    def parse(cls, text: str) -> SignInMessage:
        """The message that `text` is, line by line; `SignInError("malformed_sign_in")` for anything else."""

        def malformed(why: str) -> SignInError:
            return SignInError("malformed_sign_in", f"not an EIP-4361 message: {why}")

        if any((ord(c) < 0x20 and c != "\n") or 0x7F <= ord(c) <= 0x9F for c in text):
            raise malformed("a control character other than the line feed")
        lines = text.split("\n")
        if len(lines) < 8 or not lines[0].endswith(HEADER):
            raise malformed(f"the first line must end with {HEADER.strip()!r}")
        domain, address = lines[0][: -len(HEADER)], lines[1]
        if not domain or any(c.isspace() for c in domain):
            raise malformed("the domain is empty or holds spaces")
        if not is_checksum_address(address):
            raise malformed("the second line must be an EIP-55 checksummed address")
        if lines[2] != "":
            raise malformed("an empty line must follow the address")
        index, statement = 3, None
        if not lines[index].startswith("URI: "):
            statement = lines[index]
            if statement == "" or lines[index + 1] != "":
                raise malformed("the statement is one line, followed by an empty line")
            index += 2

        def take(label: str, optional: bool = False) -> str | None:
            nonlocal index
            prefix = f"{label}: "
            if index < len(lines) and lines[index].startswith(prefix):
                index += 1
                return lines[index - 1][len(prefix) :]
            if optional:
                return None
            raise malformed(f"line {index + 1} must be {label!r}")

        uri, version, chain_id, nonce, issued_at = (take(label) for label in ("URI", "Version", "Chain ID", "Nonce", "Issued At"))
        assert uri is not None and version is not None and chain_id is not None and nonce is not None and issued_at is not None
        optional = {attribute: take(label, optional=True) for attribute, label in OPTIONAL_FIELDS}
        resources: list[str] = []
        if index < len(lines) and lines[index] == "Resources:":
            index += 1
            while index < len(lines) and lines[index].startswith("- "):
                resources.append(lines[index][2:])
                index += 1
        if index != len(lines):
            raise malformed(f"unexpected line {index + 1}")
        if version != VERSION:
            raise malformed(f"version must be {VERSION}")
        if not chain_id.isdigit():
            raise malformed("the chain id must be a decimal number")
        if not NONCE_PATTERN.match(nonce):
            raise malformed("the nonce must be at least 8 letters or digits")
        for name, value in (
            ("Issued At", issued_at),
            ("Expiration Time", optional["expiration_time"]),
            ("Not Before", optional["not_before"]),
        ):
            if value is not None:
                _timestamp(value, name)
        return cls(
            domain=domain,
            address=address,
            uri=uri,
            chain_id=int(chain_id),
            nonce=nonce,
            issued_at=issued_at,
            statement=statement,
            version=version,
            resources=tuple(resources),
            **optional,
        )

    def check(self, *, domain: str, chain_id: int, now: datetime, max_lifetime_s: int, skew_s: int = 60) -> datetime:
        """Refuse a message not meant for this server or not valid at `now`; returns when it expires.

        The message must carry an expiration time no later than `max_lifetime_s` after it was issued: the
        session it opens lasts until then."""
        if self.domain != domain:
            raise SignInError("sign_in_wrong_domain", f"the message is for {self.domain}, this server is {domain}")
        if self.chain_id != chain_id:
            raise SignInError("sign_in_wrong_chain", f"the message is for chain {self.chain_id}, this server's is {chain_id}")
        issued = _timestamp(self.issued_at, "Issued At")
        if (issued - now).total_seconds() > skew_s:
            raise SignInError("sign_in_not_yet_valid", "the message was issued in the future")
        if self.not_before is not None and now < _timestamp(self.not_before, "Not Before"):
            raise SignInError("sign_in_not_yet_valid", "the message is not valid before its Not Before time")
        if self.expiration_time is None:
            raise SignInError("sign_in_expired", "the message must carry an Expiration Time")
        expires = _timestamp(self.expiration_time, "Expiration Time")
        if expires <= now:
            raise SignInError("sign_in_expired", "the message has expired")
        if (expires - issued).total_seconds() > max_lifetime_s:
            raise SignInError("sign_in_expired", f"a sign-in may last at most {max_lifetime_s} s")
        return expires


def verify_signature(message: SignInMessage, signature: str) -> None:
    """Refuse unless `signature` (65-byte EIP-191 personal_sign, 0x-hex) of the message's text recovers its address."""
    try:
        recovered = Account.recover_message(encode_defunct(text=message.text()), signature=signature)
    except Exception:  # malformed bytes, a bad recovery id, s out of range: the library's many ways of saying no
        raise SignInError("invalid_signature", "the signature is not a valid signature of the message") from None
    if recovered != message.address:
        raise SignInError("invalid_signature", "the signature was not made by the message's address")


def sign(message: SignInMessage, key: bytes) -> str:
    """The account's signature of the message (what a wallet's personal_sign returns): for clients and tests."""
    return "0x" + bytes(Account.sign_message(encode_defunct(text=message.text()), key).signature).hex()
