import { defineConfig } from "vitest/config";
import react from "@vitejs/plugin-react";

// The console is served by `clarion serve` at /console/ and built into the Python package, so the wheel carries it.
export default defineConfig({
  base: "/console/",
  plugins: [react()],
  build: {
    outDir: "../clarion/console/static",
    emptyOutDir: true,
    chunkSizeWarningLimit: 1600,
  },
  server: {
    proxy: { "/v1": "http://127.0.0.1:8080", "/openapi.json": "http://127.0.0.1:8080" },
  },
  test: { environment: "node" },
});
