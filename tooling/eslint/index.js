// Shared lint rules: eslint's and typescript-eslint's recommended sets, nothing stylistic (prettier owns format).
import js from "@eslint/js";
import globals from "globals";
import tseslint from "typescript-eslint";

export default tseslint.config(
  { ignores: ["**/dist/**", "**/dist-node/**", "**/node_modules/**", "**/test-results/**", "**/.turbo/**"] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    // Plain JS files here are Node scripts (examples, tooling, bins).
    files: ["**/*.{js,mjs,cjs}"],
    languageOptions: { globals: globals.node },
  },
  {
    // These packages run in the browser too (the web app simulates there): no Node built-ins.
    files: [
      "packages/{core,netlink,sim,cni,ipam,route-manager,cluster,providers}/src/**/*.ts",
      "packages/{provider,plugin}-*/src/**/*.ts",
    ],
    // Node-only entry points, each exported under its own subpath (./node, ./disk) or run as a bin.
    ignores: [
      "**/*.test.ts",
      "**/conformance.ts",
      "**/src/node.ts",
      "**/src/cli.ts",
      "**/src/disk*.ts",
      "**/src/podnet-*.ts",
    ],
    rules: {
      "no-restricted-imports": [
        "error",
        {
          patterns: [
            {
              group: ["node:*"],
              message:
                "This package must run in a browser; keep Node-only code in its own package or entry point.",
            },
          ],
        },
      ],
    },
  },
  {
    rules: {
      "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_", varsIgnorePattern: "^_" }],
      // Bit twiddling on 32-bit addresses is the point of several modules.
      "no-bitwise": "off",
    },
  },
);
