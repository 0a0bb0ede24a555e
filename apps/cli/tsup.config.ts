import { application } from "@podnet/tsup-config";
import { defineConfig } from "tsup";

export default defineConfig(application(["src/main.ts", "src/bench-row.ts"]));
