/**
 * The destination's frame loop: applies the source's frames one at a time,
 * in order, while the socket keeps reading. Frames wait in a queue; a long
 * queue pauses the socket until it is short again, so a slow disk holds the
 * source back through TCP rather than through memory.
 */
import type { PooledFrame } from './frame-assembler.js';
import { FrameType } from './protocol.js';

/** Past this many queued frames the socket is paused... */
const PAUSE_ABOVE = 256;
/** ...and below this many it reads again. */
const RESUME_BELOW = 64;

/** What the loop needs of the socket: flow control. */
export interface Pausable {
  pause(): unknown;
  resume(): unknown;
  isPaused(): boolean;
}

export class FrameLoop {
  private readonly queue: PooledFrame[] = [];
  private working = false;
  private readonly idleWaiters: Array<() => void> = [];

  /**
   * @param input the socket the frames come from, paused while the queue is long
   * @param apply handles one frame; frames other than Data are released once it resolves
   *   (a Data frame's buffer is the handler's to release, once written)
   * @param onError told when `apply` fails; the loop stops there
   */
  constructor(
    private readonly input: Pausable,
    private readonly apply: (frame: PooledFrame) => Promise<void>,
    private readonly onError: (e: Error) => void,
  ) {}

  /** Queues a frame; it is applied after every frame queued before it. */
  push(frame: PooledFrame): void {
    this.queue.push(frame);
    if (this.queue.length > PAUSE_ABOVE && !this.input.isPaused()) this.input.pause();
    void this.drain();
  }

  /** Resolves once no frame is being applied. */
  whenIdle(): Promise<void> {
    return this.working ? new Promise((resolve) => this.idleWaiters.push(resolve)) : Promise.resolve();
  }

  private async drain(): Promise<void> {
    if (this.working) return;
    this.working = true;
    try {
      while (this.queue.length) {
        const frame = this.queue.shift()!;
        if (this.queue.length < RESUME_BELOW && this.input.isPaused()) this.input.resume();
        await this.apply(frame);
        if (frame.type !== FrameType.Data) frame.release();
      }
    } catch (e) {
      this.onError(e instanceof Error ? e : new Error(String(e)));
    } finally {
      this.working = false;
      for (const resolve of this.idleWaiters.splice(0)) resolve();
    }
  }
}
