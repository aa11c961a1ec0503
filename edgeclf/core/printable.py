"""`printable(text)`: a string from outside (a file or class name, a request line, an error that
quotes one) made safe to print on a terminal. Rich's markup escape is not enough: a name can hold
ESC (CSI/OSC sequences that clear the screen or retitle the terminal), a C1 control, CR or a newline
(a forged second line), or a bidirectional override such as U+202E (text shown backwards). Each such
character becomes a visible escape (\\x1b, \\n, \\u202e); everything else, accented letters and
other scripts included, is kept. Used by the console (edgeclf.cli._common), serve's log, and
wherever a name is printed."""

from __future__ import annotations

import unicodedata

# Format characters that reorder or hide text (bidi embeddings, overrides, isolates, marks)
BIDI = {"\u061c", "\u200e", "\u200f", *map(chr, range(0x202A, 0x202F)), *map(chr, range(0x2066, 0x206A))}


def _unsafe(ch: str, keep: str) -> bool:
    if ch in keep:
        return False
    return ch in BIDI or unicodedata.category(ch) in ("Cc", "Cs", "Zl", "Zp")


def printable(text: object, keep: str = "") -> str:
    """str(text) with control, surrogate, line-separator and bidi characters written as escapes
    (characters in `keep`, e.g. "\\n" for deliberate multi-line output, are left as they are)."""
    text = str(text)
    if text.isprintable() and not (BIDI & set(text)):
        return text
    out = []
    for ch in text:
        if not _unsafe(ch, keep):
            out.append(ch)
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\r":
            out.append("\\r")
        elif ch == "\t":
            out.append("\\t")
        elif ord(ch) < 0x100:
            out.append(f"\\x{ord(ch):02x}")
        else:
            out.append(f"\\u{ord(ch):04x}")
    return "".join(out)
