/** @type {import('next').NextConfig} */
const nextConfig = {
  // Emits a self-contained server in .next/standalone for small Docker images.
  output: "standalone",
  poweredByHeader: false,
};

export default nextConfig;
