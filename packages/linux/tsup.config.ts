import { defineConfig } from "tsup";

export default defineConfig([
  { entry: ["src/index.ts"], format: "esm", dts: true, clean: true, sourcemap: true },
  // podnet-bridge, the CNI executable: one tree-shaken file, workspace packages from their sources,
  // so an exec loads only what it runs.
  {
    entry: ["src/podnet-bridge.ts"],
    format: "esm",
    noExternal: [/^@podnet\//],
    sourcemap: true,
    esbuildOptions(options) {
      options.conditions = ["source", "import"];
    },
  },
]);
