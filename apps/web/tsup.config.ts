import { library } from "@podnet/tsup-config";
import { defineConfig } from "tsup";

// The page itself is built by Vite into dist/; this is the Node side (serve.ts) that podnet web imports.
export default defineConfig(library(["src/serve.ts"], { outDir: "dist-node" }));
