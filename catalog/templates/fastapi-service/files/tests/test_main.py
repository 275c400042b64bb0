from collections.abc import Iterator
from uuid import uuid4

import pytest
from fastapi.testclient import TestClient

from app.main import app


@pytest.fixture
def client() -> Iterator[TestClient]:
    # The context manager runs the lifespan, so every test gets a fresh store.
    with TestClient(app) as c:
        yield c


def test_health(client: TestClient) -> None:
    r = client.get("/health")
    assert r.status_code == 200
    assert r.json()["status"] == "ok"


def test_create_get_list(client: TestClient) -> None:
    r = client.post("/items", json={"name": "Keyboard", "price": 49.9})
    assert r.status_code == 201
    item = r.json()
    assert item["name"] == "Keyboard"
    assert item["in_stock"] is True
    assert r.headers["location"] == f"/items/{item['id']}"

    assert client.get(f"/items/{item['id']}").json() == item
    assert [i["id"] for i in client.get("/items").json()] == [item["id"]]


def test_update_changes_only_given_fields(client: TestClient) -> None:
    item = client.post("/items", json={"name": "Mouse", "price": 20}).json()
    r = client.patch(f"/items/{item['id']}", json={"price": 25})
    assert r.status_code == 200
    assert r.json()["price"] == 25
    assert r.json()["name"] == "Mouse"


def test_delete(client: TestClient) -> None:
    item = client.post("/items", json={"name": "Cable", "price": 5}).json()
    assert client.delete(f"/items/{item['id']}").status_code == 204
    assert client.get(f"/items/{item['id']}").status_code == 404
    assert client.delete(f"/items/{item['id']}").status_code == 404


def test_invalid_input_is_rejected(client: TestClient) -> None:
    assert client.post("/items", json={"name": "", "price": 1}).status_code == 422
    assert client.post("/items", json={"name": "x", "price": -1}).status_code == 422
    assert client.post("/items", json={"name": "x", "price": 1, "colour": "red"}).status_code == 422
    assert client.get("/items/not-a-uuid").status_code == 422


def test_missing_item_is_404(client: TestClient) -> None:
    assert client.get(f"/items/{uuid4()}").status_code == 404


def test_pagination(client: TestClient) -> None:
    for n in range(5):
        client.post("/items", json={"name": f"item {n}", "price": n})
    page = client.get("/items", params={"limit": 2, "offset": 2}).json()
    assert [i["name"] for i in page] == ["item 2", "item 3"]
