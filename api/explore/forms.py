"""Form bodies without python-multipart: urlencoded fields and multipart file parts, parsed with the standard library.

The body limit middleware (`MAX_BODY_BYTES`) has already bounded what is read here.
"""

from __future__ import annotations

from email import message_from_bytes
from email.message import Message
from email.policy import HTTP
from urllib.parse import parse_qs


def urlencoded(body: bytes) -> dict[str, str]:
    """The fields of an `application/x-www-form-urlencoded` body (the first value of each)."""
    fields = parse_qs(body.decode("utf-8", errors="replace"), keep_blank_values=True, max_num_fields=50)
    return {name: values[0] for name, values in fields.items()}


def multipart_file(content_type: str, body: bytes, name: str) -> bytes | None:
    """The bytes of the part named `name` of a `multipart/form-data` body (None when absent or malformed)."""
    if not content_type.lower().startswith("multipart/form-data") or "boundary=" not in content_type:
        return None
    message: Message = message_from_bytes(b"Content-Type: " + content_type.encode("latin-1") + b"\r\n\r\n" + body, policy=HTTP)
    if not message.is_multipart():
        return None
    for part in message.iter_parts():  # type: ignore[attr-defined]
        if part.get_param("name", header="content-disposition") == name:
            payload = part.get_payload(decode=True)
            return payload if isinstance(payload, bytes) else None
    return None
