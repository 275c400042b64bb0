import express from 'express';
import { itemsRouter } from './routes/items.js';

// Builds the application without listening, so tests can start it on any port.
export function createApp() {
  const app = express();
  app.disable('x-powered-by');
  app.use(express.json({ limit: '100kb' }));

  app.get('/health', (req, res) => {
    res.json({ status: 'ok', service: '{{PROJECT_NAME}}', uptime_seconds: Math.round(process.uptime()) });
  });

  app.use('/items', itemsRouter());

  app.use((req, res) => {
    res.status(404).json({ error: `no route for ${req.method} ${req.path}` });
  });

  // Express 5 forwards errors thrown in (async) handlers here.
  // eslint-disable-next-line no-unused-vars
  app.use((err, req, res, next) => {
    const status = err.status ?? err.statusCode ?? 500;
    if (status >= 500) console.error(err);
    res.status(status).json({ error: status >= 500 ? 'internal server error' : err.message });
  });

  return app;
}
