/**
 * Memory aligned for direct I/O: O_DIRECT wants buffers aligned to the
 * device's logical block size (512 bytes or 4 KiB). Node gives Buffers no
 * alignment (a large one starts 16 bytes into its page), but WebAssembly
 * memory is allocated in whole pages, so any view at a multiple of 4 KiB
 * into it is aligned.
 */
export const DIRECT_ALIGNMENT = 4096;

const WASM_PAGE = 65536;

/** Memory handed out here: a view into it at an aligned offset is aligned. */
const aligned = new WeakSet<ArrayBufferLike>();

/** Shared memory of at least `bytes`, page-aligned, usable from worker threads. */
export function alignedSharedMemory(bytes: number): SharedArrayBuffer {
  const pages = Math.max(1, Math.ceil(bytes / WASM_PAGE));
  const memory = new WebAssembly.Memory({ initial: pages, maximum: pages, shared: true }).buffer as unknown as SharedArrayBuffer;
  aligned.add(memory);
  return memory;
}

/** A Buffer of `bytes` bytes of aligned memory. */
export function alignedBuffer(bytes: number): Buffer {
  return Buffer.from(alignedSharedMemory(bytes), 0, bytes);
}

/** Whether `view` starts at an aligned address (it lies in memory from here, at an aligned offset). */
export function isAlignedView(view: Uint8Array): boolean {
  return aligned.has(view.buffer) && view.byteOffset % DIRECT_ALIGNMENT === 0;
}

/** Whether a position or length suits direct I/O. */
export function isAligned(n: number): boolean {
  return n % DIRECT_ALIGNMENT === 0;
}
