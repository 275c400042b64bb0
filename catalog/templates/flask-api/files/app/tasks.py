"""CRUD endpoints for tasks: /tasks."""

from typing import Any

from flask import Blueprint, abort, request, url_for

from app.db import get_db

bp = Blueprint("tasks", __name__, url_prefix="/tasks")

FIELDS = {"title": str, "notes": str, "done": bool}


def to_json(row) -> dict[str, Any]:
    return {
        "id": row["id"],
        "title": row["title"],
        "notes": row["notes"],
        "done": bool(row["done"]),
        "created_at": row["created_at"],
        "updated_at": row["updated_at"],
    }


def validated_body(partial: bool) -> dict[str, Any]:
    """The JSON body, checked; aborts with 400 or 422 when it is not valid."""
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        abort(400, description="the body must be a JSON object")
    unknown = sorted(set(body) - set(FIELDS))
    if unknown:
        abort(422, description=f"unknown field(s): {', '.join(unknown)}")
    for name, kind in FIELDS.items():
        if name in body and not isinstance(body[name], kind):
            abort(422, description=f"{name} must be a {kind.__name__}")
    if "title" in body:
        body["title"] = body["title"].strip()
        if not 1 <= len(body["title"]) <= 200:
            abort(422, description="title must have 1 to 200 characters")
    elif not partial:
        abort(422, description="title is required")
    return body


def find(task_id: int):
    row = get_db().execute("SELECT * FROM task WHERE id = ?", (task_id,)).fetchone()
    if row is None:
        abort(404, description=f"task {task_id} not found")
    return row


@bp.get("")
def list_tasks():
    done = request.args.get("done")
    limit = min(max(request.args.get("limit", 50, type=int), 1), 200)
    after = request.args.get("after", 0, type=int)
    sql = "SELECT * FROM task WHERE id > ?"
    params: list[Any] = [after]
    if done in ("true", "false"):
        sql += " AND done = ?"
        params.append(1 if done == "true" else 0)
    sql += " ORDER BY id LIMIT ?"
    params.append(limit)
    rows = get_db().execute(sql, params).fetchall()
    return {"items": [to_json(r) for r in rows], "next_after": rows[-1]["id"] if len(rows) == limit else None}


@bp.post("")
def create_task():
    body = validated_body(partial=False)
    conn = get_db()
    cur = conn.execute(
        "INSERT INTO task (title, notes, done) VALUES (?, ?, ?)",
        (body["title"], body.get("notes", ""), int(body.get("done", False))),
    )
    conn.commit()
    task = find(cur.lastrowid)
    return to_json(task), 201, {"Location": url_for("tasks.get_task", task_id=task["id"])}


@bp.get("/<int:task_id>")
def get_task(task_id: int):
    return to_json(find(task_id))


@bp.patch("/<int:task_id>")
def update_task(task_id: int):
    find(task_id)
    body = validated_body(partial=True)
    if body:
        columns = ", ".join(f"{name} = ?" for name in body)
        values = [int(v) if isinstance(v, bool) else v for v in body.values()]
        conn = get_db()
        conn.execute(
            f"UPDATE task SET {columns}, updated_at = strftime('%Y-%m-%dT%H:%M:%SZ', 'now') WHERE id = ?",
            (*values, task_id),
        )
        conn.commit()
    return to_json(find(task_id))


@bp.delete("/<int:task_id>")
def delete_task(task_id: int):
    find(task_id)
    conn = get_db()
    conn.execute("DELETE FROM task WHERE id = ?", (task_id,))
    conn.commit()
    return "", 204
