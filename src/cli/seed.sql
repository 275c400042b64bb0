-- devx sample data (`devx db seed`): a few users with projects, what runs
-- them, a chat, files, CI/CD tasks with agent runs, PR validations and errors,
-- so that every table (except devx.audit_logs, written by triggers, and
-- devx.system_config, seeded by the migrations) and every view has rows.
--
-- Rules of this file
-- - The caller runs it in ONE transaction, after loading the built-in
--   catalog; there is no BEGIN/COMMIT here.
-- - Idempotent: every row has a fixed id and every INSERT ends with
--   ON CONFLICT DO NOTHING, so a second run adds nothing (and, since skipped
--   inserts fire no triggers, writes no audit rows). Times are relative to
--   now(). There are no UPDATEs.
-- - Users are found by lower(email): an admin created earlier with
--   `devx users create --admin` is reused, not duplicated.
-- - Built-in templates are found by slug and are NULL when the built-in
--   catalog is not loaded.
-- - A row that another unique key may make us skip (a service slug, a
--   runtime container id, a running port) is linked through a lookup on the
--   seed's own fixed id, so the link becomes NULL instead of failing.
--
-- Fixed ids: deed00TT-5eed-4000-8000-0000000000NN, TT = table, NN = row.
--   01 devx.users              02 devx.sessions           03 devx.api_keys
--   04 templates.categories    05 templates.technologies  06 templates.templates
--   07 devx.projects           08 devx.project_contexts   09 devx.modifications
--   10 devx.services           11 devx.containers         12 devx.deployments
--   13 devx.generation_history 14 devx.chat_messages      15 devx.file_storage
--   16 devx.tasks              17 devx.task_executions    18 devx.pr_validations
--   19 devx.error_logs         20 devx.service_deploy_tokens
--   21 devx.webhook_deliveries 22 devx.preview_deployments
--   (devx.execution_logs and devx.error_logs are partitioned by time, so their
--   keys include a time the seed computes from now(): their rows are inserted
--   only where no row has the same (execution_id, seq) or id; devx.activity_logs
--   has no key of its own, so its rows are inserted only while the table
--   holds no row marked "seed" in its details.)
-- Secrets: password_hash is NULL (external sign-in); token and key hashes are
-- 32-byte fills (ab, ac, cd, ce) that no token hashes to; deployments'
-- encrypted columns are NULL (only the application can encrypt them), and so
-- is the deploy token's sealed copy (its hash is a 32-byte fill in hex).

SELECT set_config('devx.actor', 'system:seed', true);

-- ---------------------------------------------------------------------------
-- Accounts
-- ---------------------------------------------------------------------------

INSERT INTO devx.users (id, email, name, avatar_url, password_hash, plan_type, role, is_active, last_login,
                        created_at, updated_at)
VALUES
    ('deed0001-5eed-4000-8000-000000000001', 'admin@devx.local', 'Devx Admin', NULL, NULL,
     'enterprise', 'admin', true, now() - interval '1 hour', now() - interval '30 days', now() - interval '30 days'),
    ('deed0001-5eed-4000-8000-000000000002', 'ada@devx.local', 'Ada Lovelace',
     'https://avatars.devx.local/ada.png', NULL,
     'team', 'user', true, now() - interval '20 minutes', now() - interval '28 days', now() - interval '3 days'),
    ('deed0001-5eed-4000-8000-000000000003', 'linus@devx.local', 'Linus Torvalds',
     'https://avatars.devx.local/linus.png', NULL,
     'personal', 'user', true, now() - interval '5 hours', now() - interval '25 days', now() - interval '25 days')
ON CONFLICT DO NOTHING;

INSERT INTO devx.sessions (id, user_id, token_hash, expires_at, last_activity, ip_address, user_agent, is_active,
                           created_at)
VALUES
    ('deed0002-5eed-4000-8000-000000000001',
     (SELECT id FROM devx.users WHERE lower(email) = 'ada@devx.local'),
     decode(repeat('ab', 32), 'hex'), now() + interval '7 days', now() - interval '20 minutes',
     '192.0.2.10', 'Mozilla/5.0 (Macintosh; Intel Mac OS X 14_4) AppleWebKit/605.1.15 Safari/605.1.15', true,
     now() - interval '2 hours'),
    ('deed0002-5eed-4000-8000-000000000002',
     (SELECT id FROM devx.users WHERE lower(email) = 'linus@devx.local'),
     decode(repeat('ac', 32), 'hex'), now() + interval '6 days', now() - interval '5 hours',
     '198.51.100.23', 'Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0', true,
     now() - interval '1 day')
ON CONFLICT DO NOTHING;

INSERT INTO devx.api_keys (id, user_id, name, prefix, key_hash, scopes, last_used_at, expires_at, created_at)
VALUES
    ('deed0003-5eed-4000-8000-000000000001',
     (SELECT id FROM devx.users WHERE lower(email) = 'ada@devx.local'),
     'CI pipeline', 'devx_seedAda', decode(repeat('cd', 32), 'hex'), '{read,write}',
     now() - interval '3 hours', now() + interval '90 days', now() - interval '14 days'),
    ('deed0003-5eed-4000-8000-000000000002',
     (SELECT id FROM devx.users WHERE lower(email) = 'linus@devx.local'),
     'Read-only dashboard', 'devx_seedLin', decode(repeat('ce', 32), 'hex'), '{read}',
     NULL, NULL, now() - interval '6 days')
ON CONFLICT DO NOTHING;

-- ---------------------------------------------------------------------------
-- Catalog: a demo category, two technologies and a user-made template
-- ---------------------------------------------------------------------------

INSERT INTO templates.categories (id, slug, name, description, sort_order, created_at)
VALUES
    ('deed0004-5eed-4000-8000-000000000001', 'demo', 'Demos',
     'Small examples for trying devx: generate, run and ship in a minute.', 90, now() - interval '30 days')
ON CONFLICT DO NOTHING;

INSERT INTO templates.technologies (id, slug, name, kind, created_at)
VALUES
    ('deed0005-5eed-4000-8000-000000000001', 'shell', 'Shell', 'language', now() - interval '30 days'),
    ('deed0005-5eed-4000-8000-000000000002', 'github-actions', 'GitHub Actions', 'platform', now() - interval '30 days')
ON CONFLICT DO NOTHING;

INSERT INTO templates.templates (id, slug, name, description, category_id, files, required_vars, optional_vars,
                                 tech_stack, tags, estimated_setup_time, complexity, is_public, is_builtin, author,
                                 usage_count, created_by, created_at, updated_at)
VALUES
    ('deed0006-5eed-4000-8000-000000000001', 'demo-hello-world', 'Hello World (shell)',
     'A one-file shell script that greets by name, with a GitHub Actions workflow that runs it on every push. The smallest thing devx can generate, run and ship.',
     (SELECT id FROM templates.categories WHERE slug = 'demo'),
     '{"hello.sh": "#!/usr/bin/env sh\nset -eu\necho \"Hello, ${GREETING_NAME:-{{GREETING_NAME}}}!\"\n",
       "README.md": "# {{PROJECT_NAME}}\n\nRun `./hello.sh`. Set GREETING_NAME to greet someone else.\n",
       ".github/workflows/ci.yml": "name: ci\non: [push]\njobs:\n  hello:\n    runs-on: ubuntu-latest\n    steps:\n      - uses: actions/checkout@v4\n      - run: sh hello.sh\n"}',
     '{PROJECT_NAME}',
     '[{"name": "GREETING_NAME", "default": "world", "description": "Who the script greets"}]',
     '{shell,github-actions}', '{demo,shell,ci,starter}', 1, 'simple', true, false, 'devx',
     2, (SELECT id FROM devx.users WHERE lower(email) = 'admin@devx.local'),
     now() - interval '30 days', now() - interval '30 days')
