// One definition of each kind of build, so every package builds the same way. Source maps map to
// file and line without carrying the sources themselves (`sourcesContent`): a stack trace under
// `node --enable-source-maps` names the TypeScript line all the same, and the maps weigh half as
// much — they are most of what our packages add to `npm install @podnet/cli` (15 MB budget).
const withoutSources = (options) => {
  options.sourcesContent = false;
};
// - library: ESM and CommonJS side by side, each with its own declarations (.d.ts for import,
//   .d.cts for require), so a consumer's types describe the file Node actually loads.
//   Dependencies stay external, as npm installs them.
// - libraryWithImportOnly: the same, but some entries import an ESM-only package: those are ESM alone.
// - application: a command's entry (the podnet CLI): ESM only, no declarations, nothing imports it.
// - executable: a CNI executable, bundled alone and tree-shaken, with workspace packages taken from
//   their sources module by module, so an exec loads only what it runs (podnet-ipam: 71 ms → 31 ms a
//   call once zod was no longer loaded).

/**
 * @param {string[]} entry
 * @param {{ outDir?: string }} [options]
 */
export function library(entry, options = {}) {
  return {
    entry,
    format: ["esm", "cjs"],
    dts: true,
    clean: true,
    sourcemap: true,
    esbuildOptions: withoutSources,
    // import.meta.url in the CommonJS build (the web app's DIST_DIR) becomes the file's URL.
    shims: true,
    ...options,
  };
}

/**
 * A library some of whose entries can only be imported, because they import an ESM-only package (the
 * conformance suite imports vitest, which refuses require()); their exports have no "require". The
 * ESM build holds every entry, so they share chunks (one NetlinkError class for instanceof); the
 * CommonJS build the others. Each cleans only its own files.
 * @param {string[]} entry
 * @param {string[]} importOnly
 */
export function libraryWithImportOnly(entry, importOnly) {
  const base = { dts: true, sourcemap: true, esbuildOptions: withoutSources, shims: true };
  return [
    {
      ...base,
      entry: [...entry, ...importOnly],
      format: "esm",
      clean: ["**/*.js", "**/*.js.map", "**/*.d.ts"],
    },
    { ...base, entry, format: "cjs", clean: ["**/*.cjs", "**/*.cjs.map", "**/*.d.cts"] },
  ];
}

/** @param {string[]} entry */
export function application(entry) {
  return { entry, format: "esm", clean: true, sourcemap: true, esbuildOptions: withoutSources };
}

/** @param {string} entry */
export function executable(entry) {
  return {
    entry: [entry],
    format: "esm",
    noExternal: [/^@podnet\//],
    // No map: an exec'd plugin answers in CNI results, never with a stack a user reads, and its map
    // (≈ 300 KB a plugin) was the margin of the CLI's 15 MB install budget.
    sourcemap: false,
    esbuildOptions(options) {
      options.conditions = ["source", "import"];
    },
  };
}
