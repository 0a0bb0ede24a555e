import { executable, library } from "@podnet/tsup-config";
import { defineConfig } from "tsup";

export default defineConfig([library(["src/index.ts", "src/disk.ts"]), executable("src/cli.ts")]);