ON CONFLICT DO NOTHING;

-- ---------------------------------------------------------------------------
-- Projects and their code context
-- ---------------------------------------------------------------------------

INSERT INTO devx.projects (id, owner_id, name, description, type, status, template_id, metadata, settings,
                           last_deployed_at, created_at, updated_at)
VALUES
    ('deed0007-5eed-4000-8000-000000000001',
     (SELECT id FROM devx.users WHERE lower(email) = 'ada@devx.local'),
     'Recipe Box', 'Save, tag and search family recipes; a React single-page app.', 'react', 'active',
     (SELECT id FROM templates.templates WHERE slug = 'react-vite-spa'),
     '{"language": "typescript", "framework": "react", "repository": "ada-lovelace/recipe-box"}',
     '{"auto_deploy": true, "default_branch": "main", "node_version": "20"}',
     now() - interval '2 hours', now() - interval '21 days', now() - interval '2 hours'),
    ('deed0007-5eed-4000-8000-000000000002',
     (SELECT id FROM devx.users WHERE lower(email) = 'ada@devx.local'),
     'Inventory API', 'JSON API for the warehouse stock of a small bakery chain.', 'api', 'active',
     (SELECT id FROM templates.templates WHERE slug = 'fastapi-service'),
     '{"language": "python", "framework": "fastapi", "repository": "ada-lovelace/inventory-api"}',
     '{"auto_deploy": false, "default_branch": "main", "python_version": "3.12"}',
     now() - interval '1 day', now() - interval '18 days', now() - interval '1 day'),
    ('deed0007-5eed-4000-8000-000000000003',
     (SELECT id FROM devx.users WHERE lower(email) = 'linus@devx.local'),
     'Edge Proxy', 'A small reverse proxy with per-client rate limits, in Rust.', 'api', 'active',
     (SELECT id FROM templates.templates WHERE slug = 'axum-service'),
     '{"language": "rust", "framework": "axum", "repository": "linus/edge-proxy"}',
     '{"auto_deploy": true, "default_branch": "main"}',
     NULL, now() - interval '12 days', now() - interval '30 minutes'),
    ('deed0007-5eed-4000-8000-000000000004',
     (SELECT id FROM devx.users WHERE lower(email) = 'linus@devx.local'),
     'Hello Shell', 'First try of devx: the demo hello-world script.', 'cli', 'archived',
     (SELECT id FROM templates.templates WHERE slug = 'demo-hello-world'),
     '{"language": "shell"}',
     '{}',
     NULL, now() - interval '24 days', now() - interval '10 days'),
    ('deed0007-5eed-4000-8000-000000000005',
     (SELECT id FROM devx.users WHERE lower(email) = 'admin@devx.local'),
     'Status Page', 'Public status page of the devx platform.', 'web_app', 'active',
     (SELECT id FROM templates.templates WHERE slug = 'static-site'),
     '{"language": "html", "repository": "devx/status-page"}',
     '{"default_branch": "main"}',
     NULL, now() - interval '3 days', now() - interval '3 days')
ON CONFLICT DO NOTHING;

INSERT INTO devx.project_contexts (id, project_id, codebase, dependencies, environment_vars, deployment_config,
                                   test_coverage, security_score, performance_score, last_deployed_at,
                                   created_at, updated_at)
VALUES
    ('deed0008-5eed-4000-8000-000000000001', 'deed0007-5eed-4000-8000-000000000001',
     '{"files": {
         "package.json": "{\n  \"name\": \"recipe-box\",\n  \"private\": true,\n  \"scripts\": {\"dev\": \"vite\", \"build\": \"tsc && vite build\", \"test\": \"vitest run\"}\n}\n",
         "index.html": "<!doctype html>\n<html lang=\"en\">\n  <body><div id=\"root\"></div><script type=\"module\" src=\"/src/main.tsx\"></script></body>\n</html>\n",
         "src/main.tsx": "import React from \"react\";\nimport ReactDOM from \"react-dom/client\";\nimport App from \"./App\";\n\nReactDOM.createRoot(document.getElementById(\"root\")!).render(<App />);\n",
         "src/App.tsx": "import { useState } from \"react\";\nimport { RecipeCard } from \"./components/RecipeCard\";\n\nexport default function App() {\n  const [query, setQuery] = useState(\"\");\n  return (\n    <main>\n      <h1>Recipe Box</h1>\n      <input value={query} onChange={(e) => setQuery(e.target.value)} placeholder=\"Search recipes\" />\n      <RecipeCard title=\"Sourdough\" tags={[\"bread\"]} />\n    </main>\n  );\n}\n",
         "src/components/RecipeCard.tsx": "export function RecipeCard({ title, tags }: { title: string; tags: string[] }) {\n  return <article><h2>{title}</h2><p>{tags.join(\", \")}</p></article>;\n}\n"
       },
       "language": "typescript", "entrypoint": "src/main.tsx", "file_count": 5}',
     '{react@^18.2.0,react-dom@^18.2.0,vite@^5.2.0,typescript@^5.4.0,vitest@^1.5.0}',
     '{"NODE_ENV": "development", "VITE_API_URL": "http://localhost:41002"}',
     '{"runtime": "docker", "build_command": "npm run build", "output_dir": "dist", "port": 5173}',
     72.50, 91.00, 88.00, now() - interval '2 hours', now() - interval '21 days', now() - interval '2 hours'),
    ('deed0008-5eed-4000-8000-000000000002', 'deed0007-5eed-4000-8000-000000000002',
     '{"files": {
         "app/main.py": "from fastapi import FastAPI\n\nfrom app.routes import items\n\napp = FastAPI(title=\"Inventory API\")\napp.include_router(items.router)\n\n\n@app.get(\"/health\")\ndef health() -> dict:\n    return {\"status\": \"ok\"}\n",
         "app/routes/items.py": "from fastapi import APIRouter\n\nrouter = APIRouter(prefix=\"/items\")\n\n\n@router.get(\"\")\ndef list_items(limit: int = 50) -> list[dict]:\n    return []\n",
         "requirements.txt": "fastapi==0.110.0\nuvicorn[standard]==0.29.0\npydantic==2.7.0\npytest==8.1.1\n",
         "tests/test_health.py": "from fastapi.testclient import TestClient\n\nfrom app.main import app\n\n\ndef test_health():\n    assert TestClient(app).get(\"/health\").json() == {\"status\": \"ok\"}\n"
       },
       "language": "python", "entrypoint": "app/main.py", "file_count": 4}',
     '{fastapi@0.110.0,uvicorn@0.29.0,pydantic@2.7.0,pytest@8.1.1}',
     '{"LOG_LEVEL": "info", "DATABASE_POOL_SIZE": "5"}',
     '{"runtime": "docker", "start_command": "uvicorn app.main:app --host 0.0.0.0 --port 8000", "port": 8000, "database": "postgresql"}',
     84.30, 87.50, 79.00, now() - interval '1 day', now() - interval '18 days', now() - interval '1 day'),
    ('deed0008-5eed-4000-8000-000000000003', 'deed0007-5eed-4000-8000-000000000003',
     '{"files": {
         "Cargo.toml": "[package]\nname = \"edge-proxy\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n[dependencies]\naxum = \"0.7\"\ntokio = { version = \"1\", features = [\"full\"] }\ntower = \"0.4\"\n",
         "src/main.rs": "use axum::{routing::get, Router};\n\n#[tokio::main]\nasync fn main() {\n    let app = Router::new().route(\"/health\", get(|| async { \"ok\" }));\n    let listener = tokio::net::TcpListener::bind(\"0.0.0.0:3000\").await.unwrap();\n    axum::serve(listener, app).await.unwrap();\n}\n"
       },
       "language": "rust", "entrypoint": "src/main.rs", "file_count": 2}',
     '{axum@0.7,tokio@1,tower@0.4}',
     '{"RUST_LOG": "edge_proxy=info"}',
     '{"runtime": "docker", "build_command": "cargo build --release", "port": 3000}',
     61.00, 95.00, 97.50, NULL, now() - interval '12 days', now() - interval '30 minutes'),
    ('deed0008-5eed-4000-8000-000000000004', 'deed0007-5eed-4000-8000-000000000004',
     '{"files": {
         "hello.sh": "#!/usr/bin/env sh\nset -eu\necho \"Hello, ${GREETING_NAME:-Linus}!\"\n",
         ".github/workflows/ci.yml": "name: ci\non: [push]\njobs:\n  hello:\n    runs-on: ubuntu-latest\n    steps:\n      - uses: actions/checkout@v4\n      - run: sh hello.sh\n"
       },
       "language": "shell", "entrypoint": "hello.sh", "file_count": 2}',
     '{}',
     '{"GREETING_NAME": "Linus"}',
     '{}',
     NULL, NULL, NULL, NULL, now() - interval '24 days', now() - interval '24 days'),
    ('deed0008-5eed-4000-8000-000000000005', 'deed0007-5eed-4000-8000-000000000005',
     '{"files": {
         "index.html": "<!doctype html>\n<html lang=\"en\">\n  <head><title>devx status</title><link rel=\"stylesheet\" href=\"style.css\"></head>\n  <body><h1>All systems operational</h1></body>\n</html>\n",
         "style.css": "body { font-family: system-ui, sans-serif; margin: 4rem auto; max-width: 40rem; }\n"
       },
       "language": "html", "entrypoint": "index.html", "file_count": 2}',
     '{}',
     '{}',
     '{"runtime": "static", "output_dir": "."}',
     NULL, 99.00, 100.00, NULL, now() - interval '3 days', now() - interval '3 days')
