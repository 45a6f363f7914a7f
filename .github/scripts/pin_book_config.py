#!/usr/bin/env python
"""Point the book's repository and launch buttons at one repository and ref.

Used by .github/workflows/book.yml before ``make book``: a fork's book opens the fork's notebooks,
and a book built from a tag opens the notebooks of that tag (so Colab runs the code of the page
read). Only the ``url`` and ``branch`` lines of the top-level ``repository:`` block of
``_config.yml`` change; comments and every other line are kept.

Usage::

    python .github/scripts/pin_book_config.py _config.yml --url https://github.com/OWNER/REPO --branch v0.2.0
"""
from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

URL_PATTERN = re.compile(r"https://[A-Za-z0-9.-]+/[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+")
# git ref names as GitHub gives them in github.ref_name (no spaces, no quotes, no colons)
REF_PATTERN = re.compile(r"[A-Za-z0-9._/-]+")


def pin(text: str, url: str, branch: str) -> str:
    """Return ``text`` (a Jupyter Book ``_config.yml``) with repository.url and repository.branch set.

    Raises
    ------
    ValueError
        If ``url`` or ``branch`` is malformed, or the ``repository:`` block lacks a ``url:`` or
        ``branch:`` line.
    """
    if not URL_PATTERN.fullmatch(url):
        raise ValueError(f"url must look like https://HOST/OWNER/REPO, got {url!r}")
    if not REF_PATTERN.fullmatch(branch) or ".." in branch:
        raise ValueError(f"branch must be a git ref name (letters, digits, . _ / -), got {branch!r}")
    lines = text.splitlines(keepends=True)
    found = {"url": False, "branch": False}
    in_block = False
    for i, line in enumerate(lines):
        if re.match(r"^\S", line):  # a top-level key starts or ends the block
            in_block = line.startswith("repository:")
            continue
        key = re.match(r"^(\s+)(url|branch):(\s*)(\S[^#\n]*?)?(\s*#.*)?(\n?)$", line) if in_block else None
        if key:
            indent, name, _, _, comment, newline = key.groups()
            value = url if name == "url" else branch
            lines[i] = f"{indent}{name}: {value}{comment or ''}{newline}"
            found[name] = True
    missing = [name for name, ok in found.items() if not ok]
    if missing:
        raise ValueError(f"_config.yml has no repository.{missing[0]} line to pin")
    return "".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("config", type=Path, help="path of _config.yml")
    parser.add_argument("--url", required=True, help="repository URL, e.g. https://github.com/OWNER/REPO")
    parser.add_argument("--branch", required=True, help="branch or tag the launch buttons open")
    args = parser.parse_args(argv)
    try:
        pinned = pin(args.config.read_text(encoding="utf-8"), args.url, args.branch)
    except (OSError, ValueError) as exc:
        print(f"pin_book_config: {exc}", file=sys.stderr)
        return 2
    args.config.write_text(pinned, encoding="utf-8")
    print(f"pin_book_config: repository {args.url} at {args.branch}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
