"""``multipart/form-data`` bodies, parsed with the stdlib (``cgi`` is gone in Python 3.13).

``gems serve-generator``'s ``POST /v1/images/edits`` takes the OpenAI edits form: text
fields and image files. The body has already been read, under the server's size limit;
this splits it into parts at the boundary (RFC 7578) and reads each part's headers with
``email.parser``, so quoted and RFC 2231-encoded names work. Part contents are kept
byte for byte. Bad bodies raise ``ValueError`` with the reason, which the server answers
with 400.
"""

from __future__ import annotations

import email.policy
from dataclasses import dataclass
from email.message import Message
from email.parser import BytesHeaderParser

#: Most parts a form may have (the edits form has about 15 fields).
MAX_PARTS = 64


@dataclass(frozen=True)
class FormPart:
    """One field of a form: a text field (``filename`` None) or an uploaded file."""

    name: str
    data: bytes
    filename: str | None = None
    content_type: str = "text/plain"

    def text(self) -> str:
        """The field as text; ``ValueError`` when it is not UTF-8."""
        try:
            return self.data.decode("utf-8")
        except UnicodeDecodeError:
            raise ValueError(f"form field {self.name!r} is not UTF-8 text") from None


def boundary_of(content_type: str) -> str:
    """The ``boundary`` parameter of a ``multipart/form-data`` Content-Type; ``ValueError`` when absent."""
    header = Message()
    header["Content-Type"] = content_type
    boundary = header.get_param("boundary")
    if not isinstance(boundary, str) or not 1 <= len(boundary) <= 70:
        raise ValueError("multipart/form-data without a boundary (Content-Type: multipart/form-data; boundary=...)")
    return boundary


def parse_form_data(body: bytes, content_type: str) -> list[FormPart]:
    """The parts of a ``multipart/form-data`` body, in order (a name may repeat)."""
    delimiter = b"--" + boundary_of(content_type).encode("latin-1")
    # Every delimiter but a leading one follows a CRLF: prepend one so all look alike.
    pieces = (b"\r\n" + body).split(b"\r\n" + delimiter)
    if len(pieces) < 2:
        raise ValueError("multipart body has no parts (its boundary does not occur in it)")
    parts: list[FormPart] = []
    for piece in pieces[1:]:  # pieces[0] is the preamble
        if piece.startswith(b"--"):  # the closing delimiter; anything after it is the epilogue
            return parts
        if len(parts) == MAX_PARTS:
            raise ValueError(f"multipart body has more than {MAX_PARTS} parts")
        parts.append(_part(piece))
    raise ValueError("multipart body ends without its closing boundary (truncated?)")


def _part(piece: bytes) -> FormPart:
    """One part: optional whitespace after the delimiter, CRLF, headers, a blank line, the content."""
    line_end = piece.find(b"\r\n")
    if line_end < 0 or piece[:line_end].strip(b" \t"):
        raise ValueError("multipart body is malformed: a boundary is not followed by a line break")
    head, sep, data = piece[line_end + 2 :].partition(b"\r\n\r\n")
    if not sep:
        raise ValueError("multipart part has no blank line between its headers and its content")
    headers = BytesHeaderParser(policy=email.policy.HTTP).parsebytes(head + b"\r\n\r\n")
    if headers.get_content_disposition() != "form-data":
        raise ValueError("multipart part without 'Content-Disposition: form-data'")
    name = headers.get_param("name", header="content-disposition")
    if not isinstance(name, str) or not name:
        raise ValueError("multipart part without a field name (Content-Disposition: form-data; name=...)")
    return FormPart(name=name, data=data, filename=headers.get_filename(), content_type=headers.get_content_type())
