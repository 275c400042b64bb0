"""{{PROJECT_NAME}}: {{DESCRIPTION}}.

Run it with `flask --app app run`, or `gunicorn "app:create_app()"`.
"""

import os
from pathlib import Path
from typing import Any

from flask import Flask, jsonify
from werkzeug.exceptions import HTTPException

from app import db, tasks


def create_app(test_config: dict[str, Any] | None = None) -> Flask:
    app = Flask(__name__, instance_relative_config=True)
    app.config.from_mapping(
        DATABASE=os.environ.get("DATABASE", str(Path(app.instance_path) / "app.sqlite3")),
    )
    app.json.sort_keys = False  # keep fields in the order the code writes them
    if test_config is not None:
        app.config.update(test_config)
    Path(app.config["DATABASE"]).parent.mkdir(parents=True, exist_ok=True)

    db.init_app(app)
    app.register_blueprint(tasks.bp)

    @app.get("/")
    def index():
        return {"service": "{{PROJECT_NAME}}", "description": "{{DESCRIPTION}}", "endpoints": ["/health", "/tasks"]}

    @app.get("/health")
    def health():
        db.get_db().execute("SELECT 1")
        return {"status": "ok"}

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException):
        # Every error is JSON: {"error": "...", "status": 404}.
        return jsonify(error=error.description, status=error.code), error.code

    return app
