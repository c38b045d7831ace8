/**
 * Memory aligned for direct I/O: O_DIRECT wants buffers aligned to the
 * device's logical block size (512 bytes or 4 KiB). Node gives Buffers no
 * alignment (a large one starts 16 bytes into its page), but WebAssembly
 * memory is allocated in whole pages, so any view at a multiple of 4 KiB
 * into it is aligned.
 */
export const DIRECT_ALIGNMENT = 4096;

const WASM_PAGE = 65536;

/** Shared memory of at least `bytes`, page-aligned, usable from worker threads. */
export function alignedSharedMemory(bytes: number): SharedArrayBuffer {
  const pages = Math.max(1, Math.ceil(bytes / WASM_PAGE));
  return new WebAssembly.Memory({ initial: pages, maximum: pages, shared: true }).buffer as unknown as SharedArrayBuffer;
}

/** Whether a position or length suits direct I/O. */
export function isAligned(n: number): boolean {
  return n % DIRECT_ALIGNMENT === 0;
}
