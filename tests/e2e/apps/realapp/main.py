"""The web app: routers under a prefix, socket.io mounted at /ws, a websocket, a listener."""

import asyncio
import contextlib
import logging
import weakref

import socketio
from fastapi import APIRouter, FastAPI, WebSocket, WebSocketDisconnect

from otelkit.health import Health
from realapp import (
    logconf,  # noqa: F401  (dictConfig at import)
    tasks,
)

log = logging.getLogger("realapp.web")
sio = socketio.AsyncServer(async_mode="asgi")
app = FastAPI()
api = APIRouter(prefix="/api/v1")


@api.get("/items/{item_id}")
async def item(item_id: int) -> dict:
    log.info("item served", extra={"item_id": item_id})
    return {"id": item_id}


@api.post("/orders/{order_id}")
def order(order_id: int) -> dict:
    chain = tasks.add.s(order_id, 1) | tasks.add.s(10)
    chain.apply_async()
    tasks.flaky.delay(order_id)
    tasks.remind.apply_async((order_id,), countdown=1)
    log.info("order accepted", extra={"order_id": order_id})
    return {"order_id": order_id}


@api.get("/crash")
async def crash() -> dict:
    raise RuntimeError("kaput")


@api.get("/listen")
async def listen() -> dict:
    async def listener() -> None:
        for tick in range(3):
            await asyncio.sleep(0.3)
            log.info("listener tick", extra={"tick": tick})

    app.state.listener = asyncio.create_task(listener())
    return {"listening": True}


class _Connection:
    def __str__(self) -> str:
        return "<connection /chat>"


@app.websocket("/chat")
async def chat(websocket: WebSocket) -> None:
    await websocket.accept()
    connection = _Connection()
    message = await websocket.receive_text()
    log.info("chat message", extra={"connection": weakref.proxy(connection), "size": len(message)})
    await websocket.send_text(message)
    with contextlib.suppress(WebSocketDisconnect):
        await websocket.receive_text()  # until the client hangs up


app.include_router(api)
app.include_router(Health().router())
_sio_app = socketio.ASGIApp(sio)


async def _socketio(scope, receive, send) -> None:
    # Starlette >= 0.33 keeps the mount in "path"; engine.io expects it stripped, as older ones did.
    root = scope.get("root_path", "")
    if root and scope["path"].startswith(root):
        scope = {**scope, "path": scope["path"][len(root) :]}
    await _sio_app(scope, receive, send)


app.mount("/ws", _socketio)
