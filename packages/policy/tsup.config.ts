import { library } from "@podnet/tsup-config";
import { defineConfig } from "tsup";

export default defineConfig(library(["src/index.ts", "src/upstream.ts"]));
