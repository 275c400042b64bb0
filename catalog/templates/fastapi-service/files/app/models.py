"""Request and response models (pydantic v2)."""

from datetime import datetime
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field


class ItemBase(BaseModel):
    name: str = Field(min_length=1, max_length=200, examples=["Keyboard"])
    description: str | None = Field(default=None, max_length=2000)
    price: float = Field(ge=0, examples=[49.9])
    in_stock: bool = True


class ItemCreate(ItemBase):
    """Body of POST /items."""

    model_config = ConfigDict(extra="forbid")


class ItemUpdate(BaseModel):
    """Body of PATCH /items/{id}: only the fields given change."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, min_length=1, max_length=200)
    description: str | None = Field(default=None, max_length=2000)
    price: float | None = Field(default=None, ge=0)
    in_stock: bool | None = None


class Item(ItemBase):
    id: UUID
    created_at: datetime
    updated_at: datetime


class Health(BaseModel):
    status: str
    service: str
    version: str
