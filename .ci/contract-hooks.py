"""schemathesis hooks for .ci/contract.

Two adjustments to the positive requests schemathesis generates; the
behaviour behind each is tested in the project's own tests.

An Idempotency-Key is single-use by contract: the same key with another
request is refused (422), which is the point of the header. No schema can say
"unique per request", so generated cases would reuse the few keys the
generator draws (its examples, "0") across different requests. Each call
that carries a well-formed key gets a fresh one instead; a malformed key (a
negative case) is left as generated, so its rejection is still checked.
"""

import re
import uuid

import schemathesis

WELL_FORMED = re.compile(r"^[ \t]*[!-~]{1,255}[ \t]*$")


@schemathesis.hook
def before_call(context, case, kwargs):
    # Negative cases are left alone: they are refused before their key is
    # looked at, and editing one makes schemathesis revalidate it (with the
    # run's Authorization header in it, a "missing header" case would turn
    # into a positive one).
    if case.meta is not None and case.meta.generation.mode.is_negative:
        return
    # A claim's `wait` holds the request up to 25 s when there is nothing to
    # claim; the run's time budget is better spent elsewhere than sleeping,
    # so a generated wait is cut to at most one second.
    body = case.body
    if case.path == "/api/tasks/claim" and isinstance(body, dict) and isinstance(body.get("wait"), (int, float)):
        body["wait"] = min(body["wait"], 1)
    headers = case.headers or {}
    for name in list(headers):
        if name.lower() == "idempotency-key" and isinstance(headers[name], str) and WELL_FORMED.match(headers[name]):
            headers[name] = str(uuid.uuid4())
