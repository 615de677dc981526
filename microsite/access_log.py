"""gunicorn's access log without secrets: no query strings, no referers, tokens in paths redacted.

Manage links (`/manage/<token>`) and staff calendar feeds (`/feeds/<token>.ics`) carry a secret
in the path itself, and anyone holding a log line could use it. Every atom that can carry a path
or a query (`r`, `U`, `q`, `f` and the raw-URI and referer headers) is rewritten before the
format is applied, so even an operator's own `access_log_format` cannot leak one.
"""

from __future__ import annotations

import re

from gunicorn.glogging import Logger

REDACTED = "[redacted]"
# A path segment after /manage/ or /feeds/ (with the feed's .ics kept) is a token.
_TOKEN_PATH_RE = re.compile(r"(/(?:manage|feeds)/)[^/?#\s]+?(\.ics)?(?=[/?#\s]|$)")
# Atoms that may hold a path or a query string; they are replaced, never passed through.
_PATH_ATOMS = ("U",)
_DROPPED_ATOMS = ("q", "f", "{referer}i", "{raw_uri}e", "{query_string}e", "{request_uri}e")


def redact_path(path: str) -> str:
    """The path with every token segment replaced (query strings are cut off first)."""
    path = path.split("?", 1)[0]
    return _TOKEN_PATH_RE.sub(lambda m: f"{m.group(1)}{REDACTED}{m.group(2) or ''}", path)


class RedactingLogger(Logger):
    """gunicorn's Logger, with the path atoms redacted and query/referer atoms removed."""

    def atoms(self, resp, req, environ, request_time):
        atoms = super().atoms(resp, req, environ, request_time)
        path = redact_path(environ.get("PATH_INFO") or "")
        for name in _PATH_ATOMS:
            atoms[name] = path
        atoms["r"] = f"{environ.get('REQUEST_METHOD')} {path} {environ.get('SERVER_PROTOCOL')}"
        for name in _DROPPED_ATOMS:
            atoms[name] = "-"
        for name in [key for key in atoms if key.endswith("}e")]:
            if name.lower() in ("{path_info}e", "{script_name}e"):
                atoms[name] = redact_path(str(atoms[name]))
        return atoms
