"use client";

import { useState } from "react";

// A client component: it ships to the browser and keeps state there.
export default function Counter() {
  const [count, setCount] = useState(0);
  return (
    <div className="counter">
      <button type="button" onClick={() => setCount((c) => c - 1)}>
        -
      </button>
      <output aria-live="polite">{count}</output>
      <button type="button" onClick={() => setCount((c) => c + 1)}>
        +
      </button>
    </div>
  );
}
