/**
 * The part of the WebAssembly JS API that kernels/wasm uses. Node has it at run time, but @types/node 20 does not
 * declare it (TypeScript declares it only in the DOM/WebWorker libs, which would bring browser globals along).
 */
declare namespace WebAssembly {
  interface MemoryDescriptor { initial: number; maximum?: number; shared?: boolean }
  class Memory {
    constructor(descriptor: MemoryDescriptor);
    readonly buffer: ArrayBuffer | SharedArrayBuffer;
    grow(delta: number): number;
  }
  class Module {
    constructor(bytes: BufferSource);
  }
  type ExportValue = ((...args: number[]) => number | void) | Memory;
  type Exports = Record<string, ExportValue>;
  type Imports = Record<string, Record<string, Memory | ((...args: number[]) => number | void) | number>>;
  class Instance {
    constructor(module: Module, imports?: Imports);
    readonly exports: Exports;
  }
  function validate(bytes: BufferSource): boolean;
}
