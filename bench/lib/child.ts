import type { ChildProcess } from 'node:child_process';
import type { WriteStream } from 'node:fs';

/** Resolves true once the child has exited, false if it has not within `ms`. */
export function exitWithin(child: ChildProcess, ms: number): Promise<boolean> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(true);
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), ms);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve(true);
    });
  });
}

export function closeLog(log: WriteStream): Promise<void> {
  return new Promise((resolve) => log.end(resolve));
}
