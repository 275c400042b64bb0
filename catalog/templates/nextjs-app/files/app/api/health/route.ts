// GET /api/health: a liveness probe. Route handlers are not cached by
// default, so every request gets a fresh answer.
export function GET() {
  return Response.json(
    {
      status: "ok",
      service: "{{PROJECT_NAME}}",
      uptime_seconds: Math.round(process.uptime()),
      time: new Date().toISOString(),
    },
    { headers: { "Cache-Control": "no-store" } },
  );
}
