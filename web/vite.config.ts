// Vite build of the muxlink web client into web/dist (embedded by signaling-server).
/// <reference types="vitest/config" />
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { defineConfig, type Plugin } from "vite";

/**
 * The favicon (`src/app/icon.svg`) and the web app manifest
 * (`src/app/manifest.webmanifest`), emitted under `assets/` with a content
 * hash in the name: the server serves only `/` and `/assets/…`, and caches
 * `/assets/…` for good. The manifest's icons point at the hashed icon; the
 * page links both from `<head>` (same origin: CSP `default-src 'self'`,
 * `img-src 'self'`).
 */
function appFiles(): Plugin {
  const read = (f: string) => readFileSync(new URL(f, import.meta.url));
  const hash = (b: Buffer | string) => createHash("sha256").update(b).digest("hex").slice(0, 10);
  const icon = read("./src/app/icon.svg");
  const iconPath = `assets/icon-${hash(icon)}.svg`;
  const manifest = JSON.parse(read("./src/app/manifest.webmanifest").toString()) as { icons: { src: string }[] };
  manifest.icons = manifest.icons.map((i) => ({ ...i, src: `/${iconPath}` }));
  const manifestText = JSON.stringify(manifest, null, 2) + "\n";
  const manifestPath = `assets/manifest-${hash(manifestText)}.webmanifest`;
  const files: Record<string, [string, Buffer | string]> = {
    [`/${iconPath}`]: ["image/svg+xml", icon],
    [`/${manifestPath}`]: ["application/manifest+json", manifestText],
  };
  return {
    name: "muxlink-app-files",
    configureServer(server) {
      server.middlewares.use((req, res, next) => {
        const f = files[(req.url ?? "").split("?")[0]];
        if (!f) return next();
        res.setHeader("Content-Type", f[0]);
        res.end(f[1]);
      });
    },
    generateBundle() {
      this.emitFile({ type: "asset", fileName: iconPath, source: icon });
      this.emitFile({ type: "asset", fileName: manifestPath, source: manifestText });
    },
    transformIndexHtml() {
      return [
        { tag: "link", attrs: { rel: "icon", type: "image/svg+xml", href: `/${iconPath}` }, injectTo: "head" },
        { tag: "link", attrs: { rel: "manifest", href: `/${manifestPath}` }, injectTo: "head" },
      ];
    },
  };
}

export default defineConfig({
  base: "/",
  plugins: [appFiles()],
  build: { outDir: "dist", emptyOutDir: true, sourcemap: false, chunkSizeWarningLimit: 1024 },
  test: { environment: "node", include: ["test/**/*.test.ts"] },
});