ON CONFLICT DO NOTHING;

-- Change requests in every status (applied_at only once applied or failed).
INSERT INTO devx.modifications (id, project_id, request, requested_by, impact_analysis, affected_files, status,
                                applied_at, modified_files, test_results, created_at, updated_at)
VALUES
    ('deed0009-5eed-4000-8000-000000000001', 'deed0007-5eed-4000-8000-000000000001',
     'Add a search box that filters recipes by title and tag.',
     (SELECT id FROM devx.users WHERE lower(email) = 'ada@devx.local'),
     '{"risk": "low", "summary": "UI-only change in App.tsx", "estimated_minutes": 10}',
     '{src/App.tsx}', 'applied', now() - interval '3 days',
     '{"src/App.tsx": {"additions": 6, "deletions": 1}}',
     '{"passed": 12, "failed": 0, "duration_ms": 4810}',
     now() - interval '3 days 20 minutes', now() - interval '3 days'),
    ('deed0009-5eed-4000-8000-000000000002', 'deed0007-5eed-4000-8000-000000000001',
     'Show a recipe card component with title and tags.',
     (SELECT id FROM devx.users WHERE lower(email) = 'ada@devx.local'),
     '{"risk": "low", "summary": "New component plus one import", "estimated_minutes": 15}',
     '{src/App.tsx,src/components/RecipeCard.tsx}', 'approved', NULL,
     '{}', '{}',
     now() - interval '2 hours 30 minutes', now() - interval '2 hours 10 minutes'),
    ('deed0009-5eed-4000-8000-000000000003', 'deed0007-5eed-4000-8000-000000000002',
     'Paginate GET /items with an opaque cursor.',
     (SELECT id FROM devx.users WHERE lower(email) = 'ada@devx.local'),
     '{"risk": "medium", "summary": "Changes the response shape of GET /items", "breaking": true}',
     '{app/routes/items.py,tests/test_items.py}', 'pending', NULL,
     '{}', '{}',
     now() - interval '15 minutes', now() - interval '15 minutes'),
    ('deed0009-5eed-4000-8000-000000000004', 'deed0007-5eed-4000-8000-000000000003',
     'Rewrite the proxy in Go.',
     (SELECT id FROM devx.users WHERE lower(email) = 'linus@devx.local'),
     '{"risk": "high", "summary": "Replaces every file; no benefit stated", "estimated_minutes": 240}',
     '{Cargo.toml,src/main.rs}', 'rejected', NULL,
     '{}', '{}',
     now() - interval '6 days', now() - interval '5 days 23 hours'),
    ('deed0009-5eed-4000-8000-000000000005', 'deed0007-5eed-4000-8000-000000000003',
     'Add a token-bucket rate limit per client IP.',
     (SELECT id FROM devx.users WHERE lower(email) = 'linus@devx.local'),
     '{"risk": "medium", "summary": "New middleware and a dependency on tower_governor", "estimated_minutes": 45}',
     '{Cargo.toml,src/main.rs}', 'failed', now() - interval '2 days',
     '{"Cargo.toml": {"additions": 1, "deletions": 0}, "src/main.rs": {"additions": 18, "deletions": 2}}',
     '{"passed": 7, "failed": 2, "failures": ["limits_per_ip", "burst_is_refilled"]}',
     now() - interval '2 days 1 hour', now() - interval '2 days')
ON CONFLICT DO NOTHING;

-- ---------------------------------------------------------------------------
-- What runs them: services, containers, deployments
-- ---------------------------------------------------------------------------

INSERT INTO devx.services (id, project_id, owner_id, template_id, name, slug, description, service_type, port,
                           health_check_url, status, deployment_config, environment_vars, resource_limits,
                           deployed_at, created_at, updated_at)
VALUES
    ('deed0010-5eed-4000-8000-000000000001', 'deed0007-5eed-4000-8000-000000000001',
     (SELECT id FROM devx.users WHERE lower(email) = 'ada@devx.local'),
     (SELECT id FROM templates.templates WHERE slug = 'react-vite-spa'),
     'Recipe Box web', 'recipe-box-web', 'The Recipe Box single-page app.', 'web', 5173,
     'http://localhost:41001/', 'running',
     '{"replicas": 1, "strategy": "recreate"}', '{"NODE_ENV": "production"}',
     '{"cpu": "0.5", "memory_mb": 256}',
     now() - interval '2 hours', now() - interval '21 days', now() - interval '2 hours'),
    ('deed0010-5eed-4000-8000-000000000002', 'deed0007-5eed-4000-8000-000000000002',
     (SELECT id FROM devx.users WHERE lower(email) = 'ada@devx.local'),
     (SELECT id FROM templates.templates WHERE slug = 'fastapi-service'),
     'Inventory API', 'inventory-api', 'FastAPI backend for the stock list.', 'api', 8000,
     'http://localhost:41002/health', 'running',
     '{"replicas": 1, "strategy": "rolling"}', '{"LOG_LEVEL": "info"}',
     '{"cpu": "1", "memory_mb": 512}',
     now() - interval '1 day', now() - interval '18 days', now() - interval '1 day'),
    ('deed0010-5eed-4000-8000-000000000003', 'deed0007-5eed-4000-8000-000000000003',
     (SELECT id FROM devx.users WHERE lower(email) = 'linus@devx.local'),
     (SELECT id FROM templates.templates WHERE slug = 'axum-service'),
     'Edge Proxy', 'edge-proxy', 'Reverse proxy with rate limits.', 'api', 3000,
     'http://localhost:41003/health', 'deploying',
     '{"replicas": 2, "strategy": "rolling"}', '{"RUST_LOG": "info"}',
     '{"cpu": "0.5", "memory_mb": 128}',
     NULL, now() - interval '12 days', now() - interval '30 minutes'),
    -- A standalone service generated from a template, with no project.
    ('deed0010-5eed-4000-8000-000000000004', NULL,
     (SELECT id FROM devx.users WHERE lower(email) = 'admin@devx.local'),
     (SELECT id FROM templates.templates WHERE slug = 'demo-hello-world'),
     'Hello worker', 'hello-worker', 'Generated from the demo template to try the pipeline.', 'worker', NULL,
     NULL, 'inactive',
     '{}', '{}', '{}',
     NULL, now() - interval '9 days', now() - interval '9 days')
