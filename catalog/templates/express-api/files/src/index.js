import { createApp } from './app.js';

const port = Number(process.env.PORT ?? {{PORT}});
const app = createApp();

const server = app.listen(port, () => {
  console.log(`{{PROJECT_NAME}} listening on http://localhost:${port}`);
});

// Stop accepting connections, let requests in flight finish, then exit.
function shutdown(signal) {
  console.log(`${signal} received, shutting down`);
  server.close((err) => {
    if (err) {
      console.error(err);
      process.exit(1);
    }
    process.exit(0);
  });
  server.closeIdleConnections();
  setTimeout(() => process.exit(1), 10_000).unref();
}

process.on('SIGINT', shutdown);
process.on('SIGTERM', shutdown);
