import Counter from "./counter";

// A server component: it renders on the server and sends HTML only.
export default function Home() {
  return (
    <main className="page">
      <h1>{{PROJECT_NAME}}</h1>
      <p className="muted">{{DESCRIPTION}}</p>

      <section className="card">
        <h2>Client component</h2>
        <p>
          <code>app/counter.tsx</code> is marked <code>&quot;use client&quot;</code>, so it is
          interactive in the browser:
        </p>
        <Counter />
      </section>

      <section className="card">
        <h2>Route handler</h2>
        <p>
          <code>app/api/health/route.ts</code> answers{" "}
          <a href="/api/health">
            <code>GET /api/health</code>
          </a>{" "}
          with a JSON status, ready for a load balancer or uptime check.
        </p>
      </section>

      <p className="muted">
        Edit <code>app/page.tsx</code> and save to see your changes.
      </p>
    </main>
  );
}
