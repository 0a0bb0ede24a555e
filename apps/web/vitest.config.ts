import { mergeConfig } from "vitest/config";
import base from "@podnet/vitest-config";

export default mergeConfig(base, { esbuild: { jsx: "automatic" } });
