"""Entities in JUnit XML, refused before any parser sees the document: the refusals of
defusedxml (entity declarations, unparsed entities, external references), made by a scan with
expat that builds nothing."""

from __future__ import annotations

import re
from typing import Any, NoReturn
from xml.etree import ElementTree as StdET
from xml.parsers import expat

import defusedxml

_XML_DECLARED_ENCODING = re.compile(rb"""^\s*<\?xml[^>]*encoding\s*=\s*["']([A-Za-z0-9._-]+)""")


def declared_encoding(data: bytes) -> str:
    """The encoding an XML declaration names (lower case), else ``utf-8``."""
    match = _XML_DECLARED_ENCODING.match(data)
    return match.group(1).decode("ascii").lower() if match else "utf-8"


def _forbid_entity(name: str, *args: Any) -> NoReturn:
    # EntityDeclHandler gets 7 arguments, UnparsedEntityDeclHandler 5: either way, refused.
    raise defusedxml.EntitiesForbidden(name, None, None, None, None, None)


def _forbid_external(
    context: str, base: str | None, sysid: str | None, pubid: str | None
) -> NoReturn:
    raise defusedxml.ExternalReferenceForbidden(context, base, sysid, pubid)


def refuse_entities(data: bytes) -> None:
    """Scan *data* with expat (no tree built) and raise on any entity declaration or external
    reference, as defusedxml does; a document that passes declares no entity at all, so no
    parser can expand one. Malformed XML raises ParseError, as ElementTree does."""
    scanner = expat.ParserCreate()
    scanner.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
    scanner.EntityDeclHandler = _forbid_entity
    scanner.UnparsedEntityDeclHandler = _forbid_entity
    scanner.ExternalEntityRefHandler = _forbid_external
    try:
        scanner.Parse(data, True)
    except expat.ExpatError as exc:
        error = StdET.ParseError(str(exc))
        error.code = exc.code
        error.position = (exc.lineno, exc.offset)
        raise error from None


def may_declare_entities(data: bytes) -> bool:
    """Whether *data* could hold a document type declaration, where entities are declared:
    in UTF-8 (the encoding all but a few reports use) one is the bytes ``<!DOCTYPE``; any other
    encoding (a byte order mark, NULs of UTF-16, another one declared) is scanned."""
    head = data[:4]
    if head[:2] in (b"\xff\xfe", b"\xfe\xff") or b"\x00" in head:
        return True
    if declared_encoding(data) not in ("utf-8", "utf8", "us-ascii", "ascii"):
        return True
    return b"<!DOCTYPE" in data
