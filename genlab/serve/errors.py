"""The server's errors and how each is answered: a JSON body `{"error": {"message", "type", "param", "code"}}`.

A request's faults are 4xx and never carry a traceback; anything else is a 500 whose details are logged.
"""

from __future__ import annotations

import logging

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from genlab.errors import GenlabError
from genlab.serve import schemas as s

log = logging.getLogger("genlab.serve")


class ApiError(Exception):
    def __init__(
        self,
        status: int,
        message: str,
        kind: str = "invalid_request_error",
        param: str | None = None,
        headers: dict[str, str] | None = None,
    ):
        super().__init__(message)
        self.status, self.message, self.kind, self.param, self.headers = status, message, kind, param, headers


class ClientGone(Exception):
    """The client closed the connection: its work is dropped."""


class QueueFull(Exception):
    """More requests are waiting for this model than --max-queue allows."""


def error_response(
    status: int, message: str, kind: str, param: str | None = None, headers: dict[str, str] | None = None
) -> JSONResponse:
    body = s.ErrorResponse(error=s.ErrorBody(message=message, type=kind, param=param, code=str(status)))
    return JSONResponse(body.model_dump(), status_code=status, headers=headers)


async def api_error(request: Request, error: ApiError) -> JSONResponse:
    return error_response(error.status, error.message, error.kind, error.param, error.headers)


async def invalid(request: Request, error: RequestValidationError) -> JSONResponse:
    """Every problem pydantic found, each led by the field it is in ("body" for JSON that does not parse)."""
    problems = error.errors()
    where = [
        "body" if e["type"] == "json_invalid" else ".".join(str(p) for p in e["loc"] if p != "body") or "body"
        for e in problems
    ]
    message = "; ".join(f"{w}: {e['msg']}" for w, e in zip(where, problems))
    return error_response(422, message, "invalid_request_error", where[0] if where else None)


async def http_error(request: Request, error: StarletteHTTPException) -> JSONResponse:
    return error_response(
        error.status_code, str(error.detail), "invalid_request_error", headers=getattr(error, "headers", None)
    )


async def queue_full(request: Request, error: QueueFull) -> JSONResponse:
    return error_response(
        429, f"the server is busy ({error}): retry shortly", "rate_limit_error", headers={"Retry-After": "1"}
    )


async def gone(request: Request, error: ClientGone) -> Response:
    return Response(status_code=499)  # nginx's "client closed request": no one reads it


async def bad_request(request: Request, error: GenlabError) -> JSONResponse:
    return error_response(422, str(error), "invalid_request_error")


async def unexpected(request: Request, error: Exception) -> JSONResponse:
    log.exception("unexpected error answering %s %s", request.method, request.url.path)
    return error_response(500, "internal server error (logged on the server)", "server_error")


# the app's exception_handlers: each error type -> its answer
HANDLERS = {
    ApiError: api_error,
    RequestValidationError: invalid,
    StarletteHTTPException: http_error,
    QueueFull: queue_full,
    ClientGone: gone,
    GenlabError: bad_request,
    Exception: unexpected,
}
