"""The application: `uvicorn app.main:app`."""

import logging
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from app import __version__
from app.models import Health
from app.routers import items
from app.store import ItemStore

SERVICE_NAME = "{{PROJECT_NAME}}"

logging.basicConfig(
    level=os.environ.get("LOG_LEVEL", "INFO").upper(),
    format="%(asctime)s %(levelname)s %(name)s: %(message)s",
)
logger = logging.getLogger(SERVICE_NAME)


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    # Open shared resources (database pools, HTTP clients) here.
    app.state.store = ItemStore()
    logger.info("%s %s started", SERVICE_NAME, __version__)
    yield
    logger.info("%s stopped", SERVICE_NAME)


app = FastAPI(
    title=SERVICE_NAME,
    description="{{DESCRIPTION}}",
    version=__version__,
    lifespan=lifespan,
)
app.include_router(items.router)


@app.get("/health", response_model=Health, tags=["health"])
def health() -> Health:
    return Health(status="ok", service=SERVICE_NAME, version=__version__)


if __name__ == "__main__":
    import uvicorn

    uvicorn.run(
        "app.main:app",
        host=os.environ.get("HOST", "127.0.0.1"),
        port=int(os.environ.get("PORT", "{{PORT}}")),
        reload=os.environ.get("RELOAD") == "1",
    )
