import type { Options } from "tsup";
export declare function library(entry: string[], options?: { outDir?: string }): Options;
export declare function libraryWithImportOnly(entry: string[], importOnly: string[]): Options[];
export declare function application(entry: string[]): Options;
export declare function executable(entry: string): Options;
