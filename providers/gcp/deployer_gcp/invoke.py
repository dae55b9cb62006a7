"""One prediction through the endpoint's rawPredict, errors as HTTP answers."""

from __future__ import annotations

import json

from deployer.providers import Invocation
from deployer_gcp.errors import translate
from deployer_gcp.limits import too_large
from deployer_gcp.payload import for_vertex
from deployer_gcp.scope import Scope


def invoke(scope: Scope, body: bytes, content_type: str) -> Invocation:
    """POST ``body`` through the endpoint's rawPredict.

    A bare JSON array of rows is sent as ``{"instances": [...]}`` (see payload.py);
    rawPredict carries only the body and its content type. A body over Vertex's 1.5 MB
    limit is answered 413 without calling Vertex (see limits.py). Vertex's refusals come
    back as an Invocation with their status; missing permissions or credentials raise.
    """
    from google.api_core import exceptions as gexc

    payload = for_vertex(body, content_type)
    refused = too_large(len(payload))
    if refused is not None:
        return refused
    endpoint = scope.require_endpoint()
    try:
        answer = scope.api.raw_predict(endpoint.name, payload, content_type)
    except (gexc.PermissionDenied, gexc.Unauthenticated, gexc.RetryError) as exc:
        raise translate(exc, "predict with", endpoint.name) from None
    except gexc.GoogleAPICallError as exc:
        status = int(exc.code) if exc.code else 500
        error = json.dumps({"error": exc.message}).encode()
        return Invocation(status, error, "application/json")
    return Invocation(200, bytes(answer.data), answer.content_type or "application/json")
