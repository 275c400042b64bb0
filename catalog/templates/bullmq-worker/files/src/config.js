// Configuration from the environment (and .env when present), checked once.

try {
  process.loadEnvFile();
} catch {
  // No .env file: use the real environment.
}

function integer(name, fallback, { min, max }) {
  const raw = process.env[name] ?? String(fallback);
  const value = Number(raw);
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new Error(`${name} must be an integer from ${min} to ${max}, got ${JSON.stringify(raw)}`);
  }
  return value;
}

export const config = Object.freeze({
  redisUrl: process.env.REDIS_URL ?? 'redis://localhost:6379',
  queueName: process.env.QUEUE_NAME ?? '{{QUEUE_NAME}}',
  concurrency: integer('CONCURRENCY', {{CONCURRENCY}}, { min: 1, max: 1000 }),
  port: integer('PORT', {{PORT}}, { min: 0, max: 65535 }),
  debug: process.env.LOG_LEVEL === 'debug',
});
