"""genlab's own routes beside the OpenAI API, open without the API key: /health and the Prometheus /metrics."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from genlab.serve.server import server_of

router = APIRouter()


@router.get("/health")
async def health(request: Request) -> dict[str, Any]:
    return {"status": "ok", "models": list(server_of(request).served)}


@router.get("/metrics", include_in_schema=False)
async def prometheus(request: Request) -> Response:
    return Response(generate_latest(server_of(request).metrics.registry), media_type=CONTENT_TYPE_LATEST)
