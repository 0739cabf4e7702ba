// Vite build of the muxlink web client into web/dist (embedded by signaling-server).
/// <reference types="vitest/config" />
import { defineConfig } from "vite";

export default defineConfig({
  base: "/",
  build: { outDir: "dist", emptyOutDir: true, sourcemap: false, chunkSizeWarningLimit: 1024 },
  test: { environment: "node", include: ["test/**/*.test.ts"] },
});
