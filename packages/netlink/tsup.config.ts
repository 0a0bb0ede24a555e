import { libraryWithImportOnly } from "@podnet/tsup-config";
import { defineConfig } from "tsup";

// The conformance suite imports vitest, which cannot be required: it ships for import only.
export default defineConfig(libraryWithImportOnly(["src/index.ts", "src/lab.ts"], ["src/conformance.ts"]));