ON CONFLICT DO NOTHING;

-- Three running containers on ports 41001-41003; an older stopped one on 41001
-- (ports are unique among running containers only), one deleted, one created.
INSERT INTO devx.containers (id, container_id, project_id, owner_id, name, status, image_name, assigned_port, url,
                             started_at, stopped_at, labels, metadata, created_at, updated_at)
VALUES
    ('deed0011-5eed-4000-8000-000000000001', 'deed5eed0001a7c3e9f1', 'deed0007-5eed-4000-8000-000000000001',
     (SELECT id FROM devx.users WHERE lower(email) = 'ada@devx.local'),
     'recipe-box-web', 'running', 'devx/recipe-box:2024.05.2', 41001, 'http://localhost:41001',
     now() - interval '2 hours', NULL,
     '{"devx.project": "recipe-box", "devx.service": "recipe-box-web", "devx.seed": "true"}',
     '{"cpu_limit": "0.5", "memory_mb": 256, "restart_policy": "unless-stopped"}',
     now() - interval '2 hours 5 minutes', now() - interval '2 hours'),
    ('deed0011-5eed-4000-8000-000000000002', 'deed5eed0002b8d4f0a2', 'deed0007-5eed-4000-8000-000000000002',
     (SELECT id FROM devx.users WHERE lower(email) = 'ada@devx.local'),
     'inventory-api', 'running', 'devx/inventory-api:0.4.1', 41002, 'http://localhost:41002',
     now() - interval '1 day', NULL,
     '{"devx.project": "inventory-api", "devx.service": "inventory-api", "devx.seed": "true"}',
     '{"cpu_limit": "1", "memory_mb": 512, "restart_policy": "unless-stopped"}',
     now() - interval '1 day 3 minutes', now() - interval '1 day'),
    ('deed0011-5eed-4000-8000-000000000003', 'deed5eed0003c9e5a1b3', 'deed0007-5eed-4000-8000-000000000003',
     (SELECT id FROM devx.users WHERE lower(email) = 'linus@devx.local'),
     'edge-proxy', 'running', 'devx/edge-proxy:0.1.0', 41003, 'http://localhost:41003',
     now() - interval '30 minutes', NULL,
     '{"devx.project": "edge-proxy", "devx.service": "edge-proxy", "devx.seed": "true"}',
     '{"cpu_limit": "0.5", "memory_mb": 128, "restart_policy": "on-failure"}',
     now() - interval '32 minutes', now() - interval '30 minutes'),
    ('deed0011-5eed-4000-8000-000000000004', 'deed5eed0004d0f6b2c4', 'deed0007-5eed-4000-8000-000000000001',
     (SELECT id FROM devx.users WHERE lower(email) = 'ada@devx.local'),
     'recipe-box-web-previous', 'stopped', 'devx/recipe-box:2024.05.1', 41001, 'http://localhost:41001',
     now() - interval '3 days', now() - interval '2 hours 6 minutes',
     '{"devx.project": "recipe-box", "devx.service": "recipe-box-web", "devx.seed": "true"}',
     '{"exit_code": 0, "stopped_by": "redeploy"}',
     now() - interval '3 days 2 minutes', now() - interval '2 hours 6 minutes'),
    ('deed0011-5eed-4000-8000-000000000005', 'deed5eed0005e1a7c3d5', 'deed0007-5eed-4000-8000-000000000004',
     (SELECT id FROM devx.users WHERE lower(email) = 'linus@devx.local'),
     'hello-shell', 'deleted', 'devx/hello-shell:latest', NULL, NULL,
     now() - interval '24 days', now() - interval '10 days',
     '{"devx.project": "hello-shell", "devx.seed": "true"}',
     '{"exit_code": 0, "removed_reason": "project archived"}',
     now() - interval '24 days', now() - interval '10 days'),
    ('deed0011-5eed-4000-8000-000000000006', 'deed5eed0006f2b8d4e6', 'deed0007-5eed-4000-8000-000000000005',
     (SELECT id FROM devx.users WHERE lower(email) = 'admin@devx.local'),
     'status-page', 'created', 'nginx:1.27-alpine', NULL, NULL,
     NULL, NULL,
     '{"devx.project": "status-page", "devx.seed": "true"}',
     '{}',
     now() - interval '3 days', now() - interval '3 days')
ON CONFLICT DO NOTHING;

-- One deployment in every status; the encrypted columns stay NULL.
INSERT INTO devx.deployments (id, project_id, service_id, app_sandbox_id, public_url, db_sandbox_id,
                              db_connection_info, environment_vars, status, runtime_type, created_at, updated_at)
VALUES
    ('deed0012-5eed-4000-8000-000000000001', 'deed0007-5eed-4000-8000-000000000001',
     (SELECT id FROM devx.services WHERE id = 'deed0010-5eed-4000-8000-000000000001'),
     'sbx-recipe-box-7f3a', 'https://recipe-box-7f3a.preview.devx.local', NULL,
     NULL, NULL, 'running', 'docker', now() - interval '2 hours 10 minutes', now() - interval '2 hours'),
    ('deed0012-5eed-4000-8000-000000000002', 'deed0007-5eed-4000-8000-000000000001',
     (SELECT id FROM devx.services WHERE id = 'deed0010-5eed-4000-8000-000000000001'),
     'sbx-recipe-box-52c1', 'https://recipe-box-52c1.preview.devx.local', NULL,
     NULL, NULL, 'stopped', 'docker', now() - interval '3 days', now() - interval '2 hours 6 minutes'),
    ('deed0012-5eed-4000-8000-000000000003', 'deed0007-5eed-4000-8000-000000000002',
     (SELECT id FROM devx.services WHERE id = 'deed0010-5eed-4000-8000-000000000002'),
     'sbx-inventory-api-a913', NULL, 'sbx-inventory-db-a913',
     NULL, NULL, 'failed', 'docker', now() - interval '2 days', now() - interval '2 days'),
    ('deed0012-5eed-4000-8000-000000000004', 'deed0007-5eed-4000-8000-000000000002',
     (SELECT id FROM devx.services WHERE id = 'deed0010-5eed-4000-8000-000000000002'),
     'sbx-inventory-api-c27e', NULL, 'sbx-inventory-db-c27e',
     NULL, NULL, 'building', 'docker', now() - interval '4 minutes', now() - interval '3 minutes'),
    ('deed0012-5eed-4000-8000-000000000005', 'deed0007-5eed-4000-8000-000000000003',
     (SELECT id FROM devx.services WHERE id = 'deed0010-5eed-4000-8000-000000000003'),
     'sbx-edge-proxy-1d04', NULL, NULL,
     NULL, NULL, 'deploying', 'docker', now() - interval '31 minutes', now() - interval '30 minutes'),
    ('deed0012-5eed-4000-8000-000000000006', 'deed0007-5eed-4000-8000-000000000005',
     NULL, NULL, NULL, NULL,
     NULL, NULL, 'queued', 'static', now() - interval '1 minute', now() - interval '1 minute'),
    ('deed0012-5eed-4000-8000-000000000007', 'deed0007-5eed-4000-8000-000000000005',
     NULL, NULL, NULL, NULL,
     NULL, NULL, 'cancelled', 'static', now() - interval '5 minutes', now() - interval '4 minutes')
