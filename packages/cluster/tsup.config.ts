import { libraryWithImportOnly } from "@podnet/tsup-config";
import { defineConfig } from "tsup";

// The provider conformance suite imports vitest, which cannot be required: it ships for import only.
export default defineConfig(libraryWithImportOnly(["src/index.ts"], ["src/conformance.ts"]));
