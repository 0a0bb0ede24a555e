export { default } from "@podnet/vitest-config";