ON CONFLICT DO NOTHING;

-- The running recipe-box deployment's build and start, as its log streamed them.
INSERT INTO devx.deployment_log_lines (deployment_id, seq, stream, time, text, bytes_through)
SELECT d.id, l.seq, l.stream, d.created_at + l.after, l.text,
       sum(octet_length(l.text)) OVER (ORDER BY l.seq)
  FROM devx.deployments d,
       (VALUES (1, 'system', interval '0 seconds', 'build started from main'),
               (2, 'stdout', interval '40 seconds', 'npm ci: added 412 packages in 31s'),
               (3, 'stdout', interval '2 minutes', 'next build: compiled successfully'),
               (4, 'system', interval '9 minutes', 'container started; health check passed')) AS l(seq, stream, after, text)
 WHERE d.id = 'deed0012-5eed-4000-8000-000000000001'
ON CONFLICT DO NOTHING;

-- A deploy token for the recipe-box web service, the push delivery that
-- queued its running deployment, and a pull request's live preview.
INSERT INTO devx.service_deploy_tokens (id, service_id, token_hash, created_by, last_used_at, created_at, updated_at)
SELECT 'deed0020-5eed-4000-8000-000000000001', s.id, repeat('cf', 32), 'system:seed',
       now() - interval '2 hours 10 minutes', now() - interval '10 days', now() - interval '10 days'
  FROM devx.services s WHERE s.id = 'deed0010-5eed-4000-8000-000000000001'
ON CONFLICT DO NOTHING;

INSERT INTO devx.webhook_deliveries (id, service_id, provider, delivery_id, event, received_at, status, answer,
                                     deployment_id)
SELECT 'deed0021-5eed-4000-8000-000000000001', s.id, 'gitlab', 'seed-5d1c7a2e-push', 'Push Hook',
       now() - interval '2 hours 10 minutes', 'deployment_queued',
       jsonb_build_object('delivery_id', 'seed-5d1c7a2e-push', 'provider', 'gitlab', 'event', 'Push Hook',
                          'status', 'deployment_queued', 'detail', 'a deployment of main is queued',
                          'deployment_id', 'deed0012-5eed-4000-8000-000000000001', 'pr_number', NULL),
       'deed0012-5eed-4000-8000-000000000001'
  FROM devx.services s WHERE s.id = 'deed0010-5eed-4000-8000-000000000001'
ON CONFLICT DO NOTHING;

INSERT INTO devx.preview_deployments (id, service_id, pr_number, pr_url, branch, head_sha, status, url,
                                      deployment_id, expires_at, created_at, updated_at)
SELECT 'deed0022-5eed-4000-8000-000000000001', s.id, 42, 'https://git.devx.local/ada/recipe-box/-/merge_requests/42',
       'feature/ratings', '9b2e4f0c1a7d3e5f6a8b9c0d1e2f3a4b5c6d7e8f', 'live',
       'https://recipe-box-pr-42.preview.devx.local', NULL, now() + interval '5 days',
       now() - interval '2 days', now() - interval '2 days'
  FROM devx.services s WHERE s.id = 'deed0010-5eed-4000-8000-000000000001'
ON CONFLICT DO NOTHING;

INSERT INTO devx.generation_history (id, user_id, template_id, project_id, service_id, generation_type,
                                     input_params, output_files, status, error_message, execution_time_ms,
                                     created_at, completed_at)
VALUES
    ('deed0013-5eed-4000-8000-000000000001',
     (SELECT id FROM devx.users WHERE lower(email) = 'ada@devx.local'),
     (SELECT id FROM templates.templates WHERE slug = 'react-vite-spa'),
     'deed0007-5eed-4000-8000-000000000001',
     (SELECT id FROM devx.services WHERE id = 'deed0010-5eed-4000-8000-000000000001'),
     'project', '{"PROJECT_NAME": "recipe-box", "DESCRIPTION": "Family recipes"}',
     '["package.json", "index.html", "src/main.tsx", "src/App.tsx", "tsconfig.json", "README.md"]',
     'completed', NULL, 4210, now() - interval '21 days', now() - interval '21 days' + interval '4210 milliseconds'),
    ('deed0013-5eed-4000-8000-000000000002',
     (SELECT id FROM devx.users WHERE lower(email) = 'ada@devx.local'),
     (SELECT id FROM templates.templates WHERE slug = 'fastapi-service'),
     'deed0007-5eed-4000-8000-000000000002',
     (SELECT id FROM devx.services WHERE id = 'deed0010-5eed-4000-8000-000000000002'),
     'service', '{"PROJECT_NAME": "inventory-api", "PORT": "8000"}',
     '["app/main.py", "app/routes/items.py", "requirements.txt", "tests/test_health.py", "Dockerfile"]',
     'completed', NULL, 3875, now() - interval '18 days', now() - interval '18 days' + interval '3875 milliseconds'),
    ('deed0013-5eed-4000-8000-000000000003',
     (SELECT id FROM devx.users WHERE lower(email) = 'linus@devx.local'),
     (SELECT id FROM templates.templates WHERE slug = 'axum-service'),
     'deed0007-5eed-4000-8000-000000000003',
     (SELECT id FROM devx.services WHERE id = 'deed0010-5eed-4000-8000-000000000003'),
     'service', '{"PROJECT_NAME": "edge-proxy", "PORT": "3000"}',
     '[]',
     'failed', 'template variable PORT_RANGE is required but was not given', 912,
     now() - interval '12 days 10 minutes', now() - interval '12 days 10 minutes' + interval '912 milliseconds'),
    ('deed0013-5eed-4000-8000-000000000004',
     (SELECT id FROM devx.users WHERE lower(email) = 'admin@devx.local'),
     (SELECT id FROM templates.templates WHERE slug = 'demo-hello-world'),
     NULL,
     (SELECT id FROM devx.services WHERE id = 'deed0010-5eed-4000-8000-000000000004'),
     'service', '{"PROJECT_NAME": "hello-worker", "GREETING_NAME": "devx"}',
     '["hello.sh", "README.md", ".github/workflows/ci.yml"]',
     'completed', NULL, 388, now() - interval '9 days', now() - interval '9 days' + interval '388 milliseconds'),
    ('deed0013-5eed-4000-8000-000000000005',
     (SELECT id FROM devx.users WHERE lower(email) = 'ada@devx.local'),
     NULL,
     'deed0007-5eed-4000-8000-000000000001',
     NULL,
     'modification', '{"request": "Show a recipe card component with title and tags."}',
     '[]',
     'running', NULL, NULL, now() - interval '2 minutes', NULL)
ON CONFLICT DO NOTHING;

-- ---------------------------------------------------------------------------
-- Chat with the assistant, and the files it produced
-- ---------------------------------------------------------------------------

INSERT INTO devx.chat_messages (id, project_id, container_id, session_id, role, content, attachments, metadata,
                                created_at)
