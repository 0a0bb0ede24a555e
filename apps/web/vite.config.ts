import { defineConfig } from "vite";

export default defineConfig({
  // Workspace packages from their TypeScript sources; they import no Node built-ins (lint enforces it).
  resolve: { conditions: ["source", "module", "browser", "development|production"] },
  // esbuild compiles the TSX; no React plugin is needed for a production build.
  esbuild: { jsx: "automatic" },
  worker: { format: "es" },
  base: "./",
  build: {
    outDir: "dist",
    sourcemap: true,
    chunkSizeWarningLimit: 2000,
    rollupOptions: {
      onwarn(warning, warn) {
        // React Flow marks its modules "use client" for server-component bundlers; meaningless here.
        if (warning.code === "MODULE_LEVEL_DIRECTIVE" || warning.code === "SOURCEMAP_ERROR") return;
        warn(warning);
      },
    },
  },
  server: { host: "127.0.0.1", fs: { allow: ["../.."] } },
});
