import { readdir, readFile, stat } from 'node:fs/promises';
import path from 'node:path';

/*
 * Reads a V8 CPU profile (`node --cpu-prof`) and sums self time per function and per area (a
 * file of ours, an npm package, node's internals, the garbage collector). Sample times are
 * microseconds of the system's monotonic clock, the clock of `process.hrtime`, so a profile
 * can be cut to the window of one measured run.
 */

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
}

interface Profile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

export interface ProfileSummary {
  /** Milliseconds of samples inside the window (all of them if the window missed the profile). */
  sampledMs: number;
  /** False when the window did not overlap the profile and the whole profile was summed. */
  windowed: boolean;
  /** Self milliseconds per area, largest first. */
  areas: [string, number][];
  /** Self milliseconds per function, largest first. */
  functions: [string, number][];
}

/** Monotonic microseconds, the clock V8 stamps profile samples with. */
export function monotonicUs(): number {
  return Number(process.hrtime.bigint() / 1000n);
}

/**
 * Self time per area and function, for samples between `fromUs` and `toUs` (monotonic
 * microseconds). `root` is the repository, so that our files are named relative to it.
 */
export async function summarizeProfile(
  file: string,
  root: string,
  window: { fromUs: number; toUs: number },
): Promise<ProfileSummary> {
  const profile = JSON.parse(await readFile(file, 'utf8')) as Profile;
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const windowed = window.fromUs < profile.endTime && window.toUs > profile.startTime;
  const areas = new Map<string, number>();
  const functions = new Map<string, number>();
  let at = profile.startTime;
  let sampled = 0;
  profile.samples.forEach((id, i) => {
    const delta = profile.timeDeltas[i] ?? 0;
    at += delta;
    if (windowed && (at < window.fromUs || at > window.toUs)) return;
    const frame = byId.get(id)?.callFrame;
    if (frame === undefined) return;
    const area = areaOf(frame.url, frame.functionName, root);
    const name = `${frame.functionName || '(anonymous)'} ${area}:${frame.lineNumber + 1}`;
    areas.set(area, (areas.get(area) ?? 0) + delta);
    functions.set(name, (functions.get(name) ?? 0) + delta);
    sampled += delta;
  });
  const ms = (entries: Map<string, number>): [string, number][] =>
    [...entries].map(([key, us]): [string, number] => [key, us / 1000]).sort((a, b) => b[1] - a[1]);
  return { sampledMs: sampled / 1000, windowed, areas: ms(areas), functions: ms(functions) };
}

/** `proxy/write.ts`, `libpg-query`, `node:internal`, or a V8 pseudo-frame like `(garbage collector)`. */
function areaOf(url: string, functionName: string, root: string): string {
  if (url === '') return functionName.startsWith('(') ? functionName : '(native)';
  if (url.startsWith('node:')) return 'node:internal';
  const file = url.startsWith('file://') ? decodeURIComponent(new URL(url).pathname) : url;
  const packaged = /\/node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(file);
  if (packaged !== null) return packaged[1] as string;
  const relative = path.relative(root, file);
  return relative.startsWith('..') ? file : relative;
}

/**
 * The profile of the main thread among those `--cpu-prof` wrote into `dir`: the largest, since
 * tsx's module hooks run on a thread of their own that writes a small profile too.
 */
export async function largestProfile(dir: string): Promise<string | undefined> {
  const names = (await readdir(dir).catch(() => [] as string[])).filter((n) =>
    n.endsWith('.cpuprofile'),
  );
  const sized = await Promise.all(
    names.map(async (name) => ({ name, size: (await stat(path.join(dir, name))).size })),
  );
  const largest = sized.sort((a, b) => b.size - a.size)[0];
  return largest === undefined ? undefined : path.join(dir, largest.name);
}
