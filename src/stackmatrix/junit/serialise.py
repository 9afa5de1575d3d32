"""XML text of the merged file's elements, as ``ElementTree.tostring`` writes them, by a
shorter path for plain elements (no namespace, no comment): ElementTree's own serialiser is
pure Python and general, and a merged file holds a million testcases."""

from __future__ import annotations

import re

from stackmatrix.junit.read import ETREE, XmlElement

ATTRIBUTE_SPECIAL = re.compile('[&<>"\r\n\t]')
"""A character an attribute's value cannot hold as it is."""


def _escape_attribute(text: str) -> str:
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    text = text.replace('"', "&quot;").replace("\r", "&#13;").replace("\n", "&#10;")
    return text.replace("\t", "&#09;")


def _escape_text(text: str) -> str:
    if "&" in text or "<" in text or ">" in text:
        return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return text


class _NotPlain(Exception):
    """An element the plain serialiser leaves to ElementTree (a namespace, a comment)."""


def _attributes(elem: XmlElement) -> str:
    pairs = elem.items()
    joined = ""
    for key, value in pairs:
        joined += f' {key}="{value}"'
    if (
        "&" in joined
        or "<" in joined
        or ">" in joined
        or "\n" in joined
        or "\r" in joined
        or "\t" in joined
        or "{" in joined
        or joined.count('"') != 2 * len(pairs)
    ):
        # A value to escape, or a namespace (checked on the whole: most have neither).
        if any("{" in key or not isinstance(value, str) for key, value in pairs):
            raise _NotPlain
        joined = "".join([f' {key}="{_escape_attribute(value)}"' for key, value in pairs])
    return joined


def _write_child(child: XmlElement, out: list[str]) -> None:
    if len(child) or child.text:
        _write_plain(child, out)
        return
    # An empty element, as most testcases are.
    child_tag = child.tag
    if not isinstance(child_tag, str) or "{" in child_tag:
        raise _NotPlain
    tail = child.tail
    if tail:
        out.append(f"<{child_tag}{_attributes(child)} />{_escape_text(tail)}")
    else:
        out.append(f"<{child_tag}{_attributes(child)} />")


def _write_plain(elem: XmlElement, out: list[str]) -> None:
    tag = elem.tag
    if not isinstance(tag, str) or "{" in tag:
        raise _NotPlain
    text = elem.text
    if text or len(elem):
        out.append(f"<{tag}{_attributes(elem)}>")
        if text:
            out.append(_escape_text(text))
        for child in elem:
            _write_child(child, out)
        out.append(f"</{tag}>")
    else:
        out.append(f"<{tag}{_attributes(elem)} />")
    tail = elem.tail
    if tail:
        out.append(_escape_text(tail))


def serialise(elem: XmlElement) -> str:
    """*elem* as XML text, as ``ElementTree.tostring`` writes it (its tail included); the
    plain elements of a merged file are written by a shorter path than ElementTree's own."""
    out: list[str] = []
    try:
        _write_plain(elem, out)
    except _NotPlain:
        return str(ETREE.tostring(elem, encoding="unicode"))
    return "".join(out)


def serialise_around(elem: XmlElement, first: int, inner: list[str]) -> str | None:
    """*elem* as :func:`serialise` writes it, *inner* (the XML text of more children, tails
    included) coming after its first *first* children: a suite written around its testcases
    without holding them as elements. None when *elem* is not plain (it has a namespace)."""
    tag = elem.tag
    out: list[str] = []
    try:
        if not isinstance(tag, str) or "{" in tag:
            raise _NotPlain
        children = list(elem)
        text = elem.text
        if not (text or children or inner):
            _write_plain(elem, out)
            return "".join(out)
        out.append(f"<{tag}{_attributes(elem)}>")
        if text:
            out.append(_escape_text(text))
        for child in children[:first]:
            _write_child(child, out)
        out += inner
        for child in children[first:]:
            _write_child(child, out)
        out.append(f"</{tag}>")
        if elem.tail:
            out.append(_escape_text(elem.tail))
    except _NotPlain:
        return None
    return "".join(out)


def is_plain(elem: XmlElement) -> bool:
    """Whether :func:`serialise` writes *elem* and all it holds by its own shorter path (no
    namespace anywhere, no comment)."""
    for each in elem.iter():
        tag = each.tag
        if not isinstance(tag, str) or "{" in tag:
            return False
        for key, value in each.items():
            if "{" in key or not isinstance(value, str):
                return False
    return True


def escape_attribute(value: str) -> str:
    """*value* as :func:`serialise` writes an attribute's value (without the quotes)."""
    return _escape_attribute(value) if ATTRIBUTE_SPECIAL.search(value) else value


def escape_text(text: str) -> str:
    """*text* as :func:`serialise` writes an element's text or tail."""
    return _escape_text(text)
