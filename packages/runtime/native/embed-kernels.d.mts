// Types of embed-kernels.mjs (plain Node, run by install.mjs before anything is built), for the tests.
export declare const nativeDir: string;
export declare const KERNEL_FILES: readonly string[];
export declare const GENERATED_HEADER: string;
export declare function kernelInputs(dir?: string): string[];
export declare function joinKernels(dir?: string, seen?: string[]): string;
export declare function generatedHeader(dir?: string): string;
export declare function writeGeneratedHeader(dir?: string): boolean;
export declare function definedKernels(source: string): string[];
