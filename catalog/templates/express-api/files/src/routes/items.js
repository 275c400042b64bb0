import { randomUUID } from 'node:crypto';
import { Router } from 'express';

class HttpError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

// Returns an error message, or null when `body` is a valid item.
// With `partial`, fields may be missing (PATCH).
function validate(body, { partial = false } = {}) {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    return 'body must be a JSON object';
  }
  const allowed = new Set(['name', 'price', 'tags']);
  const unknown = Object.keys(body).filter((k) => !allowed.has(k));
  if (unknown.length) return `unknown field(s): ${unknown.join(', ')}`;
  if (!partial || 'name' in body) {
    if (typeof body.name !== 'string' || !body.name.trim() || body.name.length > 200) {
      return 'name must be a non-empty string of at most 200 characters';
    }
  }
  if (!partial || 'price' in body) {
    if (typeof body.price !== 'number' || !Number.isFinite(body.price) || body.price < 0) {
      return 'price must be a number >= 0';
    }
  }
  if ('tags' in body && !(Array.isArray(body.tags) && body.tags.every((t) => typeof t === 'string'))) {
    return 'tags must be an array of strings';
  }
  return null;
}

// In-memory items. Each call makes a fresh store, so tests stay independent.
export function itemsRouter() {
  const items = new Map();
  const router = Router();

  function find(id) {
    const item = items.get(id);
    if (!item) throw new HttpError(404, `item ${id} not found`);
    return item;
  }

  router.get('/', (req, res) => {
    const limit = Math.min(Math.max(Number.parseInt(req.query.limit ?? '50', 10) || 50, 1), 200);
    const offset = Math.max(Number.parseInt(req.query.offset ?? '0', 10) || 0, 0);
    res.json([...items.values()].slice(offset, offset + limit));
  });

  router.post('/', (req, res) => {
    const problem = validate(req.body);
    if (problem) throw new HttpError(422, problem);
    const now = new Date().toISOString();
    const item = {
      id: randomUUID(),
      name: req.body.name.trim(),
      price: req.body.price,
      tags: req.body.tags ?? [],
      created_at: now,
      updated_at: now,
    };
    items.set(item.id, item);
    res.status(201).location(`${req.baseUrl}/${item.id}`).json(item);
  });

  router.get('/:id', (req, res) => {
    res.json(find(req.params.id));
  });

  router.patch('/:id', (req, res) => {
    const item = find(req.params.id);
    const problem = validate(req.body, { partial: true });
    if (problem) throw new HttpError(422, problem);
    const updated = { ...item, ...req.body, updated_at: new Date().toISOString() };
    if (typeof updated.name === 'string') updated.name = updated.name.trim();
    items.set(item.id, updated);
    res.json(updated);
  });

  router.delete('/:id', (req, res) => {
    find(req.params.id);
    items.delete(req.params.id);
    res.status(204).end();
  });

  return router;
}
