import { UnrecoverableError } from 'bullmq';

const TIMEOUT_MS = 10_000;

// data: { url: "https://...", payload: {...}, headers?: {...} }
// Retries on network errors, timeouts, 408, 429 and 5xx; gives up on other 4xx.
export async function deliverWebhook(job) {
  const { url, payload, headers = {} } = job.data ?? {};
  let target;
  try {
    target = new URL(url);
  } catch {
    throw new UnrecoverableError(`invalid url ${JSON.stringify(url)}`);
  }
  if (target.protocol !== 'https:' && target.protocol !== 'http:') {
    throw new UnrecoverableError(`unsupported protocol ${target.protocol}`);
  }

  const response = await fetch(target, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      'user-agent': '{{PROJECT_NAME}}-worker',
      'x-delivery-id': String(job.id),
      'x-delivery-attempt': String(job.attemptsMade + 1),
      ...headers,
    },
    body: JSON.stringify(payload ?? {}),
    signal: AbortSignal.timeout(TIMEOUT_MS),
  });
  // Drain the body so the connection can be reused.
  const body = (await response.text()).slice(0, 500);

  if (response.ok) {
    return { status: response.status, body };
  }
  const message = `${target.origin} answered ${response.status}`;
  if (response.status === 408 || response.status === 429 || response.status >= 500) {
    throw new Error(message); // retried with backoff
  }
  throw new UnrecoverableError(message);
}
