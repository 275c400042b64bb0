from flask.testing import FlaskClient


def test_health(client: FlaskClient) -> None:
    r = client.get("/health")
    assert r.status_code == 200
    assert r.get_json() == {"status": "ok"}


def test_create_and_get(client: FlaskClient) -> None:
    r = client.post("/tasks", json={"title": "  Write docs  "})
    assert r.status_code == 201
    task = r.get_json()
    assert task["title"] == "Write docs"
    assert task["done"] is False
    assert r.headers["Location"] == f"/tasks/{task['id']}"
    assert client.get(f"/tasks/{task['id']}").get_json() == task


def test_update_and_filter(client: FlaskClient) -> None:
    a = client.post("/tasks", json={"title": "a"}).get_json()
    client.post("/tasks", json={"title": "b"})
    r = client.patch(f"/tasks/{a['id']}", json={"done": True})
    assert r.status_code == 200
    assert r.get_json()["done"] is True
    done = client.get("/tasks?done=true").get_json()["items"]
    assert [t["title"] for t in done] == ["a"]


def test_pagination(client: FlaskClient) -> None:
    for n in range(5):
        client.post("/tasks", json={"title": f"task {n}"})
    first = client.get("/tasks?limit=2").get_json()
    assert [t["title"] for t in first["items"]] == ["task 0", "task 1"]
    second = client.get(f"/tasks?limit=2&after={first['next_after']}").get_json()
    assert [t["title"] for t in second["items"]] == ["task 2", "task 3"]


def test_delete(client: FlaskClient) -> None:
    task = client.post("/tasks", json={"title": "temp"}).get_json()
    assert client.delete(f"/tasks/{task['id']}").status_code == 204
    r = client.get(f"/tasks/{task['id']}")
    assert r.status_code == 404
    assert "not found" in r.get_json()["error"]


def test_validation(client: FlaskClient) -> None:
    assert client.post("/tasks", json={}).status_code == 422
    assert client.post("/tasks", json={"title": ""}).status_code == 422
    assert client.post("/tasks", json={"title": "x", "done": "yes"}).status_code == 422
    assert client.post("/tasks", json={"title": "x", "colour": "red"}).status_code == 422
    assert client.post("/tasks", data="not json", content_type="application/json").status_code == 400
    assert client.get("/tasks").get_json()["items"] == []
