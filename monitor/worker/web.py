"""The worker's pages on aiohttp: ``/metrics``, ``/status``, ``/healthz`` and ``/livez``.

Nothing else is served: no state by key, no statistics of the internals.
"""

from __future__ import annotations

from aiohttp import web

from monitor.worker import health as worker_health
from monitor.worker.loop import Worker

_METRICS_TYPE = "text/plain"  # aiohttp takes the charset and version apart


def application(worker: Worker) -> web.Application:
    async def metrics(request: web.Request) -> web.Response:
        worker.metrics.record_consumer_lag(await worker.consumer_lag())
        worker.record_feed_ages()
        return web.Response(
            body=await worker.metrics.page(),
            content_type=_METRICS_TYPE,
            charset="utf-8",
            headers={"X-Content-Type-Options": "nosniff"},
        )

    async def status(request: web.Request) -> web.Response:
        # ?exchange=dmm&exchange=...: those exchanges' reports only, if owned here
        wanted = request.query.getall("exchange", [])
        reports = await worker.status(only=set(wanted) if wanted else None)
        return web.json_response({"app_id": worker.settings.app_id, "exchanges": reports})

    async def healthz(request: web.Request) -> web.Response:
        health = worker.health()
        return web.json_response(health.to_document(), status=health.http_status)

    async def livez(request: web.Request) -> web.Response:
        since_tick, tick_limit = worker.tick_silence()
        alive = worker_health.liveness(since_tick=since_tick, tick_limit=tick_limit)
        return web.json_response(alive.to_document(), status=alive.http_status)

    app = web.Application()
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/status", status)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/livez", livez)
    return app


async def serve(worker: Worker, host: str, port: int) -> web.AppRunner:
    """Start serving the worker's pages; the caller cleans the runner up."""
    runner = web.AppRunner(application(worker), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    return runner