VALUES
    ('deed0014-5eed-4000-8000-000000000001', 'deed0007-5eed-4000-8000-000000000001',
     (SELECT id FROM devx.containers WHERE id = 'deed0011-5eed-4000-8000-000000000001'),
     'chat-recipe-box-0001', 'system',
     'You are the devx assistant for the project "Recipe Box" (React + Vite, TypeScript). Propose small, tested changes.',
     '[]', '{"prompt_version": 3}', now() - interval '2 hours 30 minutes'),
    ('deed0014-5eed-4000-8000-000000000002', 'deed0007-5eed-4000-8000-000000000001',
     (SELECT id FROM devx.containers WHERE id = 'deed0011-5eed-4000-8000-000000000001'),
     'chat-recipe-box-0001', 'user',
     'Can each recipe show up as a card with its title and tags?',
     '[]', '{}', now() - interval '2 hours 29 minutes'),
    ('deed0014-5eed-4000-8000-000000000003', 'deed0007-5eed-4000-8000-000000000001',
     (SELECT id FROM devx.containers WHERE id = 'deed0011-5eed-4000-8000-000000000001'),
     'chat-recipe-box-0001', 'assistant',
     'Sure. I added a RecipeCard component in src/components/RecipeCard.tsx and used it in App.tsx. The preview on port 41001 has reloaded.',
     '[{"type": "file", "path": "src/components/RecipeCard.tsx"}, {"type": "file", "path": "src/App.tsx"}]',
     '{"model": "claude-sonnet", "input_tokens": 1843, "output_tokens": 412, "latency_ms": 5120}',
     now() - interval '2 hours 28 minutes'),
    ('deed0014-5eed-4000-8000-000000000004', 'deed0007-5eed-4000-8000-000000000001',
     (SELECT id FROM devx.containers WHERE id = 'deed0011-5eed-4000-8000-000000000001'),
     'chat-recipe-box-0001', 'user',
     'Nice. Could the tags be clickable filters?',
     '[]', '{}', now() - interval '2 hours 20 minutes'),
    ('deed0014-5eed-4000-8000-000000000005', 'deed0007-5eed-4000-8000-000000000001',
     (SELECT id FROM devx.containers WHERE id = 'deed0011-5eed-4000-8000-000000000001'),
     'chat-recipe-box-0001', 'assistant',
     'Yes: clicking a tag now sets the search box to that tag. I opened a change request so you can review it first.',
     '[{"type": "modification", "id": "deed0009-5eed-4000-8000-000000000002"}]',
     '{"model": "claude-sonnet", "input_tokens": 2210, "output_tokens": 298, "latency_ms": 4380}',
     now() - interval '2 hours 19 minutes')
ON CONFLICT DO NOTHING;

-- Live files, plus an earlier, deleted version of src/App.tsx at the same path.
INSERT INTO devx.file_storage (id, project_id, container_id, file_path, file_name, file_size, mime_type, is_deleted,
                               created_at, updated_at)
VALUES
    ('deed0015-5eed-4000-8000-000000000001', 'deed0007-5eed-4000-8000-000000000001',
     (SELECT id FROM devx.containers WHERE id = 'deed0011-5eed-4000-8000-000000000001'),
     'src/App.tsx', 'App.tsx', 512, 'text/tsx', false,
     now() - interval '2 hours 28 minutes', now() - interval '2 hours 28 minutes'),
    ('deed0015-5eed-4000-8000-000000000002', 'deed0007-5eed-4000-8000-000000000001',
     (SELECT id FROM devx.containers WHERE id = 'deed0011-5eed-4000-8000-000000000001'),
     'src/components/RecipeCard.tsx', 'RecipeCard.tsx', 171, 'text/tsx', false,
     now() - interval '2 hours 28 minutes', now() - interval '2 hours 28 minutes'),
    ('deed0015-5eed-4000-8000-000000000003', 'deed0007-5eed-4000-8000-000000000001',
     (SELECT id FROM devx.containers WHERE id = 'deed0011-5eed-4000-8000-000000000001'),
     'package.json', 'package.json', 164, 'application/json', false,
     now() - interval '21 days', now() - interval '21 days'),
    ('deed0015-5eed-4000-8000-000000000004', 'deed0007-5eed-4000-8000-000000000001',
     (SELECT id FROM devx.containers WHERE id = 'deed0011-5eed-4000-8000-000000000004'),
     'src/App.tsx', 'App.tsx', 298, 'text/tsx', true,
     now() - interval '21 days', now() - interval '2 hours 28 minutes'),
    ('deed0015-5eed-4000-8000-000000000005', 'deed0007-5eed-4000-8000-000000000002',
     (SELECT id FROM devx.containers WHERE id = 'deed0011-5eed-4000-8000-000000000002'),
     'app/main.py', 'main.py', 231, 'text/x-python', false,
     now() - interval '18 days', now() - interval '18 days')
ON CONFLICT DO NOTHING;

-- ---------------------------------------------------------------------------
-- CI/CD and agents
-- ---------------------------------------------------------------------------

-- Tasks in every status; 16-02 is a subtask of 16-01, in the same project.
INSERT INTO devx.tasks (id, project_id, parent_task_id, title, description, requirements, status, priority,
                        created_by, assigned_to, created_at, updated_at)
VALUES
    ('deed0016-5eed-4000-8000-000000000001', 'deed0007-5eed-4000-8000-000000000002', NULL,
     'Paginate GET /items',
     'Keyset pagination with an opaque cursor; keep the default page size at 50.',
     '{"acceptance": ["limit capped at 200", "next_cursor is null on the last page"], "branch": "devx/items-pagination"}',
     'in_progress', 7,
     (SELECT id FROM devx.users WHERE lower(email) = 'ada@devx.local'),
     (SELECT id FROM devx.users WHERE lower(email) = 'ada@devx.local'),
     now() - interval '40 minutes', now() - interval '12 minutes'),
    ('deed0016-5eed-4000-8000-000000000003', 'deed0007-5eed-4000-8000-000000000002', NULL,
     'Upgrade FastAPI to 0.110',
     'Bump fastapi and pydantic, fix deprecations, keep the tests green.',
     '{"acceptance": ["pytest passes", "no deprecation warnings"], "branch": "devx/upgrade-fastapi"}',
     'completed', 4,
     (SELECT id FROM devx.users WHERE lower(email) = 'ada@devx.local'),
     (SELECT id FROM devx.users WHERE lower(email) = 'ada@devx.local'),
     now() - interval '5 days 1 hour', now() - interval '4 days 23 hours'),
    ('deed0016-5eed-4000-8000-000000000004', 'deed0007-5eed-4000-8000-000000000003', NULL,
     'Add per-client rate limiting',
     'Token bucket per client IP: 100 requests per minute, bursts of 20.',
     '{"acceptance": ["429 with Retry-After", "limits are per IP"], "branch": "devx/rate-limit"}',
     'failed', 8,
     (SELECT id FROM devx.users WHERE lower(email) = 'linus@devx.local'),
     (SELECT id FROM devx.users WHERE lower(email) = 'linus@devx.local'),
     now() - interval '2 days 2 hours', now() - interval '2 days'),
    ('deed0016-5eed-4000-8000-000000000005', 'deed0007-5eed-4000-8000-000000000001', NULL,
     'Move styles to CSS modules',
     'Replace the global stylesheet with CSS modules per component.',
     '{"acceptance": ["no global class names"]}',
     'cancelled', 2,
     (SELECT id FROM devx.users WHERE lower(email) = 'ada@devx.local'),
     NULL,
     now() - interval '2 days 6 hours', now() - interval '2 days 5 hours'),
    ('deed0016-5eed-4000-8000-000000000006', 'deed0007-5eed-4000-8000-000000000003', NULL,
     'Set up GitHub Actions CI',
     'Build, clippy and test on every pull request.',
     '{"acceptance": ["workflow runs on pull_request", "cargo clippy -D warnings"], "technologies": ["github-actions"]}',
     'pending', 6,
     (SELECT id FROM devx.users WHERE lower(email) = 'linus@devx.local'),
     NULL,
     now() - interval '25 minutes', now() - interval '25 minutes')
ON CONFLICT DO NOTHING;

