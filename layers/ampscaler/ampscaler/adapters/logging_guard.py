"""Keeps credentials out of the logs whatever the root log level: pins the HTTP/AWS libraries' loggers.

At DEBUG, botocore logs each canonical request it signs (``X-Amz-Security-Token`` included, and
the EKS token is such a presigned URL), urllib3 logs request lines, and the kubernetes client logs
response bodies. A function whose root logger is at DEBUG (``POWERTOOLS_LOG_LEVEL=DEBUG``) would
write the session token to CloudWatch. ``guard_library_loggers`` pins those loggers at WARNING and
adds a redacting filter to the ones that format credentials, so even a later ``setLevel(DEBUG)``
on them cannot log a secret. The composition root calls it once at import.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from ampscaler.adapters.bounded_http import redact_text

# Library loggers pinned at WARNING: nothing below it is needed in a function's logs.
PINNED_LOGGERS: tuple[str, ...] = (
    "botocore",
    "boto3",
    "s3transfer",
    "urllib3",
    "requests",
    "requests_aws4auth",
    "kubernetes",
)
# Loggers whose records can carry credentials (canonical requests, presigned URLs, headers,
# bodies); each gets the redacting filter as well, because a logger's filters do not apply to
# records of its children.
REDACTED_LOGGERS: tuple[str, ...] = (
    "botocore",
    "botocore.auth",
    "botocore.endpoint",
    "botocore.hooks",
    "botocore.httpsession",
    "botocore.parsers",
    "botocore.credentials",
    "botocore.utils",
    "botocore.retryhandler",
    "urllib3",
    "urllib3.connectionpool",
    "urllib3.connection",
    "requests_aws4auth",
    "kubernetes",
    "kubernetes.client.rest",
)


class RedactingFilter(logging.Filter):
    """Rewrites a record's message with credentials (tokens, signatures, URL userinfo) masked."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a malformed record: drop its arguments rather than the record
            message = str(record.msg)
        redacted = redact_text(message)
        for marker in ("x-amz-security-token:", "authorization:"):
            # Canonical requests list headers one per line: "x-amz-security-token:<token>".
            redacted = "\n".join(
                line.split(":", 1)[0] + ":<redacted>" if line.strip().lower().startswith(marker) else line
                for line in redacted.split("\n")
            )
        record.msg, record.args = redacted, None
        return True


_FILTER = RedactingFilter()


def guard_library_loggers(
    pinned: Iterable[str] = PINNED_LOGGERS,
    redacted: Iterable[str] = REDACTED_LOGGERS,
    level: int = logging.WARNING,
) -> None:
    """Pin the library loggers at ``level`` and redact the credential-carrying ones. Idempotent.

    Call once from the composition root (the handler module's import), before any client is made.
    """
    for name in pinned:
        logging.getLogger(name).setLevel(level)
    for name in redacted:
        logger = logging.getLogger(name)
        if _FILTER not in logger.filters:
            logger.addFilter(_FILTER)
