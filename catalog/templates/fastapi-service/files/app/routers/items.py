"""CRUD endpoints for items: /items."""

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response, status

from app.models import Item, ItemCreate, ItemUpdate
from app.store import ItemStore

router = APIRouter(prefix="/items", tags=["items"])


def get_store(request: Request) -> ItemStore:
    return request.app.state.store


Store = Annotated[ItemStore, Depends(get_store)]


def not_found(item_id: UUID) -> HTTPException:
    return HTTPException(status_code=status.HTTP_404_NOT_FOUND, detail=f"item {item_id} not found")


@router.get("", response_model=list[Item])
def list_items(
    store: Store,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> list[Item]:
    return store.list(limit=limit, offset=offset)


@router.post("", response_model=Item, status_code=status.HTTP_201_CREATED)
def create_item(body: ItemCreate, store: Store, response: Response) -> Item:
    item = store.create(body)
    response.headers["Location"] = f"/items/{item.id}"
    return item


@router.get("/{item_id}", response_model=Item)
def get_item(item_id: UUID, store: Store) -> Item:
    item = store.get(item_id)
    if item is None:
        raise not_found(item_id)
    return item


@router.patch("/{item_id}", response_model=Item)
def update_item(item_id: UUID, body: ItemUpdate, store: Store) -> Item:
    item = store.update(item_id, body)
    if item is None:
        raise not_found(item_id)
    return item


@router.delete("/{item_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_item(item_id: UUID, store: Store) -> Response:
    if not store.delete(item_id):
        raise not_found(item_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
