// Tests of the job processors, without Redis: a processor only needs an
// object that looks like a BullMQ job.
import assert from 'node:assert/strict';
import http from 'node:http';
import { after, before, describe, it } from 'node:test';
import { UnrecoverableError } from 'bullmq';
import { textStats } from '../src/jobs/text-stats.js';
import { deliverWebhook } from '../src/jobs/webhook.js';

function fakeJob(data) {
  return { id: '1', data, attemptsMade: 0, progress: 0, async updateProgress(p) { this.progress = p; } };
}

describe('text.stats', () => {
  it('counts characters, words, lines and top words', async () => {
    const job = fakeJob({ text: 'the cat\nthe dog and the bird' });
    const result = await textStats(job);
    assert.equal(result.words, 7);
    assert.equal(result.lines, 2);
    assert.equal(result.characters, 28);
    assert.deepEqual(result.topWords[0], ['the', 3]);
    assert.equal(job.progress, 100);
  });

  it('rejects a missing text as unrecoverable', async () => {
    await assert.rejects(textStats(fakeJob({})), UnrecoverableError);
  });
});

describe('webhook.deliver', () => {
  let server;
  let base;
  const received = [];

  before(async () => {
    server = http.createServer(async (req, res) => {
      let body = '';
      for await (const chunk of req) body += chunk;
      received.push({ path: req.url, headers: req.headers, body });
      const status = Number(req.url.slice(1)) || 200;
      res.writeHead(status).end('ack');
    });
    await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${server.address().port}`;
  });

  after(() => server.close());

  it('posts the payload as JSON', async () => {
    const result = await deliverWebhook(fakeJob({ url: `${base}/200`, payload: { hello: 'world' } }));
    assert.deepEqual(result, { status: 200, body: 'ack' });
    const last = received.at(-1);
    assert.equal(last.headers['content-type'], 'application/json');
    assert.equal(last.headers['x-delivery-attempt'], '1');
    assert.deepEqual(JSON.parse(last.body), { hello: 'world' });
  });

  it('throws a retryable error on 5xx', async () => {
    await assert.rejects(deliverWebhook(fakeJob({ url: `${base}/503` })), (error) => {
      assert.ok(!(error instanceof UnrecoverableError));
      return true;
    });
  });

  it('gives up on 4xx and on bad urls', async () => {
    await assert.rejects(deliverWebhook(fakeJob({ url: `${base}/404` })), UnrecoverableError);
    await assert.rejects(deliverWebhook(fakeJob({ url: 'not a url' })), UnrecoverableError);
    await assert.rejects(deliverWebhook(fakeJob({ url: 'ftp://example.com/' })), UnrecoverableError);
  });
});
