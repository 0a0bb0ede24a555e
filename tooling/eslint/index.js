// Shared lint rules: eslint's and typescript-eslint's recommended sets, nothing stylistic (prettier owns format).
import js from "@eslint/js";
import globals from "globals";
import tseslint from "typescript-eslint";

export default tseslint.config(
  { ignores: ["**/dist/**", "**/node_modules/**", "**/test-results/**", "**/.turbo/**"] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    // Plain JS files here are Node scripts (examples, tooling, bins).
    files: ["**/*.{js,mjs,cjs}"],
    languageOptions: { globals: globals.node },
  },
  {
    rules: {
      "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_", varsIgnorePattern: "^_" }],
      // Bit twiddling on 32-bit addresses is the point of several modules.
      "no-bitwise": "off",
    },
  },
);
