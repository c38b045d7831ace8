/** Running a command inside a lab host: in its namespaces, through the prefix that enters them (nsenter ...). */
import { run, type RunOptions } from '../util/exec.js';

export interface LabHostEntry {
  /** The host's directory in the lab. */
  root: string;
  /** The command prefix that runs a command inside the host's namespaces. */
  enter: readonly string[];
}

export function runInside(host: Pick<LabHostEntry, 'enter'>, argv: readonly string[], options: RunOptions = {}): ReturnType<typeof run> {
  const [enter, ...enterArgs] = host.enter;
  return run(enter!, [...enterArgs, ...argv], options);
}
