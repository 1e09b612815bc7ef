"""genlab's own routes beside the OpenAI API, open without the API key: /health and the Prometheus /metrics."""

from __future__ import annotations

import os
from typing import Any

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST

from genlab.serve.metrics import rss_mb
from genlab.serve.server import server_of

router = APIRouter()


@router.get("/health")
async def health(request: Request) -> dict[str, Any]:
    """Up, with the models; `worker` and `rss_mb` are the answering process's (one of --workers N)."""
    return {"status": "ok", "models": list(server_of(request).served), "worker": os.getpid(), "rss_mb": rss_mb()}


@router.get("/metrics", include_in_schema=False)
async def prometheus(request: Request) -> Response:
    """Prometheus text: with --workers N, the totals over every worker (genlab.serve.metrics)."""
    return Response(server_of(request).metrics.exposition(), media_type=CONTENT_TYPE_LATEST)