INSERT INTO devx.tasks (id, project_id, parent_task_id, title, description, requirements, status, priority,
                        created_by, assigned_to, created_at, updated_at)
VALUES
    ('deed0016-5eed-4000-8000-000000000002', 'deed0007-5eed-4000-8000-000000000002',
     'deed0016-5eed-4000-8000-000000000001',
     'Test cursor pagination',
     'Cover the first, a middle and the last page, and a tampered cursor.',
     '{"acceptance": ["tampered cursor gives 400"]}',
     'pending', 5,
     (SELECT id FROM devx.users WHERE lower(email) = 'ada@devx.local'),
     NULL,
     now() - interval '38 minutes', now() - interval '38 minutes')
ON CONFLICT DO NOTHING;

-- Agent runs; last_log_seq is the number of lines each has in execution_logs.
INSERT INTO devx.task_executions (id, task_id, agent_type, agent_config, status, error_details, started_at,
                                  completed_at, last_log_seq, created_at, updated_at)
VALUES
    ('deed0017-5eed-4000-8000-000000000001', 'deed0016-5eed-4000-8000-000000000003', 'claude-code',
     '{"model": "claude-sonnet", "max_turns": 40, "sandbox": "docker"}', 'completed', NULL,
     now() - interval '5 days', now() - interval '5 days' + interval '14 minutes 32 seconds', 5,
     now() - interval '5 days', now() - interval '5 days' + interval '14 minutes 32 seconds'),
    ('deed0017-5eed-4000-8000-000000000002', 'deed0016-5eed-4000-8000-000000000004', 'codegen',
     '{"model": "claude-sonnet", "max_turns": 30, "sandbox": "docker"}', 'failed',
     '{"phase": "test", "exit_code": 101, "message": "2 of 9 tests failed", "failed_tests": ["limits_per_ip", "burst_is_refilled"]}',
     now() - interval '2 days 1 hour', now() - interval '2 days', 4,
     now() - interval '2 days 1 hour', now() - interval '2 days'),
    ('deed0017-5eed-4000-8000-000000000003', 'deed0016-5eed-4000-8000-000000000001', 'claude-code',
     '{"model": "claude-sonnet", "max_turns": 40, "sandbox": "docker"}', 'running', NULL,
     now() - interval '12 minutes', NULL, 3,
     now() - interval '12 minutes', now() - interval '1 minute'),
    ('deed0017-5eed-4000-8000-000000000004', 'deed0016-5eed-4000-8000-000000000005', 'claude-code',
     '{"model": "claude-sonnet", "max_turns": 20, "sandbox": "docker"}', 'cancelled',
     '{"reason": "task cancelled by the user"}',
     now() - interval '2 days 5 hours 10 minutes', now() - interval '2 days 5 hours', 2,
     now() - interval '2 days 5 hours 10 minutes', now() - interval '2 days 5 hours')
ON CONFLICT DO NOTHING;

INSERT INTO devx.execution_logs (execution_id, seq, level, message, logged_at)
SELECT v.execution_id::uuid, v.seq, v.level, v.message, v.logged_at
  FROM (VALUES
    ('deed0017-5eed-4000-8000-000000000001', 1, 'info', 'cloned ada-lovelace/inventory-api@main',
     now() - interval '5 days'),
    ('deed0017-5eed-4000-8000-000000000001', 2, 'info', 'bumped fastapi 0.104.1 -> 0.110.0, pydantic 2.5.2 -> 2.7.0',
     now() - interval '5 days' + interval '2 minutes'),
    ('deed0017-5eed-4000-8000-000000000001', 3, 'warn', 'replaced deprecated on_event("startup") with a lifespan handler',
     now() - interval '5 days' + interval '6 minutes'),
    ('deed0017-5eed-4000-8000-000000000001', 4, 'info', 'pytest: 14 passed in 3.21s',
     now() - interval '5 days' + interval '12 minutes'),
    ('deed0017-5eed-4000-8000-000000000001', 5, 'info', 'opened pull request #42',
     now() - interval '5 days' + interval '14 minutes 30 seconds'),
    ('deed0017-5eed-4000-8000-000000000002', 1, 'info', 'cloned linus/edge-proxy@main',
     now() - interval '2 days 1 hour'),
    ('deed0017-5eed-4000-8000-000000000002', 2, 'info', 'added tower_governor 0.3 and a rate-limit layer',
     now() - interval '2 days 50 minutes'),
    ('deed0017-5eed-4000-8000-000000000002', 3, 'warn', 'cargo test: limits_per_ip failed: expected 429, got 200',
     now() - interval '2 days 10 minutes'),
    ('deed0017-5eed-4000-8000-000000000002', 4, 'error', 'giving up after 3 attempts: 2 of 9 tests failed',
     now() - interval '2 days'),
    ('deed0017-5eed-4000-8000-000000000003', 1, 'info', 'cloned ada-lovelace/inventory-api@main',
     now() - interval '12 minutes'),
    ('deed0017-5eed-4000-8000-000000000003', 2, 'debug', 'planning: app/routes/items.py, app/pagination.py, tests/test_items.py',
     now() - interval '10 minutes'),
    ('deed0017-5eed-4000-8000-000000000003', 3, 'info', 'wrote app/pagination.py (cursor encode/decode)',
     now() - interval '1 minute'),
    ('deed0017-5eed-4000-8000-000000000004', 1, 'info', 'cloned ada-lovelace/recipe-box@main',
     now() - interval '2 days 5 hours 10 minutes'),
    ('deed0017-5eed-4000-8000-000000000004', 2, 'warn', 'cancelled: the task was cancelled',
     now() - interval '2 days 5 hours')
       ) AS v (execution_id, seq, level, message, logged_at)
 WHERE NOT EXISTS (SELECT 1 FROM devx.execution_logs l WHERE l.execution_id = v.execution_id::uuid AND l.seq = v.seq)
ON CONFLICT DO NOTHING;

-- Pull-request validations; validation_results has one entry per check.
INSERT INTO devx.pr_validations (id, task_id, execution_id, pr_number, repository, branch_name, status,
                                 validation_results, webhook_payload, created_at, updated_at)
VALUES
    ('deed0018-5eed-4000-8000-000000000001', 'deed0016-5eed-4000-8000-000000000003',
     'deed0017-5eed-4000-8000-000000000001', 42, 'ada-lovelace/inventory-api', 'devx/upgrade-fastapi', 'passed',
     '{"lint": {"status": "passed", "duration_ms": 2140},
       "tests": {"status": "passed", "passed": 14, "failed": 0, "duration_ms": 3210},
       "security": {"status": "passed", "findings": 0, "duration_ms": 5800}}',
     '{"action": "opened", "number": 42, "pull_request": {"head": {"ref": "devx/upgrade-fastapi"}, "base": {"ref": "main"}}}',
     now() - interval '4 days 23 hours 45 minutes', now() - interval '4 days 23 hours'),
    ('deed0018-5eed-4000-8000-000000000002', 'deed0016-5eed-4000-8000-000000000004',
     'deed0017-5eed-4000-8000-000000000002', 17, 'linus/edge-proxy', 'devx/rate-limit', 'failed',
     '{"build": {"status": "passed", "duration_ms": 48200},
       "clippy": {"status": "failed", "warnings": 3, "duration_ms": 21500},
       "tests": {"status": "failed", "passed": 7, "failed": 2, "duration_ms": 9100}}',
     '{"action": "synchronize", "number": 17, "pull_request": {"head": {"ref": "devx/rate-limit"}, "base": {"ref": "main"}}}',
     now() - interval '2 days 20 minutes', now() - interval '2 days'),
    ('deed0018-5eed-4000-8000-000000000003', 'deed0016-5eed-4000-8000-000000000001',
     'deed0017-5eed-4000-8000-000000000003', 45, 'ada-lovelace/inventory-api', 'devx/items-pagination', 'running',
     '{"lint": {"status": "passed", "duration_ms": 1980},
       "tests": {"status": "running"},
       "security": {"status": "queued"}}',
     '{"action": "opened", "number": 45, "pull_request": {"head": {"ref": "devx/items-pagination"}, "base": {"ref": "main"}, "draft": true}}',
     now() - interval '3 minutes', now() - interval '2 minutes'),
    ('deed0018-5eed-4000-8000-000000000004', 'deed0016-5eed-4000-8000-000000000006',
     NULL, 18, 'linus/edge-proxy', 'devx/github-actions-ci', 'pending',
     '{"build": {"status": "queued"}, "clippy": {"status": "queued"}, "tests": {"status": "queued"}}',
     '{"action": "opened", "number": 18, "pull_request": {"head": {"ref": "devx/github-actions-ci"}, "base": {"ref": "main"}}}',
     now() - interval '1 minute', now() - interval '1 minute')
