import type { Options } from "tsup";
export declare function library(entry: string[]): Options;
export declare function executable(entry: string): Options;
