import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createApp } from '../src/app.js';

let server;
let base;

before(async () => {
  server = createApp().listen(0);
  await new Promise((resolve) => server.once('listening', resolve));
  base = `http://127.0.0.1:${server.address().port}`;
});

after(() => {
  server.close();
});

async function call(method, path, body) {
  const res = await fetch(base + path, {
    method,
    headers: body === undefined ? {} : { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, headers: res.headers, body: text ? JSON.parse(text) : null };
}

describe('GET /health', () => {
  it('answers ok', async () => {
    const res = await call('GET', '/health');
    assert.equal(res.status, 200);
    assert.equal(res.body.status, 'ok');
  });
});

describe('/items', () => {
  it('creates, reads, updates and deletes an item', async () => {
    const created = await call('POST', '/items', { name: 'Keyboard', price: 49.9 });
    assert.equal(created.status, 201);
    assert.equal(created.headers.get('location'), `/items/${created.body.id}`);
    assert.deepEqual(created.body.tags, []);

    const fetched = await call('GET', `/items/${created.body.id}`);
    assert.deepEqual(fetched.body, created.body);

    const patched = await call('PATCH', `/items/${created.body.id}`, { price: 39.9 });
    assert.equal(patched.status, 200);
    assert.equal(patched.body.price, 39.9);
    assert.equal(patched.body.name, 'Keyboard');

    const list = await call('GET', '/items');
    assert.ok(list.body.some((i) => i.id === created.body.id));

    assert.equal((await call('DELETE', `/items/${created.body.id}`)).status, 204);
    assert.equal((await call('GET', `/items/${created.body.id}`)).status, 404);
  });

  it('rejects invalid items with 422', async () => {
    assert.equal((await call('POST', '/items', { name: '', price: 1 })).status, 422);
    assert.equal((await call('POST', '/items', { name: 'x', price: -1 })).status, 422);
    assert.equal((await call('POST', '/items', { name: 'x', price: 1, colour: 'red' })).status, 422);
  });

  it('answers malformed JSON with 400', async () => {
    const res = await fetch(`${base}/items`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{"name": ',
    });
    assert.equal(res.status, 400);
  });

  it('answers unknown routes with 404', async () => {
    assert.equal((await call('GET', '/nope')).status, 404);
  });
});