ON CONFLICT DO NOTHING;

-- Errors of five types; only the network error is resolved.
INSERT INTO devx.error_logs (id, task_id, execution_id, error_type, message, stack, context, recovery_attempts,
                             resolved, resolved_at, created_at)
SELECT v.id::uuid, v.task_id::uuid, v.execution_id::uuid, v.error_type, v.message, v.stack, v.context::jsonb,
       v.recovery_attempts, v.resolved, v.resolved_at, v.created_at
  FROM (VALUES
    ('deed0019-5eed-4000-8000-000000000001', 'deed0016-5eed-4000-8000-000000000004',
     'deed0017-5eed-4000-8000-000000000002', 'timeout',
     'cargo test exceeded the 600 s step limit',
     NULL,
     '{"step": "test", "limit_seconds": 600, "sandbox": "sbx-edge-proxy-1d04"}', 2, false, NULL,
     now() - interval '2 days 30 minutes'),
    ('deed0019-5eed-4000-8000-000000000002', 'deed0016-5eed-4000-8000-000000000004',
     'deed0017-5eed-4000-8000-000000000002', 'validation',
     'PR #17: clippy reported 3 warnings (denied by -D warnings)',
     E'warning: unused variable: `burst`\n  --> src/main.rs:27:9',
     '{"pr_number": 17, "repository": "linus/edge-proxy", "check": "clippy"}', 0, false, NULL,
     now() - interval '2 days 5 minutes'),
    ('deed0019-5eed-4000-8000-000000000003', 'deed0016-5eed-4000-8000-000000000001',
     'deed0017-5eed-4000-8000-000000000003', 'network',
     'pip install: connection reset while downloading pydantic-core',
     NULL,
     '{"host": "files.pythonhosted.org", "attempt": 1}', 1, true, now() - interval '9 minutes',
     now() - interval '11 minutes'),
    ('deed0019-5eed-4000-8000-000000000004', 'deed0016-5eed-4000-8000-000000000003',
     'deed0017-5eed-4000-8000-000000000001', 'database',
     'could not connect to the sandbox database: the database system is starting up',
     E'psycopg.OperationalError: connection failed\n  File "app/db.py", line 14, in connect',
     '{"db_sandbox_id": "sbx-inventory-db-a913", "sqlstate": "57P03"}', 3, false, NULL,
     now() - interval '2 days'),
    ('deed0019-5eed-4000-8000-000000000005', NULL, NULL, 'authentication',
     'GitHub webhook signature mismatch for linus/edge-proxy',
     NULL,
     '{"repository": "linus/edge-proxy", "delivery": "7f1c9e2a-seed", "header": "X-Hub-Signature-256"}', 0, false, NULL,
     now() - interval '6 hours')
       ) AS v (id, task_id, execution_id, error_type, message, stack, context, recovery_attempts, resolved, resolved_at, created_at)
 WHERE NOT EXISTS (SELECT 1 FROM devx.error_logs e WHERE e.id = v.id::uuid)
ON CONFLICT DO NOTHING;

-- Someone guessing passwords from one address, locked out for now.
INSERT INTO devx.sign_in_throttle (key, failures, window_started_at, last_failure_at, locked_until, lockouts) VALUES
    ('address:198.51.100.23', 0, now() - interval '4 minutes', now() - interval '1 minute',
     now() + interval '10 minutes', 1)
ON CONFLICT DO NOTHING;

-- What the activity log holds after a sign-in, a failed one and a lockout.
INSERT INTO devx.activity_logs (created_at, user_id, actor, action, ip_address, user_agent, details)
SELECT a.created_at, a.user_id, a.actor, a.action, a.ip_address::inet, a.user_agent, a.details::jsonb
  FROM (VALUES
        (now() - interval '20 minutes', (SELECT id FROM devx.users WHERE lower(email) = 'ada@devx.local'),
         'user:' || (SELECT id FROM devx.users WHERE lower(email) = 'ada@devx.local'), 'sign_in', '192.0.2.10',
         'Mozilla/5.0 (Macintosh; Intel Mac OS X 14_4) AppleWebKit/605.1.15 Safari/605.1.15',
         '{"seed": true, "via": "password", "session_id": "deed0002-5eed-4000-8000-000000000001"}'),
        (now() - interval '5 minutes', NULL::uuid, 'anonymous', 'sign_in_failed', '198.51.100.23', 'curl/8.5.0',
         '{"seed": true, "email": "admin@devx.local"}'),
        (now() - interval '1 minute', NULL::uuid, 'anonymous', 'lockout', '198.51.100.23', 'curl/8.5.0',
         '{"seed": true, "key": "address:198.51.100.23"}')
       ) AS a (created_at, user_id, actor, action, ip_address, user_agent, details)
 WHERE NOT EXISTS (SELECT 1 FROM devx.activity_logs WHERE details ? 'seed');

-- An agent's POST /api/tasks sent with an Idempotency-Key, and the answer a
-- retry with the same key would get again.
INSERT INTO devx.idempotency_keys (user_id, key, request_method, request_path, request_hash, response_status,
                                   response_headers, response_body, created_at, completed_at)
VALUES
    ((SELECT id FROM devx.users WHERE lower(email) = 'ada@devx.local'), 'seed-task-pagination-1',
     'POST', '/api/tasks', sha256('seed-task-pagination-1'::bytea), 201,
     '{"content-type": "application/json", "location": "/api/tasks/deed0016-5eed-4000-8000-000000000001"}',
     convert_to('{"id":"deed0016-5eed-4000-8000-000000000001","title":"Paginate GET /items"}', 'UTF8'),
     now() - interval '10 minutes', now() - interval '10 minutes')
ON CONFLICT DO NOTHING;

-- The shared schedule of the periodic jobs after one reaper pass. A day
-- back, more than the reaper's longest interval (an hour): the next pass is
-- due at once, so the sample row delays nothing.
INSERT INTO devx.periodic_jobs (job, interval_seconds, runs, last_started_at, last_finished_at, last_process)
VALUES ('agents.reaper', 10, 1, now() - interval '1 day', now() - interval '1 day' + interval '40 milliseconds',
        'devx-seed:0')
ON CONFLICT DO NOTHING;

-- Ada's last write position for read-your-writes on replicas, long expired
-- (so it sends no read to the primary): the shape a row has after a write.
INSERT INTO devx.read_positions (user_id, lsn, expires_at)
VALUES ((SELECT id FROM devx.users WHERE lower(email) = 'ada@devx.local'), '0/0', now() - interval '1 day')
ON CONFLICT DO NOTHING;
