"""What a browser gets from the service: the index page, the security headers, and error text without paths.

BentoML's own page at `/` loads a third-party tag-manager script into the viewer's browser; the service
serves this static page instead (links to the endpoints, no script at all). Every answer carries
`X-Frame-Options: DENY`, `X-Content-Type-Options: nosniff` and, unless a page sets its own, a
`Content-Security-Policy` that allows nothing; the dashboard's policy allows exactly its one inline script
(by hash) and its inline styles.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import re

# Added by `serving.guard.GuardMiddleware` to every answer that does not set them itself.
DEFAULT_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}
INDEX_CSP = "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"

INDEX_HTML = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>eta311</title><link rel="icon" href="data:,">
<style>body{font:15px/1.5 system-ui,sans-serif;max-width:44em;margin:2em auto;padding:0 1em;color:#222}
code{background:#f3f3f3;padding:0 .25em}</style></head>
<body><h1>eta311</h1>
<p>When will a 311 request be done, and which department will do it.</p>
<ul>
<li><code>POST /estimate</code>, <code>POST /estimate_batch</code>, <code>POST /open311/estimate</code>:
described in the <a href="/docs.json">OpenAPI document</a></li>
<li><a href="/dashboard">The managers' dashboard</a> and its data,
<a href="/forecast/departments">/forecast/departments</a></li>
<li><a href="/readyz">/readyz</a>, <a href="/livez">/livez</a>, <a href="/metrics">/metrics</a></li>
</ul></body></html>
"""

_ABSOLUTE_PATH = re.compile(r"(?<![\w.:/])(?:/[^/\s'\"]+)+/([^/\s'\"]+)")


@functools.cache
def dashboard_csp() -> str:
    """The dashboard page's policy: its inline script by sha256, inline styles, `data:` icon, same-origin
    links and forms only, never framed."""
    from forecast.report import SCRIPT

    script = base64.b64encode(hashlib.sha256(SCRIPT.encode()).digest()).decode()
    return (
        f"default-src 'none'; script-src 'sha256-{script}'; style-src 'unsafe-inline'; img-src data:; "
        "form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
    )


def without_paths(text: str) -> str:
    """`text` with every absolute filesystem path shortened to its file name (an unauthenticated answer
    names the file that is missing, not where the server keeps it; the log has the full path)."""
    return _ABSOLUTE_PATH.sub(r"\1", text)
