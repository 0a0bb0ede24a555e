export { default } from "@podnet/eslint-config";
