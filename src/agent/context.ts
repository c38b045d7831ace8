/** What an agent handler may use besides its parameters. */
export interface HandlerContext {
  /** Sends a notification to the controller (events, progress). */
  notify(method: string, params: unknown): void;
  /** Registers cleanup to run when the controller goes away. */
  onClose(cleanup: () => void | Promise<void>): void;
}

export type Handler<P, R> = (params: P, ctx: HandlerContext) => Promise<R>;
